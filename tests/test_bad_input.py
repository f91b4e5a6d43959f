"""Bad input never yields a traceback: one message naming the case-file path, exit code 2.

Most cases call the CLI's ``main`` in-process (the same code the console script runs); a few go
through the installed console script to prove the real process exit code and a clean stderr.
"""

import os
import time
from pathlib import Path

import pytest

from app.cli import main
from tests.conftest import CASES, scalebridge

VALID = """
title = "A small valid case"

[mesh]
type = "rectangle"
cells = [4, 4]

[mesh.regions]
steel = "x < 0.5"

[physics.heat]
conductivity = 2.0
boundaries.left = { type = "temperature", value = 300 }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "case.toml"
    path.write_text(text)
    return path


def check(tmp_path: Path, text: str, *extra: str) -> str:
    """Run `scalebridge check` on the text; assert exit code 2 and return the message."""
    case = write(tmp_path, text)
    code = main(["check", str(case), *extra])
    assert code == 2
    return case.name


def error_of(capsys) -> str:
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err  # one message, no traceback
    assert lines[0].startswith("scalebridge: error: ")
    return lines[0]


def test_valid_case_passes(tmp_path, capsys):
    assert main(["check", str(write(tmp_path, VALID))]) == 0
    assert "OK: the case is valid." in capsys.readouterr().out


def test_malformed_toml(tmp_path, capsys):
    check(tmp_path, VALID.replace("conductivity = 2.0", "conductivity = = 2.0"))
    message = error_of(capsys)
    assert "case.toml: not valid TOML" in message
    assert "line 12" in message


def test_unknown_key_suggests_the_closest(tmp_path, capsys):
    check(tmp_path, VALID.replace("conductivity = 2.0", "conductvity = 2.0"))
    message = error_of(capsys)
    assert "physics.heat.conductvity: unknown key 'conductvity'" in message
    assert "did you mean 'conductivity'?" in message


def test_unknown_top_level_section(tmp_path, capsys):
    check(tmp_path, VALID + "\n[tme]\nend = 1\n")
    message = error_of(capsys)
    assert "tme: unknown key 'tme' (did you mean 'time'?)" in message


def test_negative_conductivity(tmp_path, capsys):
    check(tmp_path, VALID.replace("conductivity = 2.0", 'conductivity = "-1 W/(m*K)"'))
    message = error_of(capsys)
    assert "physics.heat.conductivity: must be > 0 W/(m*K), got -1 W/(m*K)" in message


def test_negative_value_in_a_region_table(tmp_path, capsys):
    table = "conductivity = { steel = -3, domain = 1 }"
    check(tmp_path, VALID.replace("conductivity = 2.0", table))
    message = error_of(capsys)
    assert "physics.heat.conductivity: region 'steel': must be > 0" in message


def test_wrong_units(tmp_path, capsys):
    check(tmp_path, VALID.replace("conductivity = 2.0", 'conductivity = "2 W/m"'))
    message = error_of(capsys)
    assert "physics.heat.conductivity" in message
    assert "W/(m*K) was expected" in message


def test_missing_mesh_file(tmp_path, capsys):
    gmsh = 'type = "gmsh"\nfile = "nowhere.msh"'
    text = VALID.replace('type = "rectangle"\ncells = [4, 4]', gmsh)
    check(tmp_path, text.replace('[mesh.regions]\nsteel = "x < 0.5"\n', ""))
    message = error_of(capsys)
    assert "mesh.file:" in message
    assert "nowhere.msh" in message
    assert "not found" in message


def test_unknown_boundary_name(tmp_path, capsys):
    check(tmp_path, VALID.replace("boundaries.left", "boundaries.lft"))
    message = error_of(capsys)
    assert "physics.heat.boundaries.lft: unknown boundary 'lft' (did you mean 'left'?)" in message
    assert "left, right, bottom, top" in message or "bottom, left, right, top" in message


def test_unknown_region_name(tmp_path, capsys):
    check(tmp_path, VALID.replace("conductivity = 2.0", "conductivity = { stel = 3, domain = 1 }"))
    message = error_of(capsys)
    assert "conductivity.stel: unknown region 'stel' (did you mean 'steel'?)" in message
    assert message.count("physics.heat.conductivity.stel:") == 1


def test_region_table_missing_a_region(tmp_path, capsys):
    check(tmp_path, VALID.replace("conductivity = 2.0", "conductivity = { steel = 3 }"))
    message = error_of(capsys)
    assert "physics.heat.conductivity: no value for region domain" in message


def test_field_nobody_provides(tmp_path, capsys):
    check(tmp_path, VALID.replace("2.0", '"1 + 0.01*concentration"'))
    message = error_of(capsys)
    assert "physics.heat.conductivity: unknown name 'concentration'" in message
    assert "no plug-in provides a field of that name" in message


def test_expression_name_typo(tmp_path, capsys):
    check(tmp_path, VALID.replace("2.0", '"1 + 0.01*temprature"'))
    message = error_of(capsys)
    assert "did you mean 'temperature'?" in message


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('touch /tmp/pwned')",
        "().__class__.__bases__",
        "open('/etc/passwd')",
    ],
)
def test_unsafe_expression(tmp_path, capsys, expression):
    check(tmp_path, VALID.replace("conductivity = 2.0", f'source = "{expression}"'))
    message = error_of(capsys)
    assert "physics.heat.source:" in message
    assert "not allowed" in message or "not supported" in message


def test_unknown_physics_type(tmp_path, capsys):
    check(tmp_path, VALID.replace("[physics.heat]", '[physics.heat]\ntype = "haet"'))
    message = error_of(capsys)
    assert "physics.heat.type: unknown physics 'haet' (did you mean 'heat'?)" in message


def test_unknown_boundary_type(tmp_path, capsys):
    check(tmp_path, VALID.replace('type = "temperature"', 'type = "temprature"'))
    message = error_of(capsys)
    assert "physics.heat.boundaries.left: unknown type 'temprature'" in message
    assert "did you mean 'temperature'?" in message


def test_invalid_time_scheme(tmp_path, capsys):
    check(tmp_path, VALID + '\n[time]\nscheme = "bdf3"\n')
    message = error_of(capsys)
    assert "time.scheme: got 'bdf3'" in message
    assert "'bdf1'" in message


def test_bad_override(tmp_path, capsys):
    check(tmp_path, VALID, "--set", "physics.heat.conductivity")
    message = error_of(capsys)
    assert "--set: expected KEY=VALUE" in message


def test_override_is_validated_like_the_file(tmp_path, capsys):
    check(tmp_path, VALID, "--set", "physics.heat.conductivity=-5")
    assert "physics.heat.conductivity: must be > 0" in error_of(capsys)


def test_console_script_exit_code_and_clean_stderr(tmp_path):
    case = write(tmp_path, VALID.replace("conductivity = 2.0", "conductivity = -2.0"))
    process = scalebridge("run", case, "-o", tmp_path / "out")
    assert process.returncode == 2
    assert "Traceback" not in process.stderr
    assert "physics.heat.conductivity: must be > 0" in process.stderr
    assert not (tmp_path / "out").exists()  # nothing written for a case that never ran


def test_existing_output_folder_is_kept(tmp_path):
    case = write(tmp_path, VALID)
    out = tmp_path / "out"
    assert scalebridge("run", case, "-o", out, "-q").returncode == 0
    marker = out / "notes.txt"
    marker.write_text("keep me")
    again = scalebridge("run", case, "-o", out, "-q")
    assert again.returncode == 2
    assert "already exists" in again.stderr and "--overwrite" in again.stderr
    assert marker.read_text() == "keep me"
    assert scalebridge("run", case, "-o", out, "-q", "--overwrite").returncode == 0
    assert not marker.exists()


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path):
    case = write(tmp_path, VALID)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    process = scalebridge("run", case, "-o", precious, "--overwrite")
    assert process.returncode == 2
    assert "is not a ScaleBridge run folder" in process.stderr
    assert (precious / "thesis.tex").exists()


def test_repeated_heat_source_name(tmp_path, capsys):
    check(tmp_path, VALID.replace("conductivity = 2.0", 'heat_sources = ["joule", "joule"]'))
    message = error_of(capsys)
    assert "physics.heat.heat_sources: list distinct field names" in message


def test_plugin_on_a_mesh_dimension_it_has_no_formulation_for(tmp_path, capsys):
    text = """
