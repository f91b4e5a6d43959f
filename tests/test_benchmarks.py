"""The benchmarks stay runnable and keep measuring what they say: every script in benchmarks/
runs at a tiny size; each ScaleBridge case agrees with its plain DOLFINx reference (every
quantity, and the iteration counts step by step); the phase timers find every function they
time by its dotted name. Times are measured by `make bench`, never asserted here. Records go to
a temporary folder, so a test never overwrites benchmarks/out/."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, mpi_python

BENCHMARKS = ROOT / "benchmarks"


def load(script: str):
    """A benchmark script as a module (its main() is not run), importing its helpers from
    benchmarks/ as it does when run as a script."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(Path(script).stem, BENCHMARKS / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(*arguments: str, timeout: float = 600) -> subprocess.CompletedProcess:
    process = subprocess.run(
        [sys.executable, *arguments], capture_output=True, text=True, cwd=ROOT, timeout=timeout
    )
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    return process


# Which test runs each script (the plain references and the timers run under the drivers).
RUN_BY = {
    "run.py": "test_benchmark_and_its_plain_reference_agree",
    "plain_heat_3d.py": "test_benchmark_and_its_plain_reference_agree[heat_3d]",
    "plain_reaction_front.py": "test_benchmark_and_its_plain_reference_agree[reaction_front]",
    "phases_scalebridge.py": "test_benchmark_and_its_plain_reference_agree (--phases), "
    "test_elasticity_benchmark_runs",
    "elasticity_3d.py": "test_elasticity_benchmark_runs",
    "plain_elasticity_3d.py": "test_elasticity_benchmark_runs (--plain)",
    "quadrature.py": "test_quadrature_benchmark_runs",
    "gamg_variants.py": "test_gamg_variants_benchmark_runs",
    "pybamm_reference.py": "tests/test_pybamm_reference.py (needs pybamm; slow)",
    "battery_pybamm.py": "test_battery_benchmark_runs (needs pybamm)",
    "plain_pybamm_dfn.py": "test_battery_benchmark_runs (needs pybamm)",
    "study_speedup.py": "test_study_speedup_benchmark_runs",
    "multiscale.py": "test_rve_batches_give_the_same_tensors_on_one_and_two_ranks",
    "scaling.py": "test_scaling_run_on_one_and_two_ranks",
    "mesh_cache.py": "test_mesh_cache_benchmark_reads_the_tags_it_built",
    "timed_run.py": "every driver (run.py, scaling.py, elasticity_3d.py) measures with it",
}


def test_every_script_in_benchmarks_is_run_by_a_test():
    scripts = {path.name for path in BENCHMARKS.glob("*.py")}
    assert scripts == set(RUN_BY), f"not run by any test: {scripts - set(RUN_BY)}"


@pytest.mark.parametrize("case", ["heat_3d", "reaction_front"])
def test_benchmark_and_its_plain_reference_agree(case, tmp_path):
    run(
        "benchmarks/run.py",
        *("--case", case, "--cells", "4", "--repeats", "1", "--phases", "--out", str(tmp_path)),
    )
    record = json.loads((tmp_path / f"{case}.json").read_text())
    assert record["agree"] and record["relative_difference"] < 1e-8, record
    assert record["cells"] == 4
    timers = record["scalebridge_phases"]["functions"]
    assert timers["app.simulation.Simulation.run"]["calls"] == 1
    assert timers["app.simulation.Simulation.step"]["calls"] >= 1


def test_benchmark_series_reads_the_cached_mesh_and_measures_cpu_time(tmp_path):
    """``--mesh-cache``: every timed ScaleBridge run reads the mesh its warm-up wrote (the plain
    script builds its own), with the same answer; both variants' CPU time is recorded."""
    run(
        "benchmarks/run.py",
        *("--cells", "4", "--repeats", "2", "--mesh-cache", "--out", str(tmp_path)),
    )
    record = json.loads((tmp_path / "heat_3d.json").read_text())
    assert record["mesh_cache"] and record["agree"], record
    assert [r["mesh_from_cache"] for r in record["scalebridge"]["runs"]] == [True, True]
    for variant in ("scalebridge", "plain"):
        cpu = [r["cpu_s"] for r in record[variant]["runs"]]
        assert all(t > 0 for t in cpu), record
        assert record["cpu_median_s"][variant] == pytest.approx(sum(cpu) / 2)
    ratio = record["cpu_median_s"]["scalebridge"] / record["cpu_median_s"]["plain"]
    assert record["ratio"]["cpu_median"] == pytest.approx(ratio)


