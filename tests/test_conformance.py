"""The conformance kit (app.testing) on every installed plug-in, and on deliberately broken ones.

Each built-in plug-in (and the example plug-in darcy_flow, found through its entry point only)
passes every check on a small nonlinear or coupled case: parameter round trip, provided fields
with their declared ranks, compilation in the dimensions it supports, its Jacobian against
finite differences and 1 vs 2 ranks. Broken plug-ins show that each kind of mistake is caught
with a message naming it: a residual that reads its unknown through a copy (wrong Jacobian), a
derived field of the wrong rank, a result that depends on the number of ranks.
"""

import tomllib
from pathlib import Path

import pytest
import ufl
from dolfinx import fem
from mpi4py import MPI

from app.conformance import read_case, run_checked
from app.conformance_parallel import Serial, compare
from app.contracts import Dirichlet, FieldSpec, Physics, Quantity
from app.testing import (
    check_compiles,
    check_jacobian,
    check_parallel,
    check_plugin,
    check_provided_fields,
    check_schema_roundtrip,
)
from tests.conftest import ROOT


def shortened(path: Path, end: float | None) -> dict:
    """A case file as a dict, run only to ``end`` (None: as it is)."""
    with path.open("rb") as stream:
        case = tomllib.load(stream)
    if end is not None:
        case["time"]["end"] = end
    return case


RECTANGLE = {"type": "rectangle", "length": [1.0, 0.5], "cells": [6, 3]}
TRANSIENT = {"scheme": "bdf1", "end": 2.0, "dt": 1.0}

CASES = {
    "heat": {
        "mesh": RECTANGLE,
        "physics": {
            "heat": {
                "conductivity": "10*(1 + 1e-3*(temperature - 300))",
                "source": "1e3*x",
                "initial": "300 + 20*x",
                "boundaries": {
                    "left": {"type": "temperature", "value": "300 + 5*t"},
                    "right": {"type": "radiation", "emissivity": 0.8, "ambient": 280},
                },
            }
        },
        "time": TRANSIENT,
    },
    "mechanics": {
        "mesh": RECTANGLE,
        "physics": {
            "mechanics": {
                "youngs_modulus": 1e6,
                "poisson_ratio": 0.3,
                "large_deformation": True,
                "thermal_expansion": 1e-3,
                "boundaries": {
                    "left": {"type": "fixed"},
                    "right": {"type": "pressure", "value": "2e4*t"},
                },
            },
            "imposed": {
                "type": "prescribed",
                "fields": {"temperature": {"units": "K", "value": "293.15 + 20*x"}},
            },
        },
        "time": {"scheme": "steady", "end": 2.0, "dt": 1.0},
    },
    "electrostatics": {
        "mesh": RECTANGLE,
        "physics": {
            "electrostatics": {
                "mode": "conduction",
                "conductivity": "1 + potential**2",
                "joule_heating": True,
                "boundaries": {
                    "left": {"type": "potential", "value": 0.0},
                    "right": {"type": "total_current", "value": "0.5*t"},
                },
            }
        },
        "time": {"scheme": "steady", "end": 2.0, "dt": 1.0},
    },
    "prescribed": {
        "mesh": RECTANGLE,
        "physics": {
            "prescribed": {
                "fields": {
                    "heat_source": {"units": "W/m^3", "value": "1e3*x*t"},
                    "porosity": {"units": "dimensionless", "value": 0.4, "degree": 0},
                }
            },
            "heat": {"boundaries": {"left": {"type": "temperature", "value": 300}}},
        },
        "time": TRANSIENT,
    },
    "mass_transport": {
        "mesh": RECTANGLE,
        "physics": {
            "mass_transport": {
                "porosity": 0.5,
                "species": {
                    "c": {
                        "diffusivity": "1e-2*(1 + c)",
                        "source": "-0.5*c**2",
                        "initial": 0.1,
                        "boundaries": {
                            "left": {"type": "concentration", "value": 1.0},
                            "right": {"type": "mass_transfer", "coefficient": 0.1, "ambient": 0},
                        },
                    }
                },
            }
        },
        "time": TRANSIENT,
    },
    # A particle per x along the rectangle's y (r), filled through its surface (top).
    "particle_stress": {
        "mesh": RECTANGLE,
        "physics": {
            "mass_transport": {
                "coordinates": "spherical",
                "radial_axis": 1,
                "species": {
                    "c": {
                        "diffusivity": "1e-2*(1 + c)",
                        "initial": 1.0,
                        "boundaries": {"top": {"type": "flux", "value": "0.1*(1 + x)"}},
                    }
                },
            },
            "particle_stress": {
                "concentration": "c",
                "partial_molar_volume": 3e-6,
                "young_modulus": 1e10,
                "poisson_ratio": 0.3,
            },
        },
        "time": TRANSIENT,
    },
    # Coupled with mass_transport; species at exactly zero ahead of the front (kinks of max(c, 0)).
    "reaction_kinetics": shortened(ROOT / "cases" / "precipitation_front.toml", 0.05),
    "butler_volmer": shortened(ROOT / "cases" / "porous_electrode.toml", None),
    # Moduli of a graded mineral fraction (self-consistent: the tabulated law) in mechanics.
    "homogenisation": {
        "mesh": RECTANGLE | {"points": {"anchor": "x == 0 and y == 0"}},
        "physics": {
            "mineral": {"type": "prescribed", "fields": {"phi": {"value": "0.1 + 0.5*x"}}},
            "homogenisation": {
                "fraction": "phi",
                "scheme": "self_consistent",
                "aspect_ratio": 20,
                "matrix": {"youngs_modulus": "1.5 GPa", "poisson_ratio": 0.28},
                "inclusions": {"bulk_modulus": "82.6 GPa", "shear_modulus": "44.9 GPa"},
            },
            "mechanics": {
                "youngs_modulus": "youngs_modulus",
                "poisson_ratio": "poisson_ratio",
                "boundaries": {
                    "left": {"type": "displacement", "x": 0},
                    "anchor": {"type": "displacement", "y": 0},
                    "right": {"type": "pressure", "value": "1 MPa"},
                },
            },
        },
    },
    # Biot: pore pressure and displacement in one Newton solve, a permeability of the pressure
    # (nonlinear) times Kozeny-Carman of a porosity field, storage and a flux.
    "darcy": {
        "mesh": RECTANGLE,
        "physics": {
            "rock": {"type": "prescribed", "fields": {"phi": {"value": "0.3 + 0.1*x"}}},
            "darcy": {
                "permeability": "1e-12*(1 + 1e-6*pressure)",
                "kozeny_carman": {"porosity": "phi", "reference_porosity": 0.3},
                "storage": "1e-9 1/Pa",
                "biot_coefficient": 0.8,
                "initial": "1e4*y",
                "boundaries": {
                    "top": {"type": "pressure", "value": 0},
                    "left": {"type": "flux", "value": "1e-6*y"},
                },
            },
            "mechanics": {
                "youngs_modulus": "1 GPa",
                "poisson_ratio": 0.25,
                "pore_pressure": {"field": "pressure", "biot_coefficient": 0.8},
                "boundaries": {
                    "bottom": {"type": "fixed"},
                    "top": {"type": "pressure", "value": "1e4*t"},
                },
            },
        },
        "time": {"scheme": "bdf1", "end": 20.0, "dt": 10.0},
    },
    # The example plug-in, found through its entry point, with the built-in it is coupled to.
    "darcy_flow": shortened(ROOT / "examples" / "darcy_flow" / "cases" / "tracer.toml", 10.0),
}


