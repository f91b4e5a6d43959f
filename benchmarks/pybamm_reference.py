"""PyBaMM reference data for the battery scenario: small CSVs in tests/data/.

Runs PyBaMM's DFN (default options; the lumped-thermal option for one case) from SOC 1
(``set_initial_state``, cyclable lithium kept) at 298.15 K, on a mesh of ``--points`` points per
domain (x_n, x_s, x_p, r_n, r_p; default 160), with tight IDAKLU tolerances, and writes one CSV per
scenario: ``time_s, current_A, voltage_V, discharge_capacity_Ah, temperature_K`` (plus ``step``
for a protocol), about 200 rows, under a header saying how it was made. Current is positive on
discharge and the discharge capacity is the running integral of the current (PyBaMM's
conventions).

With ``--convergence`` each scenario also runs at N/4 and N/2 points (40 and 80); the header
then records the voltage RMS between meshes and the Richardson estimate of the error of the
written (finest) mesh, from the observed order p of the three meshes (BATTERY_MODEL.md sec. 8):
``error(N) ~ RMS(V_N - V_N/2) / (2^p - 1)``.

    .venv/bin/python benchmarks/pybamm_reference.py --convergence     # all, as committed
    .venv/bin/python benchmarks/pybamm_reference.py --case Marquis2019_DFN_1C --out /tmp/ref

The CSVs are committed, so the tests do not need PyBaMM at run time; a test checks that this
script reproduces one of them when PyBaMM is installed.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
RTOL, ATOL = 1e-8, 1e-10
ROWS = 200  # about this many output rows per scenario
COLUMNS = ["time_s", "current_A", "voltage_V", "discharge_capacity_Ah", "temperature_K"]
CCCV = (
    "Discharge at 1C until 2.5 V",
    "Rest for 1 hour",
    "Charge at C/2 until 4.2 V",
    "Hold at 4.2 V until C/20",
    "Rest for 1 hour",
)


@dataclass(frozen=True)
class Scenario:
    """One reference run: a parameter set and a constant-current discharge or a protocol."""

    parameter_set: str
    c_rate: float | None = None  # constant-current discharge to the lower cut-off
    steps: tuple[str, ...] = ()  # or a PyBaMM experiment
    options: dict = field(default_factory=dict)

    def describe(self) -> str:
        if self.steps:
            return "experiment: " + "; ".join(self.steps)
        return f"constant-current discharge at {self.c_rate:g}C until the lower voltage cut-off"


SCENARIOS = {
    "Chen2020_DFN_0.5C": Scenario("Chen2020", c_rate=0.5),
    "Chen2020_DFN_1C": Scenario("Chen2020", c_rate=1.0),
    "Chen2020_DFN_2C": Scenario("Chen2020", c_rate=2.0),
    "Chen2020_DFN_CCCV": Scenario("Chen2020", steps=CCCV),
    "Marquis2019_DFN_1C": Scenario("Marquis2019", c_rate=1.0),
    "Chen2020_DFN_lumped_1C": Scenario("Chen2020", c_rate=1.0, options={"thermal": "lumped"}),
    "Marquis2019_DFN_lumped_1C": Scenario("Marquis2019", c_rate=1.0, options={"thermal": "lumped"}),
}


def solve(scenario: Scenario, points: int) -> dict[str, np.ndarray]:
    """The scenario's output columns on a mesh of ``points`` per domain."""
    import pybamm

    model = pybamm.lithium_ion.DFN(options=dict(scenario.options))
    values = pybamm.ParameterValues(scenario.parameter_set)
    values.set_initial_state(1.0)
    mesh = dict.fromkeys(("x_n", "x_s", "x_p", "r_n", "r_p"), points)
    solver = pybamm.IDAKLUSolver(rtol=RTOL, atol=ATOL)
    if scenario.steps:
        experiment = pybamm.Experiment(list(scenario.steps), period="100 seconds")
        simulation = pybamm.Simulation(
            model, parameter_values=values, experiment=experiment, var_pts=mesh, solver=solver
        )
        solution = simulation.solve()
        # each step of the list is a cycle of its own
        done = [step for cycle in solution.cycles for step in cycle.steps]
        steps = np.concatenate([np.full(len(step.t), index) for index, step in enumerate(done)])
    else:
        current = scenario.c_rate * values["Nominal cell capacity [A.h]"]
        values["Current function [A]"] = current
        simulation = pybamm.Simulation(model, parameter_values=values, var_pts=mesh, solver=solver)
        duration = 3600 / scenario.c_rate  # rows every duration/ROWS until the cut-off
        times = np.linspace(0, 2 * duration, 2 * ROWS + 1)
        solution = simulation.solve([0, times[-1]], t_interp=times)
        if "Minimum voltage" not in solution.termination:
            raise RuntimeError(f"the discharge did not reach the cut-off: {solution.termination}")
        steps = None
    columns = {
        "time_s": solution["Time [s]"].entries,
        "current_A": solution["Current [A]"].entries,
        "voltage_V": solution["Voltage [V]"].entries,
        "discharge_capacity_Ah": solution["Discharge capacity [A.h]"].entries,
        "temperature_K": solution["Volume-averaged cell temperature [K]"].entries,
    }
    if steps is not None:
        columns["step"] = steps
    return {name: np.asarray(values, dtype=float).ravel() for name, values in columns.items()}