def test_elasticity_benchmark_runs(tmp_path):
    """Two tiny refinements, two pairs each: CG + GAMG converges, the support carries the
    weight, the timers the script reports were recorded, a size's time is the median of its
    runs and each variant's peak memory is recorded."""
    run(
        "benchmarks/elasticity_3d.py",
        *("--sizes", "2", "3", "--plain", "--repeats", "2", "--out", str(tmp_path)),
    )
    record = json.loads((tmp_path / "elasticity_3d.json").read_text())
    assert record["weight_balanced"] and record["iterations_ok"], record
    assert all(row["plain_cg_iterations"] > 0 for row in record["rows"]), record
    assert [row["cells"] for row in record["rows"]] == [[8, 2, 2], [12, 3, 3]]
    for row in record["rows"]:
        assert len(row["runs"]) == 2, row
        middle = sorted(r["process_s"] for r in row["runs"])
        assert row["process_s"] == pytest.approx((middle[0] + middle[1]) / 2), row
        for single in row["runs"]:
            assert 0 < single["solve_s"] <= single["run_s"] < single["process_s"], single
        assert len(row["peak_rss_mb"]) == 1 and row["peak_rss_mb"][0] > 10, row
        assert len(row["plain_peak_rss_mb"]) == 1 and row["plain_peak_rss_mb"][0] > 10, row


def test_elasticity_benchmark_with_geometric_multigrid_solves_the_plain_scripts_problem(
    tmp_path,
):
    """``--gmg``: a coarse box refined (the plain script refines the same box by DOLFINx): the
    same discrete problem, so the same strain energy to the solver's tolerance; CG + GMG's
    iterations flat, CPU time and memory of both recorded."""
    run(
        "benchmarks/elasticity_3d.py",
        *("--gmg", "--sizes", "4", "8", "--plain", "--out", str(tmp_path)),
    )
    record = json.loads((tmp_path / "elasticity_3d_gmg.json").read_text())
    assert record["weight_balanced"] and record["iterations_ok"], record
    assert record["case"] == "benchmarks/elasticity_3d_gmg.toml"
    for row in record["rows"]:
        assert row["strain_energy_J"] == pytest.approx(row["plain_strain_energy_J"], rel=1e-7)
        assert row["cpu_s"] > 0 and row["plain_cpu_s"] > 0, row
    elasticity = load("elasticity_3d.py")
    assert [elasticity.levels(n) for n in (4, 22, 32, 44)] == [1, 1, 2, 2]  # 2, 11, 8, 11


def test_scaling_run_on_one_and_two_ranks(tmp_path):
    """The phases add up to the whole process on each rank count (the rest is what no timer
    holds); the projection follows Amdahl's law from the measured speed-ups; per-rank peak
    memory of the heat benchmark on 2 ranks is recorded for both variants."""
    run("benchmarks/scaling.py", "--cells", "4", "--repeats", "1", "--out", str(tmp_path))
    record = json.loads((tmp_path / "scaling.json").read_text())
    for ranks, medians in record["medians"].items():
        phases = sum(value for name, value in medians.items() if name != "whole process")
        assert phases == pytest.approx(medians["whole process"], rel=1e-9), ranks
    mesh = record["phases"]["mesh"]
    f = mesh["serial_fraction"]
    assert 0 <= f <= 1
    ghosts = load("scaling.py").halo(8, 6 * 4**3)
    assert mesh["projected_s"]["8"] == pytest.approx(
        mesh["s"]["1"] * (f + (1 - f) / 8) * (1 + ghosts)
    )
    assert set(record["dominant"]) == {"8", "64", "512"}
    run(
        "benchmarks/run.py",
        *("--cells", "4", "--repeats", "1", "--ranks", "2", "--out", str(tmp_path)),
    )
    memory = json.loads((tmp_path / "heat_3d_np2.json").read_text())
    for variant in ("scalebridge", "plain"):
        assert all(len(r["peak_rss_mb"]) == 2 for r in memory[variant]["runs"]), memory[variant]
        assert memory["peak_rss_mb_per_rank"][variant] > 10


def test_mesh_cache_benchmark_reads_the_tags_it_built():
    """On 1 and 2 ranks the cached read gives the tags the build gave, and creates no facets
    (their creation was most of a read: app/facet_tags.py)."""
    script = BENCHMARKS / "mesh_cache.py"
    outputs = [run(str(script), "--cells", "4", "--repeats", "1").stdout]
    process = mpi_python(script, "--cells", "4", "--repeats", "1")
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    outputs.append(process.stdout)
    for ranks, output in enumerate(outputs, start=1):
        record = json.loads(output.strip().splitlines()[-1])
        assert record["ranks"] == ranks and record["cells"] == 6 * 4**3, record
        assert record["same_tags"], record
        assert record["facetless"] and record["ratio"] > 0, record
        assert record["read_connectivity_s"] < record["read_s"], record


