"""Case and set files as editors and file systems hand them over: a byte-order mark, CRLF line
endings, a folder or Latin-1 text where a file goes. Each runs, or stops with one message naming
the place and exit code 2."""

import codecs

from app.cli import main
from tests.test_bad_input import VALID, error_of

SET_FILE = """
name = "tiny"
description = "A one-constant set"
citation = "none"

[constants]
k_steel = { value = 2.0, units = "W/(m*K)" }
"""


def test_case_file_with_a_byte_order_mark_and_crlf_line_endings_is_read(tmp_path, capsys):
    case = tmp_path / "case.toml"
    case.write_bytes(codecs.BOM_UTF8 + VALID.replace("\n", "\r\n").encode())
    assert main(["check", str(case)]) == 0, capsys.readouterr().err
    assert "OK: the case is valid." in capsys.readouterr().out


def test_case_path_that_is_a_folder(tmp_path, capsys):
    folder = tmp_path / "case.toml"
    folder.mkdir()
    assert main(["check", str(folder)]) == 2
    message = error_of(capsys)
    assert f"case file '{folder}' is a folder. Fix: give the path of the case file" in message


def with_set(tmp_path, set_bytes: bytes):
    set_file = tmp_path / "tiny.toml"
    set_file.write_bytes(set_bytes)
    case = tmp_path / "case.toml"
    case.write_text(
        VALID.replace("conductivity = 2.0", 'conductivity = "k_steel"')
        + f'\n[parameters]\nset = "{set_file}"\n'
    )
    return main(["check", str(case)]), set_file


def test_set_file_with_a_byte_order_mark_is_read(tmp_path, capsys):
    code, _ = with_set(tmp_path, codecs.BOM_UTF8 + SET_FILE.encode())
    assert code == 0, capsys.readouterr().err


def test_set_file_that_is_not_utf8(tmp_path, capsys):
    code, set_file = with_set(tmp_path, b"# caf\xe9\n" + SET_FILE.encode())
    assert code == 2
    message = error_of(capsys)
    assert (
        f"parameters.set: set file '{set_file}': not UTF-8 text: byte 0xe9 on line 1 is not "
        "valid UTF-8. Fix: save the set file as UTF-8" in message
    )