@pytest.mark.mpi
@pytest.mark.parametrize("name", list(CASES))
def test_installed_plugin_conforms(name):
    report = check_plugin(name, CASES[name])
    text = str(report)
    assert "1 and 2 ranks agree" in text, text
    assert "J d matches finite differences" in text, text


def test_every_registered_plugin_is_checked():
    with (ROOT / "pyproject.toml").open("rb") as stream:
        entry_points = tomllib.load(stream)["project"]["entry-points"]["scalebridge.physics"]
    assert set(entry_points) <= set(CASES), (
        f"no conformance case for {set(entry_points) - set(CASES)}"
    )


# --------------------------------------------------------------------------------------------
# Broken plug-ins: each mistake is caught, with a message that names it
# --------------------------------------------------------------------------------------------
def dirichlet_ends(field: str) -> list[Dirichlet]:
    return [Dirichlet(field, "left", 1.0), Dirichlet(field, "right", 3.0)]


class CopiedUnknown(Physics):
    """Nonlinear diffusion -div((1 + u^2) grad u) = 0 whose coefficient reads u through a
    separate Function sharing u's values (a copy kept up to date by hand): ufl.derivative does
    not see that dependence, so the Jacobian misses the (2 u du) grad u term."""

    name = "copied_unknown"

    @property
    def provides(self):
        return [FieldSpec("u", "scalar", "dimensionless")]

    def residual(self, ctx):
        u, v = ctx.field("u"), ctx.test("u")
        copy = fem.Function(u.function_space, x=u.x)  # always equal to u, invisible to UFL
        return (1 + copy**2) * ufl.inner(ufl.grad(u), ufl.grad(v)) * ctx.dx()

    def dirichlet(self, ctx):
        return dirichlet_ends("u")


class ReadsUnknownProperly(CopiedUnknown):
    """The same equation with u read through ctx.field: the control experiment."""

    name = "reads_unknown_properly"

    def residual(self, ctx):
        u, v = ctx.field("u"), ctx.test("u")
        return (1 + u**2) * ufl.inner(ufl.grad(u), ufl.grad(v)) * ctx.dx()


