"""Reading TOML files (case, study and parameter-set files) into dicts, and the text of other
input files (a calibration's data), every failure a CaseError: a missing file or a folder, text
that is not UTF-8, malformed or too deeply nested TOML. A leading byte-order mark, which Windows
editors and spreadsheets write, is accepted."""

from __future__ import annotations

import codecs
import tomllib
from pathlib import Path
from typing import Any

from app.errors import CaseError
from app.validation import MAX_NESTING

#: The largest input file read (case, study, parameter set, calibration data).
MAX_BYTES = 64 * 2**20


def read_toml(path: Path, place: str = "", what: str = "case file") -> dict[str, Any]:
    """Parse the TOML file at ``path``; errors are located at ``place`` in the case and name
    the file as ``what``."""
    prefix = "" if not place else f"{what} '{path}': "
    text = read_text(path, place, what, "TOML files are UTF-8")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CaseError(place, f"{prefix}not valid TOML: {exc}", "fix the syntax there") from None
    except RecursionError:
        raise CaseError(
            place,
            f"{prefix}arrays or tables are nested too deeply (at most {MAX_NESTING} levels)",
        ) from None


def read_text(path: Path, place: str, what: str, why_utf8: str) -> str:
    """The UTF-8 text of the file at ``path`` without a leading byte-order mark; a folder, a
    missing or unreadable file and text that is not UTF-8 are CaseErrors at ``place`` naming
    the file as ``what`` (``why_utf8`` says why the file must be UTF-8)."""
    prefix = "" if not place else f"{what} '{path}': "
    if path.is_dir():
        raise CaseError(place, f"{what} '{path}' is a folder", f"give the path of the {what}")
    try:
        # A pipe or a device (/dev/zero) would block or never end: only a regular file is read.
        if path.exists() and not path.is_file():
            raise CaseError(
                place,
                f"{what} '{path}' is not a regular file (a pipe, socket or device)",
                f"give the path of the {what}",
            )
        with path.open("rb") as stream:
            data = stream.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise CaseError(place, f"{what} '{path}' not found", "check the path") from None
    except OSError as exc:
        raise CaseError(place, f"{what} '{path}' cannot be read: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        raise CaseError(
            place,
            f"{what} '{path}' is larger than {MAX_BYTES // 2**20} MB, more than any input file "
            "needs",
            f"check that it is the {what} meant",
        )
    try:
        return data.removeprefix(codecs.BOM_UTF8).decode("utf-8")
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise CaseError(
            place,
            f"{prefix}not UTF-8 text: byte {exc.object[exc.start]:#04x} on line {line} is not "
            "valid UTF-8",
            f"save the {what} as UTF-8 ({why_utf8})",
        ) from None
