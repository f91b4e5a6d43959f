"""Traces: a field of the parent (or of one of its regions) read by an instance on a boundary.

A species c lives in region 'b' (x > 1) of a [0, 2] x [0, 1] rectangle and exchanges with a film
species s on the part of the top boundary beside 'b': the bulk loses k (c - s) per unit length
of the top, the film gains k (lambda - s), lambda the trace of c on the top (an unknown of the
same Newton system). Whatever leaves one enters the other: the total amount is conserved to
round-off, and at late times both tend to the common value fixed by that total.
"""

import numpy as np
import pytest
import tomli_w

from app.errors import CaseError
from app.simulation import Simulation
from tests.conftest import assert_same_quantities, runs_on_ranks

K = 0.5


def exchange_case(cells: int = 8, end: float = 2.0) -> dict:
    return {
        "mesh": {
            "type": "rectangle",
            "length": [2.0, 1.0],
            "cells": [cells, 4],
            "cell": "quadrilateral",
            "regions": {"a": "x < 1", "b": "x > 1"},
        },
        "physics": {
            "bulk": {
                "type": "mass_transport",
                "species": {
                    "c": {
                        "region": "b",
                        "diffusivity": 0.3,
                        "initial": "1 + (x - 1)*y",
                        "boundaries": {
                            "top": {"type": "mass_transfer", "coefficient": K, "ambient": "s"}
                        },
                    }
                },
            },
            "film": {
                "type": "mass_transport",
                "domain": "top",
                "regions": ["b"],
                "species": {"s": {"diffusivity": 0.1, "source": f"{K}*(c - s)"}},
            },
        },
        "time": {"scheme": "bdf2", "dt": 0.05, "end": end},
        "output": {"interval": 0.5},
    }


def test_the_exchange_through_a_trace_conserves_the_total():
    sim = Simulation.from_case(exchange_case())
    result = sim.run()
    trace = result.fields["c_top"]
    assert trace.function_space.mesh.name == "top"
    assert sim.store["c_top"].parts == ("b",)
    q = result.quantities
    bulk, film = q["bulk_amount_c_mol_per_m"], q["film_amount_s_mol_per_m2"]
    total = bulk + film
    assert film[0] == 0 and film[-1] > 0.1
    np.testing.assert_allclose(total, total[0], rtol=1e-12)
    # what the bulk loses through the top is what the film generates, at every row
    np.testing.assert_allclose(
        q["bulk_outflow_c_top_mol_per_s_per_m"], q["film_generated_s_mol_per_s_per_m2"], rtol=1e-10
    )


def test_the_trace_is_the_surface_value_and_zero_off_the_region():
    """The trace of the initial field 1 + (x - 1) y on the top (y = 1) is x, on the nodes of
    the top beside 'b', and 0 beside 'a' (solved by the consistent initialisation)."""
    case = exchange_case(end=0.05)
    sim = Simulation.from_case(case)
    sim.run()
    sim.reset()
    sim.initialise()
    trace = sim.store["c_top"].function
    x = trace.function_space.tabulate_dof_coordinates()[:, 0]
    data = sim.domains.named(trace.function_space.mesh)
    beside_b = np.zeros(len(x), dtype=bool)
    cells = data.cell_tags.find(data.regions["b"])
    beside_b[trace.function_space.dofmap.list[cells].ravel()] = True
    assert np.abs(trace.x.array[beside_b] - x[beside_b]).max() < 1e-12
    assert np.abs(trace.x.array[~beside_b]).max() < 1e-14


def test_a_derived_parent_field_has_no_trace():
    case = exchange_case()
    case["physics"]["double"] = {
        "type": "prescribed",
        "fields": {"h": {"units": "mol/m^3", "value": "2*y"}},
    }
    case["physics"]["film"]["species"]["s"]["source"] = f"{K}*(h - s)"
    with pytest.raises(
        CaseError,
        match=r"physics\.film: 'film' lives on the boundary 'top' and "
        r"reads 'h', which is a derived field",
    ):
        Simulation.from_case(case).build()


def test_the_exchange_on_two_ranks(tmp_path):
    path = tmp_path / "exchange.toml"
    path.write_text(tomli_w.dumps(exchange_case(cells=12, end=0.5)))
    serial, parallel = runs_on_ranks(path, tmp_path)
    assert_same_quantities(serial, parallel, rtol=1e-9, floor=1e-12)