class WrongRank(Physics):
    """Solves a pressure and declares its velocity a scalar, but derives -grad p (a vector)."""

    name = "wrong_rank"

    @property
    def provides(self):
        return [
            FieldSpec("pressure", "scalar", "Pa"),
            FieldSpec("velocity", "scalar", "m/s", ("DG", 0), derived=True),
        ]

    def residual(self, ctx):
        p, v = ctx.field("pressure"), ctx.test("pressure")
        return ufl.inner(ufl.grad(p), ufl.grad(v)) * ctx.dx()

    def dirichlet(self, ctx):
        return dirichlet_ends("pressure")

    def derived(self, ctx):
        return {"velocity": -ufl.grad(ctx.field("pressure"))}


class RankDependent(ReadsUnknownProperly):
    """A source that depends on the number of MPI ranks (a reduction done wrong)."""

    name = "rank_dependent"

    def residual(self, ctx):
        source = float(MPI.COMM_WORLD.size)
        return super().residual(ctx) - source * ctx.test("u") * ctx.dx()

    def quantities(self, ctx):
        return {"mean_u": Quantity.integral(ctx.field("u") * ctx.dx(), "m^2")}


def case_of(plugin: type[Physics]) -> dict:
    return {"mesh": {"type": "rectangle", "cells": [6, 3]}, "physics": {plugin.name: {}}}


def test_copied_unknown_fails_the_jacobian_check():
    case = case_of(CopiedUnknown)
    with pytest.raises(AssertionError, match="Jacobian of 'copied_unknown' is wrong") as info:
        check_jacobian(CopiedUnknown, case)
    message = str(info.value)
    assert "rows of field 'u'" in message and "separate Function" in message
    error = float(message.split("|J d - FD| / max(|FD|, |J d|) = ")[1].split()[0])
    assert error > 1e-2  # a missing term, not round-off
    # Everything else about it is fine: only the Jacobian is caught.
    check_schema_roundtrip(CopiedUnknown, case)
    check_provided_fields(CopiedUnknown, case)
    check_compiles(CopiedUnknown, case)


def test_the_same_plugin_reading_its_unknown_properly_passes():
    text = check_jacobian(ReadsUnknownProperly, case_of(ReadsUnknownProperly))
    error = float(text.split("finite differences to ")[1].split()[0])
    assert error < 1e-8, text


def test_wrong_rank_of_a_provided_field_is_caught():
    with pytest.raises(AssertionError) as info:
        check_plugin(WrongRank, case_of(WrongRank), ranks=(1,))
    message = str(info.value)
    assert "field 'velocity' of 'wrong_rank'" in message, message
    assert "declared a scalar (shape ()) on a 2D mesh" in message, message
    assert "derived() returns vector (shape (2,))" in message, message


@pytest.mark.mpi
def test_results_that_depend_on_the_rank_count_are_caught():
    with pytest.raises(AssertionError, match=r"on 1 rank and .* on 2 ranks") as info:
        check_parallel(RankDependent, case_of(RankDependent))
    assert "mean_u" in str(info.value) or "L2 norm of u" in str(info.value)


# --------------------------------------------------------------------------------------------
# Real cases: a plug-in coupled with others (zeros by cancellation, others' columns and modes)
# --------------------------------------------------------------------------------------------
class SteadyTemperature(Physics):
    """-div grad T = 0 with T = 393.15 K on every side: a uniform temperature."""

    name = "steady_temperature"

    @property
    def provides(self):
        return [FieldSpec("temperature", "scalar", "K")]

    def residual(self, ctx):
        T, v = ctx.field("temperature"), ctx.test("temperature")
        return ufl.inner(ufl.grad(T), ufl.grad(v)) * ctx.dx()

    def dirichlet(self, ctx):
        return [Dirichlet("temperature", side, 393.15) for side in ctx.boundaries]


# A plate heated by 100 K, free to expand: pinned at one corner, held in y at the next. In plane
# strain the supports carry nothing (their reactions are round-off of the thermal forces, ~1e8
# N/m), while sigma_zz = -E alpha dT is not zero. Plane strain is a 2D-only mode of mechanics.
FREE_EXPANSION = {
    "mesh": {
        "type": "rectangle",
        "length": [2.0, 1.0],
        "cells": [8, 4],
        "points": {"pin": "x == 0 and y == 0", "slide": "x == 2 and y == 0"},
    },
    "physics": {
        "steady_temperature": {},
        "mechanics": {
            "formulation": "plane_strain",
            "youngs_modulus": 2e11,
            "poisson_ratio": 0.3,
            "thermal_expansion": 1e-5,
            "boundaries": {
                "pin": {"type": "fixed"},
                "slide": {"type": "displacement", "y": 0},
            },
        },
    },
}


