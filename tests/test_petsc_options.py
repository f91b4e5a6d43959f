"""A case file cannot write files outside its run folder (issue 11, item 12).

PETSc options that take a viewer or a file, or run a program, are refused; the allowed solver
settings still work; a region's name cannot place a field file outside the run folder.
"""

import pytest

from app.cli import main
from app.errors import CaseError
from app.petsc_options import check_petsc_options
from app.simulation import Simulation
from app.solver_options import PRESETS, RIGID_BODY_GAMG
from tests.conftest import read_quantities, scalebridge
from tests.test_bad_input import VALID, error_of, write

# Each writes a file, reads one or runs a program when PETSc sees it (the viewers write even
# without a path: "binary" writes ./binaryoutput; MUMPS' ICNTL(1) writes ./fort.N files).
REFUSED = [
    ("ksp_view", "ascii:{tmp}/escape.txt"),
    ("ksp_view", True),
    ("ksp_monitor", ""),
    ("ksp_view_mat", "binary"),
    ("ksp_converged_reason", "ascii:{tmp}/escape.txt"),
    ("snes_monitor", "draw"),
    ("fieldsplit_T_0_ksp_monitor", ""),
    ("mg_levels_esteig_ksp_view", ""),
    ("pc_gamg_mat_partitioning_view", ""),
    ("pc_mg_dump_matlab", True),
    ("mat_view", "hdf5:{tmp}/escape.h5"),
    ("log_view", ":{tmp}/escape.txt"),
    ("options_file", "{tmp}/options"),
    ("history", "{tmp}/escape.txt"),
    ("malloc_dump", ""),
    ("on_error_attach_debugger", "gdb"),
    ("start_in_debugger", ""),
    ("viewer_binary_filename", "{tmp}/escape.bin"),
    ("mat_mumps_icntl_1", 6),
    ("mat_mumps_icntl_3", 6),
    ("mat_mumps_icntl_22", 1),
    ("KSP_VIEW", ""),
    ("-ksp_view", ""),
]


@pytest.mark.parametrize(("option", "value"), REFUSED, ids=[o for o, _ in REFUSED])
def test_options_that_touch_files_or_programs_are_refused(tmp_path, capsys, option, value):
    value = value.format(tmp=tmp_path) if isinstance(value, str) else value
    text = f"{value!r}".replace("True", "true").replace("'", '"')
    case = write(tmp_path, VALID + f'\n[solver.petsc]\n"{option}" = {text}\n')
    assert main(["check", str(case)]) == 2
    message = error_of(capsys)
    assert (
        f"solver.petsc.{option}: the PETSc option '{option.removeprefix('-')}' is not one"
        in message
    )
    assert list(tmp_path.iterdir()) == [case]


@pytest.mark.parametrize(
    "value", ["ascii:/tmp/x", "../escape", "a b", "x" * 65, "gmres;ls", "$HOME", "~/x"]
)
def test_allowed_options_take_plain_values_only(value):
    with pytest.raises(CaseError, match=r"solver\.petsc\.ksp_type: expected a number, true/fal"):
        check_petsc_options({"ksp_type": value}, "solver.petsc")


def test_integers_must_fit_petsc():
    with pytest.raises(CaseError, match="beyond PETSc's 32-bit integers"):
        check_petsc_options({"ksp_max_it": 2**31}, "solver.petsc")


def test_every_option_the_presets_set_may_be_restated():
    options = {key: value for preset in PRESETS.values() for key, value in preset.items()}
    options |= {  # what make_solver and petsc_options add, and the benchmarks' override
        "fieldsplit_temperature_0_ksp_type": "preonly",
        "fieldsplit_temperature_0_pc_type": "gamg",
        "mat_mumps_icntl_24": 1,
        **RIGID_BODY_GAMG,
        "pc_gamg_threshold": -1,  # PETSc's own, as benchmarks/elasticity_3d.py restates it
        "ksp_rtol": 1e-10,
        "snes_type": "newtonls",
        "snes_linesearch_type": "bt",
        "snes_rtol": 1e-9,
        "snes_atol": 1e-10,
        "snes_max_it": 25,
        "snes_divergence_tolerance": 1e12,
        "pc_fieldsplit_0_fields": "0,1",
        "ksp_chebyshev_esteig": "0,0.1,0,1.1",
    }
    assert check_petsc_options(options, "solver.petsc") == options


def test_run_with_a_viewer_option_writes_nothing(tmp_path):
    escape = tmp_path / "escape.txt"
    case = write(tmp_path, VALID + f'\n[solver.petsc]\nksp_view = "ascii:{escape}"\n')
    process = scalebridge("run", case, "-o", tmp_path / "out", "-q", cwd=tmp_path)
    assert process.returncode == 2
    assert "solver.petsc.ksp_view: the PETSc option 'ksp_view' is not one" in process.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case.toml"]


def test_allowed_options_are_applied(tmp_path):
    """CG + Jacobi to a tight tolerance gives the direct solver's answer."""
    case = write(tmp_path, VALID)
    iterative = VALID + '\n[solver.petsc]\nksp_type = "cg"\npc_type = "jacobi"\nksp_rtol = 1e-13\n'
    iterative_case = tmp_path / "iterative.toml"
    iterative_case.write_text(iterative)
    for name, path in (("direct", case), ("iterative", iterative_case)):
        assert main(["run", str(path), "-o", str(tmp_path / name), "-q"]) == 0
    direct, cg = read_quantities(tmp_path / "direct"), read_quantities(tmp_path / "iterative")
    assert cg["linear_iterations"][-1] > 1 and direct["linear_iterations"][-1] == 1
    for column in direct:
        if "iterations" not in column:
            assert cg[column] == pytest.approx(direct[column], rel=1e-9, abs=1e-9), column


def test_petsc_refusing_an_allowed_option_is_a_case_error(tmp_path, capsys):
    case = write(tmp_path, VALID + '\n[solver.petsc]\nksp_type = "nonexistent"\n')
    assert main(["run", str(case), "-o", str(tmp_path / "out"), "-q"]) == 2
    message = error_of(capsys)
    assert "solver.petsc: PETSc could not set up the solver of group 'main'" in message
    assert "Unable to find requested KSP type nonexistent" in message
    # PETSc's global options are as before (DOLFINx had pushed the solver's prefix when PETSc
    # raised): the next solver of this process gets its own options.
    options = '\n[solver.petsc]\nksp_type = "cg"\npc_type = "jacobi"\n'
    simulation = Simulation.from_case(write(tmp_path, VALID + options))
    simulation.compile()
    ksp = simulation.groups[0].solver.problem.solver
    assert (ksp.getType(), ksp.getPC().getType()) == ("cg", "jacobi")


def test_region_names_cannot_place_field_files_outside_the_run(tmp_path):
    text = VALID.replace('steel = "x < 0.5"', '"../../escape" = "x < 0.5"') + (
        '\n[physics.tracer]\ntype = "mass_transport"\ndomain = "../../escape"\n'
        'species.c = { diffusivity = 1.0, boundaries.left = { type = "concentration", '
        "value = 1 } }\n"
    )
    case = write(tmp_path, text)
    run = tmp_path / "runs" / "out"
    assert main(["run", str(case), "-o", str(run), "-q"]) == 0
    assert (run / "fields_.._.._escape.xdmf").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case.toml", "runs"]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["out"]
