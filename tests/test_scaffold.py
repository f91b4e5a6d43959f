"""``scalebridge new-module``: the generated package installs, is discovered through its entry
point, and its generated tests pass, without touching this venv.

The package is installed with ``pip install --target`` into a folder of its own and seen through
``PYTHONPATH`` (entry points are read from the dist-info on sys.path), so the venv the suite runs
in stays as it was.
"""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import BIN, read_quantities, scalebridge

NAME = "reaction_front"


def run(*command, cwd: Path, site: Path | None = None, timeout: float = 600):
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    return subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, Path]:
    """(package folder, site folder it is installed in)."""
    root = tmp_path_factory.mktemp("scaffold")
    process = run(BIN / "scalebridge", "new-module", NAME, "--dir", root / "plugins", cwd=root)
    assert process.returncode == 0, process.stderr
    assert f"Created the plug-in package '{NAME}'" in process.stdout
    package, site = root / "plugins" / NAME, root / "site"
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    process = run(*install, "--no-build-isolation", "--target", site, package, cwd=root)
    assert process.returncode == 0, process.stderr
    return package, site


def test_generated_files(generated):
    package, _ = generated
    built = ("build", f"{NAME}.egg-info")  # left by pip's in-tree build
    files = sorted(
        str(p.relative_to(package))
        for p in package.rglob("*")
        if p.is_file() and p.relative_to(package).parts[0] not in built
    )
    assert files == [
        "README.md",
        f"cases/{NAME}_demo.toml",
        "pyproject.toml",
        f"{NAME}.py",
        f"tests/test_{NAME}.py",
    ]
    with (package / "pyproject.toml").open("rb") as stream:
        project = tomllib.load(stream)["project"]
    assert project["entry-points"]["scalebridge.physics"] == {NAME: f"{NAME}:ReactionFront"}
    source = (package / f"{NAME}.py").read_text()
    assert f'name = "{NAME}"' in source and "class ReactionFront(Physics):" in source
    framework = {line.split()[1] for line in source.splitlines() if line.startswith("from app")}
    assert framework == {"app.contracts"}  # a plug-in imports only the contract
    assert "{{" not in "".join((package / name).read_text() for name in files)


def test_generated_code_is_ruff_clean(generated):
    package, _ = generated
    for check in (["check", "."], ["format", "--check", "."]):
        process = run(BIN / "ruff", *check, cwd=package)
        assert process.returncode == 0, process.stdout + process.stderr


def test_installed_package_is_listed_by_modules(generated, tmp_path):
    _, site = generated
    listed = run(BIN / "scalebridge", "modules", cwd=tmp_path, site=site)
    assert listed.returncode == 0, listed.stderr
    assert f"\n{NAME}: Reaction-diffusion of one species" in listed.stdout
    assert "heat: " in listed.stdout and "FAILED TO LOAD" not in listed.stdout
    one = run(BIN / "scalebridge", "modules", NAME, cwd=tmp_path, site=site)
    assert f"    {NAME} [scalar, mol/m^3, Lagrange 1]: c" in one.stdout
    assert "diffusivity [m^2/s] default 1.0 (> 0): Diffusivity D" in one.stdout
    # The venv itself never saw the package: without its site folder it is not there.
    bare = run(BIN / "scalebridge", "modules", cwd=tmp_path)
    assert bare.returncode == 0 and f"\n{NAME}:" not in bare.stdout


def test_generated_tests_pass(generated, tmp_path):
    """Conformance kit (including 2 MPI ranks) and the closed-form checks, as generated."""
    package, site = generated
    process = run(
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", package / "tests",
        cwd=tmp_path, site=site,
    )  # fmt: skip
    assert process.returncode == 0, process.stdout[-4000:] + process.stderr[-2000:]
    assert "3 passed" in process.stdout