@pytest.mark.mpi
def test_a_plugin_coupled_with_a_free_expansion_conforms():
    """The reactions are round-off on either side (1e-9 against terms of 1e8): judged against
    those terms they agree; the 3D compile check is left out because plane strain has no 3D
    form, and 1D because mechanics has none: neither is blamed on the checked plug-in."""
    report = check_plugin(SteadyTemperature, FREE_EXPANSION)
    compiles, parallel = report.checks["compiles"], report.checks["parallel"]
    assert compiles.startswith("compiles and assembles on no other mesh"), compiles
    assert "1D not supported by 'mechanics' (mechanics: 2D, 3D)" in compiles, compiles
    assert "3D left out: 'mechanics' cannot be set up there" in compiles, compiles
    assert "physics.mechanics.formulation" in compiles, compiles
    assert "1 and 2 ranks agree" in parallel, parallel


def test_explicit_dimensions_blame_the_plugin_that_cannot_run_there():
    with pytest.raises(AssertionError) as info:
        check_compiles(SteadyTemperature, FREE_EXPANSION, dims=[3])
    message = str(info.value)
    assert "setting up the case on a 3D mesh failed at physics.mechanics.formulation" in message
    assert "(a limit of 'mechanics', not of 'steady_temperature')" in message


def test_the_reactions_of_a_free_expansion_are_round_off_of_their_terms():
    """What the parallel check judges zeros against: the scale of the terms, at every output."""
    run = run_checked(SteadyTemperature, read_case(FREE_EXPANSION), scales=True)
    thermal_force = 2e11 * 1e-5 * 100 * 0.125  # E alpha dT over one cell's side, N/m
    for name in ("reaction_pin_x_N_per_m", "reaction_pin_y_N_per_m", "reaction_slide_y_N_per_m"):
        value, scale = run.result.quantities[name][-1], run.scales[name][-1]
        assert thermal_force / 10 < scale < thermal_force * 100, (name, scale)
        assert abs(value) < 1e-12 * scale, (name, value, scale)


def test_compare_judges_zeros_against_the_scale_of_their_terms():
    values = {"reaction_pin_x_N": [0.0, 2.4e-9], "load_N": [1.0, 1.0]}
    serial = Serial(values, {"reaction_pin_x_N": [0.0, 3e8]}, dict.fromkeys(values, "mechanics"))
    noisy = {"reaction_pin_x_N": [0.0, -7.1e-10], "load_N": [1.0, 1.0]}
    text = compare(RankDependent, serial, noisy, 2, 1e-8, ["mechanics"])
    assert text.startswith("1 and 2 ranks agree to 1.0e-17 on 2 outputs"), text
    unscaled = Serial(values, {}, serial.owners)  # judged against itself: a relative 1.3
    with pytest.raises(AssertionError, match=r"relative difference 1\.3"):
        compare(RankDependent, unscaled, noisy, 2, 1e-8, ["mechanics"])


class RankDependentHeating(Physics):
    """Heats by as many W/m^3 as there are ranks (a reduction done wrong): the heat plug-in's
    columns differ first, then the plug-in's own field."""

    name = "rank_dependent_heating"

    @property
    def provides(self):
        return [FieldSpec("heat_source", "scalar", "W/m^3", derived=True)]

    def derived(self, ctx):
        return {"heat_source": ctx.coefficient(float(MPI.COMM_WORLD.size)) * (1 + 0 * ctx.x[0])}


@pytest.mark.mpi
def test_a_column_of_another_plugin_is_blamed_on_its_owner():
    case = case_of(RankDependentHeating)
    case["physics"]["heat"] = {"boundaries": {"left": {"type": "temperature", "value": 300}}}
    with pytest.raises(AssertionError) as info:
        check_parallel(RankDependentHeating, case)
    message = str(info.value)
    assert message.startswith("'heat': heat_flow_left_W_per_m is "), message
    assert "not to the plug-in under test 'rank_dependent_heating'" in message, message
    assert "exclude_columns=['heat_flow_left_W_per_m']" in message, message
    heat_columns = ["heat_*", "stored_energy_*", "max_temperature_*", "min_temperature_*"]
    with pytest.raises(AssertionError) as info:  # without heat's columns: its own field
        check_parallel(RankDependentHeating, case, exclude_columns=heat_columns)
    message = str(info.value)
    assert message.startswith("'rank_dependent_heating': L2 norm of heat_source is "), message
    assert "not to the plug-in under test" not in message, message
    with pytest.raises(AssertionError, match=r"'heat_x\*' matches no column; columns: time_s"):
        check_parallel(RankDependentHeating, case, exclude_columns=["heat_x*"])
