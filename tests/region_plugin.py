"""Test plug-ins whose fields live on a region or a boundary, and a runner for 1 and 2 ranks.

``python tests/region_plugin.py`` (under mpirun) runs :func:`coupled_case` and prints the
quantities and the nodal values gathered on rank 0 as JSON, for the parallel test.
"""

import json
import math
import sys

import numpy as np
import ufl
from mpi4py import MPI
from pydantic import Field

from app.contracts import Dirichlet, FieldSpec, Parameters, Physics, Property, Quantity, quantity


class RegionSpecies(Physics):
    """A species on one region: -D c'' + k c = 0 (plus storage), c fixed on one boundary.

    Provides ``heat_source = q c`` on the same region (derived) when ``heating`` is nonzero.
    """

    name = "region_species"

    class Parameters(Parameters):
        region: str = Field(description="Region the species lives on")
        boundary: str = Field(description="Boundary where c is fixed")
        value: Property = quantity("mol/m^3", 1.0, "Fixed value")
        initial: Property = quantity("mol/m^3", 0.0, "Initial value")
        diffusivity: float = 1.0
        decay: float = 1.0
        heating: float = 0.0
        everywhere: bool = Field(False, description="Integrate over every cell (a bug)")

    @property
    def provides(self):
        p = self.params
        specs = [FieldSpec("c", "scalar", "mol/m^3", ("Lagrange", 2), region=p.region)]
        if p.heating:
            specs.append(
                FieldSpec(
                    "heat_source", "scalar", "W/m^3", ("DG", 1), region=p.region, derived=True
                )
            )
        return specs

    def residual(self, ctx):
        p = self.params
        c, w = ctx.field("c"), ctx.test("c")
        dx = ctx.dx() if p.everywhere else ctx.dx(p.region)
        return (p.diffusivity * ufl.inner(ufl.grad(c), ufl.grad(w)) + p.decay * c * w) * dx

    def capacity(self, ctx):
        return {"c": 1.0}

    def dirichlet(self, ctx):
        return [Dirichlet("c", self.params.boundary, ctx.coefficient(self.params.value))]

    def initial(self, ctx):
        return {"c": ctx.coefficient(self.params.initial)}

    def derived(self, ctx):
        return {"heat_source": self.params.heating * ctx.field("c")} if self.params.heating else {}

    def quantities(self, ctx):
        c, region = ctx.field("c"), self.params.region
        return {
            "amount": Quantity.integral(c * ctx.dx(region), "mol/m^2"),
            "inflow": Quantity.reaction("c", self.params.boundary, "mol/(m^2*s)"),
            "max_c": Quantity.maximum("c", "mol/m^3"),
        }


class SurfaceSpecies(Physics):
    """An adsorbed species on a boundary: d(theta)/dt = ka c - kd theta, c read from the bulk."""

    name = "surface_species"

    class Parameters(Parameters):
        boundary: str = Field(description="Boundary the adsorbed species lives on")
        ka: float = 1.0
        kd: float = 0.5

    @property
    def provides(self):
        return [FieldSpec("theta", "scalar", "mol/m^2", region=self.params.boundary)]

    @property
    def requires(self):
        return [FieldSpec("c", "scalar", "mol/m^3")]

    def residual(self, ctx):
        p = self.params
        theta, w = ctx.field("theta"), ctx.test("theta")
        return -(p.ka * ctx.field("c") - p.kd * theta) * w * ctx.ds(p.boundary)

    def capacity(self, ctx):
        return {"theta": 1.0}

    def quantities(self, ctx):
        theta = ctx.field("theta")
        return {"adsorbed": Quantity.integral(theta * ctx.ds(self.params.boundary), "mol/m")}


def surface_case(dt: float = 0.02, diffusivity: float = 1000.0) -> dict:
    """A unit square of solute (c = 1) adsorbing on its top side (surface_species)."""
    return {
        "mesh": {"type": "rectangle", "cells": [8, 8]},
        "physics": {
            "bulk": {
                "type": "mass_transport",
                "species": {
                    "c": {
                        "diffusivity": diffusivity,
                        "initial": 1.0,
                        "boundaries": {"top": {"type": "flux", "value": "-(c - 0.5*theta)"}},
                    }
                },
            },
            "film": {"type": "surface_species", "boundary": "top"},
        },
        "time": {"scheme": "bdf2", "end": 1.0, "dt": dt},
        "output": {"interval": 0.25},
    }


def exact_species(x: np.ndarray, m: float) -> np.ndarray:
    """c = cosh(m (1 - x)) / cosh(m) on [0, 1]: c(0) = 1, no flux at x = 1."""
    return np.cosh(m * (1 - x)) / math.cosh(m)


def exact_temperature(x: np.ndarray, m: float, q: float) -> np.ndarray:
    """-T'' = q c on [0, 1], 0 on [1, 2]; T(0) = T(2) = 0 (derivation in test_regions.py)."""
    c1 = 1 / math.cosh(m)
    slope = q * (c1 - 1) / (2 * m**2)
    left = -q * exact_species(x, m) / m**2 + slope * x + q / m**2
    right = slope * x - 2 * slope
    return np.where(x <= 1, left, right)


def coupled_case(cells: int = 40, heating: float = 3.0, steady: bool = True) -> dict:
    case = {
        "mesh": {
            "type": "interval",
            "length": [2.0],
            "cells": [cells],
            "regions": {"core": "x < 1"},
        },
        "physics": {
            "species": {"type": "region_species", "region": "core", "boundary": "left"},
            "heat": {
                "degree": 2,
                "boundaries": {
                    "left": {"type": "temperature", "value": 0.0},
                    "right": {"type": "temperature", "value": 0.0},
                },
            },
        },
    }
    case["physics"]["species"]["heating"] = heating
    if not steady:
        case["time"] = {"scheme": "bdf2", "end": 0.5, "dt": 0.05}
        case["output"] = {"interval": 0.25}
    return case


def use_plugin(monkeypatch) -> None:
    """Make ``region_species`` (and the built-in heat) the plug-ins the registry finds."""
    from app import registry

    monkeypatch.setattr(registry, "discover", lambda: plugins())


def plugins():
    """The built-in heat and mass transport, and the two test plug-ins."""
    from app import registry
    from physics_modules.heat import Heat
    from physics_modules.mass_transport import MassTransport

    classes = {"heat": Heat, "mass_transport": MassTransport}
    classes |= {"region_species": RegionSpecies, "surface_species": SurfaceSpecies}
    return registry.Plugins(classes, {})


def main() -> None:
    from app import registry
    from app.simulation import Simulation

    registry.discover = plugins
    mode = sys.argv[1]
    case = surface_case() if mode == "surface" else coupled_case(steady=mode == "steady")
    result = Simulation.from_case(case).run()
    comm = MPI.COMM_WORLD
    values = {}
    for name in ("theta",) if mode == "surface" else ("c", "temperature"):
        function = result.fields[name]
        space = function.function_space
        owned = space.dofmap.index_map.size_local
        x = space.tabulate_dof_coordinates()[:owned, 0]
        pairs = comm.gather(np.column_stack([x, function.x.array[:owned]]), root=0)
        if comm.rank == 0:
            stacked = np.vstack(pairs)
            values[name] = stacked[np.lexsort((stacked[:, 1], stacked[:, 0]))].tolist()
    if comm.rank == 0:
        quantities = {k: v.tolist() for k, v in result.quantities.items()}
        print(json.dumps({"quantities": quantities, "values": values}))


if __name__ == "__main__":
    main()
