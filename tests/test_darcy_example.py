"""The out-of-tree example plug-in examples/darcy_flow, as a user's package would be used.

`make install` installs it into the venv (pip install -e examples/darcy_flow); ScaleBridge finds
it only through its `scalebridge.physics` entry point. Its coupled case (a dye carried by the
Darcy velocity, solved by the built-in mass_transport) is checked against the closed form of
Ogata & Banks and run on 1 and 2 ranks; the example's own verification tests run too.
"""

import math
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest
from scipy.special import erfc, erfcx

from app import registry
from app.simulation import Simulation
from tests.conftest import ROOT, assert_same_quantities, read_quantities, scalebridge

EXAMPLE = ROOT / "examples" / "darcy_flow"
TRACER = EXAMPLE / "cases" / "tracer.toml"
Q, POROSITY, DISPERSION = 1e-3, 0.4, 1e-5  # Darcy flux (m/s), eps, D (m^2/s) of tracer.toml


def ogata_banks(x: np.ndarray, t: float) -> np.ndarray:
    """c/c0 for a step at x = 0 in a semi-infinite column (exp(a) erfc(b) as erfcx)."""
    v, d = Q / POROSITY, DISPERSION / POROSITY
    spread = 2 * math.sqrt(d * t)
    a, b = (x - v * t) / spread, (x + v * t) / spread
    return 0.5 * erfc(a) + 0.5 * np.exp(v * x / d - b**2) * erfcx(b)


@pytest.fixture(scope="module")
def tracer():
    sim = Simulation.from_case(TRACER)
    return sim, sim.run()


def test_found_through_its_entry_point_only():
    (entry,) = [e for e in entry_points(group=registry.GROUP) if e.name == "darcy_flow"]
    assert entry.value == "darcy_flow:DarcyFlow"
    assert entry.dist.name == "scalebridge-darcy-flow"  # not scalebridge's own entry points
    cls = registry.discover().classes["darcy_flow"]
    assert Path(sys.modules[cls.__module__].__file__).resolve() == EXAMPLE / "darcy_flow.py"
    process = scalebridge("modules", "darcy_flow")
    assert process.returncode == 0, process.stderr
    assert process.stdout.startswith("darcy_flow: Darcy flow in a porous medium")
    assert "permeability [m^2] required" in process.stdout


def test_velocity_is_darcys_law(tracer):
    _, result = tracer
    velocity = result.fields["velocity"].x.array.reshape(-1, 2)
    assert np.allclose(velocity[:, 0], Q, rtol=1e-12) and np.abs(velocity[:, 1]).max() < 1e-15
    q = result.quantities
    assert q["flow_outflow_right_m3_per_s_per_m"][-1] == pytest.approx(Q * 0.1, rel=1e-12)


def test_tracer_front_matches_ogata_banks(tracer):
    """The profile at 200 s to 0.5 % of c0; the amount in the column at every output to 1e-4."""
    _, result = tracer
    dye = result.fields["dye"]
    x = dye.function_space.tabulate_dof_coordinates()[:, 0]
    assert np.abs(dye.x.array - ogata_banks(x, 200.0)).max() < 5e-3
    q = result.quantities
    grid = np.linspace(0.0, 1.0, 20001)
    for t, amount in zip(q["time_s"][1:], q["tracer_amount_dye_mol_per_m"][1:], strict=True):
        exact = POROSITY * 0.1 * np.trapezoid(ogata_banks(grid, t), grid)
        assert amount == pytest.approx(exact, rel=1e-4), t
    assert q["tracer_amount_dye_mol_per_m"][-1] > 0.9 * POROSITY * 0.1 * 0.5  # front near 0.5 m


@pytest.mark.mpi
def test_tracer_case_on_two_ranks_agrees(tracer, tmp_path):
    _, result = tracer
    process = scalebridge("run", TRACER, "-o", tmp_path / "np2", "-q", ranks=2)
    assert process.returncode == 0, process.stderr
    parallel = read_quantities(tmp_path / "np2")
    assert_same_quantities({k: list(v) for k, v in result.quantities.items()}, parallel)


def test_example_verification_suite_passes():
    """The example's own tests (closed forms and the conformance kit), as its author runs them."""
    process = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-2000:]
    assert "7 passed" in process.stdout