def voltage_rms(fine: dict, coarse: dict) -> float:
    """RMS of the voltage difference in V, step by step on the times both runs cover."""
    steps = fine.get("step", np.zeros_like(fine["time_s"]))
    coarse_steps = coarse.get("step", np.zeros_like(coarse["time_s"]))
    squares = []
    for step in np.unique(steps):
        mine, theirs = steps == step, coarse_steps == step
        t, v = fine["time_s"][mine], fine["voltage_V"][mine]
        tc, vc = coarse["time_s"][theirs], coarse["voltage_V"][theirs]
        common = (t >= tc.min()) & (t <= tc.max())
        squares.append((v[common] - np.interp(t[common], tc, vc)) ** 2)
    return float(np.sqrt(np.mean(np.concatenate(squares))))


def convergence_lines(runs: dict[int, dict]) -> list[str]:
    """Header lines on mesh convergence from runs at N/4, N/2 and N points."""
    coarse, middle, fine = sorted(runs)
    rms_coarse = voltage_rms(runs[fine], runs[coarse])
    rms_middle = voltage_rms(runs[fine], runs[middle])
    rms_step = voltage_rms(runs[middle], runs[coarse])
    order = math.log2(rms_step / rms_middle)
    estimate = rms_middle / (2**order - 1)
    capacity = {n: runs[n]["discharge_capacity_Ah"][-1] for n in runs}
    return [
        f"convergence: voltage RMS {coarse} vs {fine} points {1e3 * rms_coarse:.4f} mV, "
        f"{middle} vs {fine} points {1e3 * rms_middle:.4f} mV; observed order {order:.2f}",
        f"estimated error of this file (Richardson): voltage RMS {1e3 * estimate:.4f} mV",
        "final discharge capacity by mesh: "
        + ", ".join(f"{n} points {capacity[n]:.6f} A h" for n in sorted(runs)),
    ]


def write(path: Path, name: str, scenario: Scenario, columns: dict, points: int, notes: list[str]):
    import pybamm

    header = [
        f"PyBaMM {pybamm.__version__} reference '{name}', "
        "written by benchmarks/pybamm_reference.py",
        f"model: lithium_ion.DFN(options={scenario.options or {}}) (default options otherwise)",
        f"parameter set: {scenario.parameter_set}; initial state: set_initial_state(1.0) "
        "(SOC 1, cyclable lithium kept); T_init = T_amb = 298.15 K",
        scenario.describe(),
        f"mesh: {points} points per domain (x_n, x_s, x_p, r_n, r_p); "
        f"solver: IDAKLUSolver(rtol={RTOL:g}, atol={ATOL:g})",
        "current positive on discharge; discharge capacity = running integral of the current",
        *notes,
    ]
    names = [*COLUMNS, *(["step"] if "step" in columns else [])]
    data = np.column_stack([columns[n] for n in names])
    formats = ["%.10g"] * len(COLUMNS) + (["%d"] if "step" in columns else [])
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as stream:
        stream.writelines(f"# {line}\n" for line in header)
        stream.write(",".join(names) + "\n")
        np.savetxt(stream, data, fmt=formats, delimiter=",")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", action="append", choices=sorted(SCENARIOS), help="default: all")
    parser.add_argument("--points", type=int, default=160, help="points per domain (default 160)")
    parser.add_argument("--convergence", action="store_true", help="also run N/4 and N/2")
    parser.add_argument("--out", type=Path, default=DATA, help="folder (default tests/data)")
    args = parser.parse_args(argv)
    for name in args.case or list(SCENARIOS):
        scenario, started = SCENARIOS[name], time.perf_counter()
        meshes = [args.points // 4, args.points // 2, args.points]
        runs = {n: solve(scenario, n) for n in (meshes if args.convergence else meshes[-1:])}
        notes = convergence_lines(runs) if args.convergence else []
        path = args.out / f"pybamm_{name}.csv"
        write(path, name, scenario, runs[args.points], args.points, notes)
        print(f"{name}: {time.perf_counter() - started:.1f} s", *notes, sep="\n  ", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