def test_demo_case_runs(generated, tmp_path):
    package, site = generated
    out = tmp_path / "demo"
    case = package / "cases" / f"{NAME}_demo.toml"
    process = run(BIN / "scalebridge", "run", case, "-o", out, "-q", cwd=tmp_path, site=site)
    assert process.returncode == 0, process.stderr
    q = read_quantities(out)
    assert q["time_s"] == [0.0, 10.0, 20.0]
    assert q["max_mol_per_m3"][-1] == pytest.approx(1.0)
    assert 0 < q["amount_mol_per_m"][1] < q["amount_mol_per_m"][2] < 0.25  # filling, < c_b * area
    # Near steady: what enters through the left edge is mostly consumed.
    entering = -q["outflow_left_mol_per_s_per_m"][-1]
    assert 0.5 * entering < q["consumed_mol_per_s_per_m"][-1] < entering


def test_a_bad_field_name_in_a_case_is_the_case_writers_to_fix(generated, tmp_path):
    """The template's `field` is a FieldName: the message points at the case's key, not at
    the plug-in's author, as a plain `str` did."""
    package, site = generated
    case = package / "cases" / f"{NAME}_demo.toml"
    setting = f'physics.{NAME}.field="my c"'
    process = run(BIN / "scalebridge", "check", case, "--set", setting, cwd=tmp_path, site=site)
    assert process.returncode == 2
    assert f"physics.{NAME}.field: field names are letters, digits and underscores" in (
        process.stderr
    )
    assert "plug-in's author" not in process.stderr


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("heat", "a plug-in named 'heat' is already installed"),
        ("9lives", "'9lives' is not a valid plug-in name"),
        ("Reaction", "'Reaction' is not a valid plug-in name"),
        ("class", "'class' is not a valid plug-in name"),
        ("json", "a Python module named 'json' already exists"),
        ("a" * 41, f"'{'a' * 41}' is not a valid plug-in name"),
        ("exp", "'exp' is a name case expressions use already"),
    ],
)
def test_bad_names_are_refused(tmp_path, name, problem):
    process = run(BIN / "scalebridge", "new-module", name, cwd=tmp_path)
    assert process.returncode == 2
    assert f"scalebridge: error: {problem}" in process.stderr
    assert not any(tmp_path.iterdir())  # nothing written


def test_existing_folder_is_not_overwritten(tmp_path):
    (tmp_path / NAME).mkdir()
    (tmp_path / NAME / "mine.py").write_text("keep = True\n")
    process = run(BIN / "scalebridge", "new-module", NAME, cwd=tmp_path)
    assert process.returncode == 2 and "exists already" in process.stderr
    assert [p.name for p in (tmp_path / NAME).iterdir()] == ["mine.py"]


@pytest.mark.mpi
@pytest.mark.parametrize("command", ["new-module", "plot"])
def test_a_refusal_on_rank_zero_stops_every_rank(tmp_path, command):
    """Only rank 0 writes; when it cannot (the folder exists, there is no run to plot), the
    other ranks stop with it, with one message and exit code 2 instead of waiting forever."""
    (tmp_path / NAME).mkdir()
    args = [NAME, "--dir", tmp_path] if command == "new-module" else [tmp_path / NAME]
    process = scalebridge(command, *args, ranks=2, cwd=tmp_path, timeout=120)
    assert process.returncode == 2, process.stderr
    assert process.stderr.count("scalebridge: error:") == 1, process.stderr


def test_the_next_steps_it_prints_work_as_printed(tmp_path):
    """The printed install and path lines are the guide's (a folder beside this venv, not
    ``pip install -e`` into it), and with them `scalebridge modules` finds the plug-in."""
    process = run(BIN / "scalebridge", "new-module", "my_heating", cwd=tmp_path)
    steps = process.stdout.partition("walks through them):\n")[2].splitlines()
    assert steps[:2] == [
        "  pip install --no-deps --target plugins ./my_heating   # not into ScaleBridge's venv",
        "  export PYTHONPATH=$PWD/my_heating:$PWD/plugins",
    ]
    script = "\n".join(
        [
            f"export PATH={BIN}:$PATH",
            steps[0].split("#")[0] + " --no-build-isolation --quiet",  # no index to build from
            steps[1],
            steps[2],
        ]
    )
    listed = run("bash", "-e", "-c", script, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "\nmy_heating: Reaction-diffusion of one species" in f"\n{listed.stdout}"
