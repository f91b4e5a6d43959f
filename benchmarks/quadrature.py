"""Step time at the group's quadrature degree against UFL's estimated degrees (app/forms.py).

Builds a case, times its step (solve from the same start, median of ``--repeats``, after JIT),
then strips the degree the framework gave every form, so FFCx falls back to UFL's estimate per
integral, rebuilds the solvers and times again. Prints both degrees, both times and the ratio.

    .venv/bin/python benchmarks/quadrature.py cases/porous_electrode.toml
    .venv/bin/python benchmarks/quadrature.py cases/porous_electrode.toml \\
        --set physics.kinetics.kinetics=butler_volmer
    .venv/bin/python benchmarks/quadrature.py --chen2020            # 1D, 400 cells
    .venv/bin/python benchmarks/quadrature.py --chen2020 --2d       # 100 x 20 cells

``--chen2020`` is cases/porous_electrode.toml with Butler-Volmer kinetics whose exchange current
and open-circuit potential are Chen2020's expressions of the concentrations (given by
``prescribed``) and an electrolyte conductivity kappa(c_e): the forms of a battery model.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import ufl
from ufl.algorithms import compute_form_data

import app  # noqa: F401  (MPI before dolfinx)
from app.simulation import Simulation
from app.solvers import make_solver

ROOT = Path(__file__).resolve().parent.parent
OCP = (
    "1.9793*exp(-39.3631*theta) + 0.2482 - 0.0909*tanh(29.8538*(theta - 0.1234))"
    " - 0.04478*tanh(14.9159*(theta - 0.2769)) - 0.0205*tanh(30.4444*(theta - 0.6103))"
)


def chen2020(two_d: bool) -> dict[str, Any]:
    case = tomllib.loads((ROOT / "cases" / "porous_electrode.toml").read_text())
    case["physics"]["kinetics"] |= {
        "kinetics": "butler_volmer",
        "stoichiometry": "c_s/33133",
        "exchange_current_density": "6.48e-7*sqrt(c_e*c_s*(33133 - c_s))",
        "open_circuit_potential": OCP,
        "fields": {"stoichiometry": "theta"},
    }
    kappa = "0.1297*(c_e/1000)**3 - 2.51*(c_e/1000)**1.5 + 3.329*(c_e/1000)"
    case["physics"]["electrolyte"]["conductivity"] = kappa
    case["physics"]["solid"]["boundaries"]["right"]["value"] = 0.2  # near the OCP
    concentrations = {"c_e": "1000 + 2e6*x", "c_s": "20000 - 1e7*x"}
    case["physics"]["given"] = {
        "type": "prescribed",
        "fields": {n: {"units": "mol/m^3", "value": v} for n, v in concentrations.items()},
    }
    case["mesh"] = {"type": "interval", "length": [100e-6], "cells": [400]}
    if two_d:
        case["mesh"] = {"type": "rectangle", "length": [100e-6, 20e-6], "cells": [100, 20]}
    return case


def step_time(sim: Simulation, repeats: int) -> tuple[float, np.ndarray]:
    """Median wall time of a step from the same start (the first three warm up), and the
    unknowns it reaches."""
    times = []
    for attempt in range(repeats + 3):
        started = time.perf_counter()
        report = sim.step(0.0, 1.0)
        if attempt >= 3:
            times.append(time.perf_counter() - started)
        assert report.converged, report.reason
        solution = np.concatenate([f.function.x.array for g in sim.groups for f in g.unknowns])
        sim.rollback()
    return statistics.median(times), solution


def estimated(form: ufl.Form) -> int:
    """The highest degree UFL estimates for the form's integrals (what FFCx would use)."""
    data = compute_form_data(
        form,
        do_apply_function_pullbacks=True,
        do_apply_integral_scaling=True,
        do_apply_geometry_lowering=True,
        preserve_geometry_types=(ufl.classes.Jacobian,),
        do_append_everywhere_integrals=False,
    )
    return max(
        i.metadata()["estimated_polynomial_degree"]
        for d in data.integral_data
        for i in d.integrals
        if "quadrature_degree" not in i.metadata()
    )


def stripped(form: ufl.Form | None, degree: int) -> ufl.Form | None:
    """The form without the group's degree (quadrature a plug-in chose stays)."""
    if form is None:
        return None
    integrals = []
    for integral in form.integrals():
        metadata = integral.metadata()
        if "quadrature_rule" not in metadata and metadata.get("quadrature_degree") == degree:
            metadata = {k: v for k, v in metadata.items() if k != "quadrature_degree"}
        integrals.append(integral.reconstruct(metadata=metadata))
    return ufl.Form(integrals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("case", nargs="?", help="case file (or --chen2020)")
    parser.add_argument("--set", action="append", default=[], help="dotted.path=value")
    parser.add_argument("--chen2020", action="store_true")
    parser.add_argument("--2d", dest="two_d", action="store_true")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    source = chen2020(args.two_d) if args.chen2020 else args.case
    sim = Simulation.from_case(source, overrides=args.set, base_dir=ROOT / "cases")
    sim.compile()
    ours, solution = step_time(sim, args.repeats)
    degrees = []
    for group in sim.groups:
        system = group.system
        degree = group.quadrature_degree
        system.residuals = [stripped(F, degree) for F in system.residuals]
        system.jacobian = [[stripped(J, degree) for J in row] for row in system.jacobian]
        forms = [*system.residuals, *(J for row in system.jacobian for J in row if J)]
        degrees.append((degree, max(map(estimated, forms))))
        group.solver = make_solver(system, sim.case.solver, group.name)
    theirs, reference = step_time(sim, args.repeats)
    for (degree, estimate), group in zip(degrees, sim.groups, strict=True):
        print(f"group '{group.name}': degree {degree}; UFL's estimates up to {estimate}")
    print(
        f"step: {1e3 * ours:.3f} ms at the group's degree, {1e3 * theirs:.3f} ms at UFL's "
        f"estimates: ratio {ours / theirs:.2f} (median of {args.repeats}); the solutions differ "
        f"by {np.abs(solution - reference).max() / np.abs(reference).max():.1e} (max, relative)"
    )


if __name__ == "__main__":
    main()