[mesh]
type = "interval"
cells = [4]

[physics.mechanics]
youngs_modulus = 1e9
poisson_ratio = 0.3
"""
    check(tmp_path, text)
    message = error_of(capsys)
    assert "mesh: plug-in 'mechanics' (physics.mechanics) has no 1D formulation" in message
    assert "supports 2D, 3D meshes" in message


# --- issue 11, item 9: inputs that used to end in a traceback --------------------------------
@pytest.mark.parametrize("command", ["check", "run"])
def test_transient_time_without_dt(tmp_path, capsys, command):
    case = write(tmp_path, VALID + '\n[time]\nscheme = "bdf1"\nend = 10\n')
    output = ["-o", str(tmp_path / "out")] if command == "run" else []
    assert main([command, str(case), *output]) == 2
    message = error_of(capsys)
    assert "time.dt: the bdf1 scheme needs a time step, and none is given" in message
    assert not (tmp_path / "out").exists()


def test_steady_sequence_without_dt(tmp_path, capsys):
    check(tmp_path, VALID + "\n[time]\nend = 10\n")
    assert "time.dt: a steady run with 'end' needs a time step" in error_of(capsys)


@pytest.mark.parametrize("value", ['["heat"]', "3", "{ name = 'heat' }", "true"])
def test_physics_type_that_is_not_a_name(tmp_path, capsys, value):
    check(tmp_path, VALID.replace("[physics.heat]", f"[physics.heat]\ntype = {value}"))
    message = error_of(capsys)
    assert "physics.heat.type: expected the name of a plug-in, got " in message
    assert 'write type = "heat"' in message


def test_case_file_that_is_not_utf8(tmp_path, capsys):
    case = tmp_path / "case.toml"
    case.write_bytes(VALID.encode().replace(b"A small", b"A \xe9 small"))  # Latin-1 e-acute
    assert main(["check", str(case)]) == 2
    message = error_of(capsys)
    assert "case.toml: not UTF-8 text: byte 0xe9 on line 2 is not valid UTF-8" in message


def test_unit_with_thousands_of_factors(tmp_path, capsys):
    units = "*".join(["m/m"] * 3000) + "*W/(m*K)"
    started = time.perf_counter()
    check(tmp_path, VALID.replace("conductivity = 2.0", f'conductivity = "2 {units}"'))
    assert time.perf_counter() - started < 10
    message = error_of(capsys)
    assert "physics.heat.conductivity: cannot read" in message
    assert "characters long; at most 100 are allowed" in message
    assert len(message.partition("case.toml: ")[2]) < 400  # the echoed value is cut


def test_cells_that_cannot_fit_in_memory(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("app.mesh_memory.available_memory", lambda: 64 * 10**9)
    check(tmp_path, VALID.replace("cells = [4, 4]", "cells = [30000, 30000]"))
    message = error_of(capsys)
    # 2 x 30000^2 triangles x 230 bytes = 414 GB on the node of the only rank.
    assert "mesh.cells: cells = [30000, 30000] makes 1.8e+09 triangle cells" in message
    assert "need about 414 GB of memory on the node of rank 0 (1 rank" in message
    assert "it has 64 GB available" in message


def test_cell_counts_beyond_any_integer_dolfinx_takes(tmp_path, capsys):
    check(tmp_path, VALID.replace("cells = [4, 4]", "cells = [4000000000000, 4000000000000]"))
    assert "mesh.cells: cells = [4000000000000, 4000000000000] makes 3.2e+25" in error_of(capsys)


def test_huge_value_is_echoed_cut_to_one_line(tmp_path, capsys):
    check(tmp_path, VALID.replace('type = "rectangle"', f'type = "{"x" * 100_000}"'))
    message = error_of(capsys)
    assert "case.toml: mesh.type: got 'xxxxx" in message
    assert "(100002 chars)" in message and len(message.partition("case.toml: ")[2]) < 200


@pytest.mark.parametrize(
    ("mesh", "fragment"),
    [  # found by the fuzz test: DOLFINx raised "Length of interval is zero"
        ("length = [1e-30, 1]", "cells 2.5e-31 m wide along x, at coordinates up to 1e-30 m"),
        ("origin = [1e300, 0]", "cells 0 m wide along x, at coordinates up to 1e+300 m"),
        ('origin = ["1.7e308 m", 0]\nlength = [1e308, 1]', "origin + length overflows"),
    ],
)
def test_mesh_extent_double_precision_cannot_resolve(tmp_path, capsys, mesh, fragment):
    check(tmp_path, VALID.replace("cells = [4, 4]", f"cells = [4, 4]\n{mesh}"))
    message = error_of(capsys)
    assert "case.toml: mesh.length: " in message and fragment in message


def test_length_computed_from_a_bad_parameter_names_the_expression(tmp_path, capsys):
    # The length is fine as written; the constant it uses is not (a --set gone wrong).
    case = VALID.replace("cells = [4, 4]", 'cells = [4, 4]\nlength = ["thickness/2", 1]')
    (tmp_path / "plate.toml").write_text(
        'name = "Plate"\ncitation = "none: a test"\n'
        '[constants]\nthickness = { value = 0.02, units = "m" }\n'
    )
    case += '\n[parameters]\nset = "plate.toml"\n'
    check(tmp_path, case, "--set", "parameters.thickness=-0.01")
    message = error_of(capsys)
    assert "mesh.length.0: lengths must be positive, got 'thickness/2' = -0.005 m" in message
    assert "computed from [parameters]" in message


def test_run_that_ends_before_it_starts(tmp_path, capsys):
    check(tmp_path, VALID + '\n[time]\nscheme = "bdf1"\nstart = 5\nend = "-1 s"\ndt = 1\n')
    assert "time.end: the run ends at -1 s, not after its start at 5 s" in error_of(capsys)


def test_output_interval_that_would_list_endless_times(tmp_path, capsys):
    time_section = '\n[time]\nscheme = "bdf1"\nend = 10\ndt = 1\n[output]\ninterval = 1e-300\n'
    started = time.perf_counter()
    check(tmp_path, VALID + time_section)
    assert time.perf_counter() - started < 10
    message = error_of(capsys)
    assert "output.interval: an output every 1e-300 s from 0 s to 10 s makes 1e+301" in message


@pytest.mark.parametrize(
    ("assignment", "path", "fix"),
    [
        ("mesh.cells=4", "mesh.cells", "Fix: write a list in brackets, e.g. [4]"),
        (
            'mesh.cells=["a", 4]',
            "mesh.cells.0",
            "Fix: write a whole number without quotes, e.g. 10",
        ),
        ("output.xdmf=3", "output.xdmf", "Fix: write true or false"),
        (
            "time.adaptive=3",
            "time.adaptive",
            "Fix: write a table, e.g. [time.adaptive] followed by lines key = value, or false "
            "(or leave it out) for none",
        ),
        (
            "mesh=3",
            "mesh",
            "Fix: write a table, e.g. [mesh] followed by lines key = value",
        ),
        (
            "physics.heat=[1]",
            "physics.heat",
            "Fix: write a table, e.g. [physics.heat] followed by lines key = value",
        ),
    ],
)
def test_a_value_of_the_wrong_type_says_how_to_write_it(tmp_path, capsys, assignment, path, fix):
    check(tmp_path, VALID, "--set", assignment)
    message = error_of(capsys)
    assert f"case.toml: {path}: expected " in message
    assert message.endswith(fix)


def test_a_value_where_a_table_goes_names_the_keys_of_the_table(tmp_path, capsys):
    check(tmp_path, VALID, "--set", "time.adaptive=true")
    message = error_of(capsys)
    assert "time.adaptive: expected a table with the keys atol, dt_max, dt_min," in message
    assert "got True." in message
    assert "AdaptiveSpec" not in message  # a class name the case file never mentions


def test_false_switches_an_optional_table_off():
    """``--set`` can change a value but not delete a table: false is how a command line turns
    off a case's [time.adaptive] (or any table that may be left out)."""
    from app.case import load_case

    case = CASES / "heated_plate.toml"
    assert load_case(case).case.time.adaptive is not None
    assert load_case(case, ["time.adaptive=false"]).case.time.adaptive is None