def test_amdahl_serial_fraction_and_halo():
    scaling = load("scaling.py")
    for fraction in (0.0, 0.1, 0.5, 1.0):
        speed_up = 1 / (fraction + (1 - fraction) / 2)
        assert scaling.amdahl_fraction(speed_up, 2) == pytest.approx(fraction, abs=1e-12)
    assert scaling.amdahl_fraction(2.5, 2) == 0.0  # super-linear: no serial part
    assert scaling.halo(1, 1000) == 0.0
    assert scaling.halo(8, 8 * 1000) == pytest.approx(0.6)  # a 10^3 block: 6 faces of 10^2


def test_phase_timers_find_every_function_by_name():
    """One list of dotted names; a function that is renamed or moved fails here."""
    phases = load("phases_scalebridge.py")
    for name in phases.TIMED:
        holder, attribute, function = phases.resolve(name)
        assert callable(function) and attribute == name.rpartition(".")[2], name
        assert callable(getattr(holder, attribute)), name
    assert len(set(phases.TIMED)) == len(phases.TIMED)
    for script in ("elasticity_3d.py", "scaling.py"):
        read = load(script).TIMERS.values()
        assert set(read) <= set(phases.TIMED), set(read) - set(phases.TIMED)
    with pytest.raises(LookupError, match=r"app\.fields\.interpolate: interpolate does not exist"):
        phases.resolve("app.fields.interpolate")  # the name that broke make bench


def test_gamg_variants_benchmark_runs(tmp_path):
    """benchmarks/gamg_variants.py at two tiny sizes: every variant's solution agrees with
    PETSc's default settings (the script refuses otherwise), and the record holds each."""
    variants = ["default", "threshold 0.01", "tuned + chebyshev 1 it", "sor smoother"]
    run(
        "benchmarks/gamg_variants.py",
        "--sizes",
        "3",
        "5",
        "--variants",
        *variants,
        "--out",
        str(tmp_path),
    )
    rows = json.loads((tmp_path / "gamg_variants.json").read_text())["rows"]
    assert [(row["n"], row["variant"]) for row in rows] == [
        (n, name) for n in (3, 5) for name in variants
    ]
    assert all(row["converged"] and row["iterations"] > 0 for row in rows), rows
    assert all(row["difference"] < 1e-6 for row in rows), rows


def test_quadrature_benchmark_runs():
    """benchmarks/quadrature.py: the group's degree against UFL's estimates, same solution."""
    command = [sys.executable, "benchmarks/quadrature.py", "--chen2020", "--repeats", "1"]
    process = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert process.returncode == 0, process.stderr[-3000:]
    assert "degree 4; UFL's estimates up to 12" in process.stdout, process.stdout
    difference = float(process.stdout.split("differ by ")[1].split()[0])
    assert difference < 1e-8, process.stdout


@pytest.mark.mpi
def test_battery_benchmark_runs(tmp_path):
    """Two minutes of the 1C discharge on a small mesh, ours against PyBaMM's: both deliver
    the same charge, and the record holds each side's medians and the ratios (no timing
    asserted)."""
    pytest.importorskip("pybamm")
    options = ["--tiny", "--repeats", "1", "--shared-cache", "--out", str(tmp_path)]
    run("benchmarks/battery_pybamm.py", *options)  # the suite's JIT cache: no compiling here
    record = json.loads((tmp_path / "battery_pybamm.json").read_text())
    assert abs(record["capacity_relative"]) < 1e-6, record  # 5 A for 120 s on both sides
    assert record["voltage_rms_V"] < 0.05, record  # small mesh against PyBaMM's default one
    for key in ("wall_s", "cpu_s", "peak_mb"):
        assert record[f"ratio_{key}"] > 0, record


def test_study_speedup_benchmark_runs(tmp_path):
    """A few members on one rank and on two groups: the same table (no timing asserted)."""
    run("benchmarks/study_speedup.py", "--samples", "4", "--repeats", "1", "--out", str(tmp_path))
    record = json.loads((tmp_path / "study_speedup.json").read_text())
    assert record["same_table"] and record["members"] == 4, record


@pytest.mark.mpi
def test_rve_batches_give_the_same_tensors_on_one_and_two_ranks(tmp_path):
    """benchmarks/multiscale.py --case batch at a tiny size: the groups of two ranks solve the
    same cells as one rank, to the last digit (the timing is the benchmark's, not asserted)."""
    command = [sys.executable, "benchmarks/multiscale.py", "--case", "batch"]
    options = ["--count", "4", "--size", "0.2", "--repeats", "1", "--out", str(tmp_path)]
    process = subprocess.run(
        [*command, *options], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    record = json.loads((tmp_path / "multiscale_batch.json").read_text())
    assert record["count"] == 4 and record["difference"] == 0.0
