"""A case file cannot make ScaleBridge run code from an untrusted place (app/trust.py)."""

from pathlib import Path

import pytest

from app.cli import main
from app.trust import TRUST_ALL, TRUSTED_FOLDERS
from tests.conftest import CASES

SCRIPT = """
from pathlib import Path

Path(__file__).with_name("ran.txt").write_text("the script ran")


def build(model):
    model.occ.addRectangle(0, 0, 0, 1, 1)
    model.occ.synchronize()
    model.addPhysicalGroup(2, [1], name="domain")
    model.addPhysicalGroup(1, [1, 2, 3, 4], name="sides")
"""

GEO = """
// a geometry that also runs a program
Point(1) = {0, 0, 0, 0.5}; Point(2) = {1, 0, 0, 0.5}; Point(3) = {1, 1, 0, 0.5};
Point(4) = {0, 1, 0, 0.5}; Line(1) = {1, 2}; Line(2) = {2, 3}; Line(3) = {3, 4};
Line(4) = {4, 1}; Curve Loop(1) = {1, 2, 3, 4}; Plane Surface(1) = {1};
Physical Surface("domain") = {1}; Physical Curve("sides") = {1, 2, 3, 4};
System "touch ran.txt";
"""


def case(folder: Path, mesh_file: str) -> Path:
    path = folder / "case.toml"
    path.write_text(
        f'[mesh]\ntype = "gmsh"\nfile = "{mesh_file}"\n\n'
        '[physics.heat]\nboundaries.sides = { type = "temperature", value = 300 }\n'
    )
    return path


@pytest.fixture
def untrusted(tmp_path, monkeypatch) -> Path:
    """A folder nobody trusts (the test suite trusts the temporary folders by default)."""
    monkeypatch.delenv(TRUSTED_FOLDERS, raising=False)
    monkeypatch.delenv(TRUST_ALL, raising=False)
    return tmp_path


def test_a_script_outside_the_trusted_folders_is_not_run(untrusted, capsys):
    (untrusted / "mesh.py").write_text(SCRIPT)
    assert main(["check", str(case(untrusted, "mesh.py"))]) == 2
    message = capsys.readouterr().err
    assert "mesh.file:" in message and "is a Python script" in message
    assert "--trust-scripts" in message and "Traceback" not in message
    assert not (untrusted / "ran.txt").exists()


def test_trusting_scripts_runs_them(untrusted, capsys):
    (untrusted / "mesh.py").write_text(SCRIPT)
    assert main(["check", str(case(untrusted, "mesh.py")), "--trust-scripts"]) == 0
    assert (untrusted / "ran.txt").read_text() == "the script ran"


def test_a_trusted_folder_runs_its_scripts(untrusted, monkeypatch):
    (untrusted / "mesh.py").write_text(SCRIPT)
    monkeypatch.setenv(TRUSTED_FOLDERS, str(untrusted))
    assert main(["check", str(case(untrusted, "mesh.py"))]) == 0


def test_a_geo_file_that_runs_a_program_is_refused(untrusted, capsys, monkeypatch):
    (untrusted / "mesh.geo").write_text(GEO)
    monkeypatch.chdir(untrusted)
    assert main(["check", str(case(untrusted, "mesh.geo"))]) == 2
    message = capsys.readouterr().err
    assert "uses 'System' (line 7)" in message
    assert not (untrusted / "ran.txt").exists()


def test_a_plain_geo_file_and_shipped_scripts_need_no_trust(untrusted):
    plain = "\n".join(line for line in GEO.splitlines() if "System" not in line)
    (untrusted / "mesh.geo").write_text(plain + "\n// System is only a word in a comment here\n")
    assert main(["check", str(case(untrusted, "mesh.geo"))]) == 0
    assert main(["check", str(CASES / "two_layer_wall.toml")]) == 0  # meshes/two_layer.geo
    assert main(["check", str(CASES / "thick_cylinder.toml")]) == 0  # a script in meshes/