TRANSIENT = VALID + '\n[time]\nscheme = "bdf1"\nend = 2\ndt = 1\n'


@pytest.mark.parametrize("ranks", [1, 2])
def test_an_initial_value_that_is_not_finite_is_the_case_s_error(tmp_path, ranks):
    """300 + 1/(x - 0.5) is infinite on the mesh's vertices at x = 0.5: the run stops before
    any step at the instance (exit 2, every rank), not as a divergence of the solve (exit 1)."""
    case = write(tmp_path, TRANSIENT.replace("conductivity = 2.0", "conductivity = 2.0\n"
                                              'initial = "300 + 1/(x - 0.5)"'))  # fmt: skip
    process = scalebridge("run", case, "-o", tmp_path / "out", "-q", ranks=ranks)
    assert process.returncode == 2, process.stderr
    lines = [line for line in process.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, process.stderr
    assert (
        "case.toml: physics.heat.initial: '300 + 1/(x - 0.5)' is not defined at t = 0 s "
        in (lines[0])
    )
    assert "where field 'temperature' is inf at (0.5, " in lines[0]
    assert '"status": "failed"' in (tmp_path / "out" / "provenance.json").read_text()


def test_a_property_undefined_in_the_initial_state_is_the_case_s_error(tmp_path, capsys):
    """sqrt(x - 1) is NaN on the whole unit square: the heat flux computed from it is too
    (insulated: a fixed temperature would make the start solve for its rates, which fail)."""
    insulated = TRANSIENT.replace('boundaries.left = { type = "temperature", value = 300 }', "")
    case = write(tmp_path, insulated.replace("2.0", '"sqrt(x - 1)"'))
    assert main(["run", str(case), "-o", str(tmp_path / "out"), "-q"]) == 2
    message = error_of(capsys)
    assert "physics.heat.conductivity: 'sqrt(x - 1)' is not defined at t = 0 s " in message
    assert "where field 'heat_flux' is nan" in message
    assert "Fix: guard it where it is undefined" in message


def test_a_pipe_given_as_the_case_file_is_refused_not_waited_on(tmp_path):
    """A named pipe nobody writes to blocked the reading of the case forever (and /dev/zero
    filled the memory): only a regular file is read."""
    pipe = tmp_path / "case.toml"
    os.mkfifo(pipe)
    process = scalebridge("check", pipe, timeout=60)
    assert process.returncode == 2, process.stderr
    assert f"case file '{pipe}' is not a regular file (a pipe, socket or device)" in (
        process.stderr
    )


def test_a_case_file_larger_than_any_input_needs_is_refused_unread(tmp_path, capsys):
    case = tmp_path / "case.toml"
    with case.open("wb") as stream:
        stream.truncate(65 * 2**20)  # sparse: no disk used, nothing worth parsing
    assert main(["check", str(case)]) == 2
    assert "case.toml' is larger than 64 MB, more than any input file needs" in error_of(capsys)


def test_overwrite_keeps_a_run_folder_that_holds_an_input_of_the_case(tmp_path, capsys):
    """--overwrite deleted the whole folder, a case file (or mesh, or parameter set) the case
    reads from it included; the run's own case.toml may still be run again in place."""
    out = tmp_path / "out"
    assert main(["run", str(write(tmp_path, VALID)), "-o", str(out), "-q"]) == 0
    edited = out / "edited.toml"
    edited.write_text(VALID.replace("2.0", "3.0"))
    assert main(["run", str(edited), "-o", str(out), "-q", "--overwrite"]) == 2
    message = error_of(capsys)
    assert f"--output: '{out}' holds '{edited}', a file this case reads" in message
    assert edited.exists()
    assert main(["run", str(out / "case.toml"), "-o", str(out), "-q", "--overwrite"]) == 0
    assert not edited.exists()


def test_a_value_of_the_wrong_shape_is_echoed_as_written(tmp_path, capsys):
    """A traction written as one quantity, where a vector goes, was echoed in its parsed form,
    'got Value(value=100000000.0)', a class the case file never mentions."""
    text = """
[mesh]
type = "rectangle"
cells = [2, 2]

[physics.mechanics]
youngs_modulus = 1e9
poisson_ratio = 0.3
boundaries.right = { type = "traction", value = "100 MPa" }
"""
    check(tmp_path, text)
    message = error_of(capsys)
    assert "physics.mechanics.boundaries.right.value: expected a valid list, got '100 MPa'" in (
        message
    )
    assert "Value(" not in message
