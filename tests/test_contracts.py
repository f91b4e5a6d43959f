"""The plug-in contract: discovery through entry points and the contract-graph check.

Test-local plug-ins stand in for third-party ones: ``use_plugins`` puts them where entry-point
discovery would, so the framework code under test is the same.
"""

import pytest
import ufl

from app import registry
from app.contracts import FieldSpec, Parameters, Physics, Quantity, quantity
from app.errors import CaseError
from app.simulation import Simulation
from physics_modules.heat import Heat


class Laser(Physics):
    """A Gaussian beam absorbed in the material: provides a heat source."""

    name = "laser"

    class Parameters(Parameters):
        power: float = quantity("W/m", 100.0, "Absorbed power per metre of depth", ge=0)
        radius: float = quantity("m", 0.1, "Beam radius", gt=0)

    @property
    def provides(self):
        return [FieldSpec("heat_source", "scalar", "W/m^3", derived=True)]

    def derived(self, ctx):
        r2 = (ctx.x[0] - 0.5) ** 2 + (ctx.x[1] - 0.5) ** 2
        peak = self.params.power / (ufl.pi * self.params.radius**2)
        return {"heat_source": peak * ufl.exp(-r2 / self.params.radius**2)}

    def quantities(self, ctx):
        return {"power": Quantity.integral(ctx.field("heat_source") * ctx.dx(), "W/m")}


def make(provides=(), requires=(), name="probe"):
    class Probe(Physics):
        """A plug-in with configurable contracts."""

        @property
        def provides(self):
            return list(provides)

        @property
        def requires(self):
            return list(requires)

    Probe.name = name
    return Probe(Probe.Parameters(), name)


@pytest.fixture
def use_plugins(monkeypatch):
    def install(*classes):
        found = registry.Plugins({cls.name: cls for cls in (Heat, *classes)}, {})
        monkeypatch.setattr(registry, "discover", lambda: found)

    return install


def heat() -> Heat:
    return Heat(Heat.Parameters(), "heat")


def test_builtin_heat_is_discovered_through_its_entry_point():
    plugins = registry.discover()
    assert plugins.classes["heat"] is Heat
    assert not plugins.broken


def test_two_providers_of_one_field():
    other = make(provides=[FieldSpec("temperature", "scalar", "K")], name="thermostat")
    with pytest.raises(CaseError) as error:
        registry.check_contracts({"heat": heat(), "thermostat": other})
    message = str(error.value)
    assert "field 'temperature' is provided by both 'heat' (heat) and 'thermostat'" in message
    assert "\n" not in message


def test_required_field_without_provider():
    needy = make(requires=[FieldSpec("velocity", "vector", "m/s")], name="advection")
    with pytest.raises(CaseError) as error:
        registry.check_contracts({"heat": heat(), "advection": needy})
    assert "'advection' (advection) requires field 'velocity' (m/s) but no plug-in provides it" in (
        str(error.value)
    )


def test_optional_requirement_may_stay_unprovided():
    graph = registry.check_contracts({"heat": heat()})
    assert "heat_source" not in graph.providers
    assert graph.providers["temperature"][0] == "heat"


def test_rank_mismatch_names_both_plugins():
    wrong = make(provides=[FieldSpec("heat_source", "vector", "W/m^3")], name="beam")
    with pytest.raises(CaseError) as error:
        registry.check_contracts({"heat": heat(), "beam": wrong})
    message = str(error.value)
    assert "'heat' (heat) requires 'heat_source' as a scalar" in message
    assert "but 'beam' (beam) provides a vector" in message


def test_incompatible_units_name_both_plugins():
    wrong = make(provides=[FieldSpec("heat_source", "scalar", "W/m^2")], name="beam")
    with pytest.raises(CaseError) as error:
        registry.check_contracts({"heat": heat(), "beam": wrong})
    message = str(error.value)
    assert "'heat' (heat) requires 'heat_source' in W/m^3" in message
    assert "'beam' (beam) provides it in W/m^2" in message


def test_the_same_units_written_otherwise_pass():
    fine = make(provides=[FieldSpec("heat_source", "scalar", "J/(s*m**3)")], name="beam")
    graph = registry.check_contracts({"heat": heat(), "beam": fine})
    assert graph.consumers["heat_source"][0][0] == "heat"


def test_a_field_in_units_other_than_si_is_refused():
    """Fields carry no conversion: heat would read a source of 1 kW/m^3 as 1 W/m^3."""
    scaled = make(provides=[FieldSpec("heat_source", "scalar", "kW/m^3")], name="beam")
    with pytest.raises(CaseError) as error:
        registry.check_contracts({"heat": heat(), "beam": scaled})
    assert error.value.path == "physics.beam"
    assert "field 'heat_source' of 'beam' (beam) is in kW/m^3, not an SI unit" in str(error.value)


def test_unknown_physics_type_lists_installed(use_plugins):
    use_plugins(Laser)
    with pytest.raises(CaseError) as error:
        registry.plugin("lazer", "physics.beam.type")
    assert "(did you mean 'laser'?); installed: heat, laser" in str(error.value)


def test_provided_heat_source_heats(use_plugins):
    """A derived field of one plug-in feeds another's residual; the energy balance shows it."""
    use_plugins(Laser)
    case = {
        "mesh": {"type": "rectangle", "cells": [16, 16]},
        "physics": {
            "heat": {"initial": 0.0, "reference": 0.0, "density": 2.0, "specific_heat": 3.0},
            "beam": {"type": "laser", "power": 50.0},
        },
        "time": {"scheme": "bdf1", "end": 0.5, "dt": 0.1},
    }
    sim = Simulation.from_case(case)
    result = sim.run()
    q = result.quantities
    assert "heat_source [scalar, W/m^3, derived] from beam -> heat" in sim.graph.describe()
    # Insulated square: all the absorbed beam power is stored, step by step (BDF1).
    rates = (q["stored_energy_J_per_m"][1:] - q["stored_energy_J_per_m"][:-1]) / 0.1
    assert rates == pytest.approx(q["heat_generated_W_per_m"][1:], rel=1e-9)
    # Heat reads the beam's expression itself (same group); the beam's own quantity integrates
    # its interpolated field: equal to quadrature accuracy.
    assert q["heat_generated_W_per_m"][-1] == pytest.approx(q["beam_power_W_per_m"][-1], rel=1e-8)
    assert q["beam_power_W_per_m"][-1] == pytest.approx(50.0 * 0.99, rel=0.02)  # beam in the box


def test_plugin_reading_an_undeclared_field_is_a_plugin_error(use_plugins):
    class Sneaky(Laser):
        name = "sneaky"

        def derived(self, ctx):
            return {"heat_source": ctx.field("temperature")}  # not declared in requires

    use_plugins(Sneaky)
    case = {
        "mesh": {"type": "rectangle", "cells": [2, 2]},
        "physics": {"heat": {}, "beam": {"type": "sneaky"}},
    }
    with pytest.raises(KeyError, match="reads field 'temperature' without declaring it"):
        Simulation.from_case(case).build()


class Broken(Physics):
    """A plug-in whose provides property fails, as third-party code may."""

    name = "broken"

    @property
    def provides(self):
        raise RuntimeError("the plug-in's table is missing")


BAD_DECLARATIONS = {
    "rank": (
        [FieldSpec("q", "matrix", "W/m^3", derived=True)],
        "'probe' (probe) provides 'q': unknown rank 'matrix' (one of scalar, vector, tensor)",
    ),
    "units": (
        [FieldSpec("q", "scalar", "furlong/blorp", derived=True)],
        "'probe' (probe) provides 'q': unknown unit 'furlong/blorp'",
    ),
    "name": (
        [FieldSpec("heat flux", "scalar", "W/m^2", derived=True)],
        "'probe' (probe) provides 'heat flux': field names must be identifiers",
    ),
    "names, not specs": (["q"], "'probe' (probe).provides holds 'q', not a FieldSpec"),
    "not a list": (None, "'probe' (probe).provides failed: TypeError: 'NoneType' object"),
    "degree": (
        [FieldSpec("q", "scalar", "W/m^3", space=("Lagrange", -1))],
        "'probe' (probe) provides 'q': space ('Lagrange', -1) is not a (family, degree) pair",
    ),
    "bounds": (
        [FieldSpec("q", "scalar", "W/m^3", bounds=(1.0, 0.0))],
        "'probe' (probe) provides 'q': bounds (1.0, 0.0) are not (lower, upper) finite numbers",
    ),
    "bound action": (
        [FieldSpec("q", "scalar", "W/m^3", bounds=(0.0, None), at_bounds="halt")],
        "'probe' (probe) provides 'q': at_bounds 'halt' is not 'fail' or 'stop'",
    ),
    "stop without bounds": (
        [FieldSpec("q", "scalar", "W/m^3", at_bounds="stop")],
        "'probe' (probe) provides 'q': at_bounds 'stop' needs bounds to stop at",
    ),
}


@pytest.mark.parametrize("provides, problem", BAD_DECLARATIONS.values(), ids=list(BAD_DECLARATIONS))
def test_a_malformed_declaration_is_the_plugins_error_before_any_build(provides, problem):
    probe = probe_class(provides)
    with pytest.raises(CaseError) as error:
        registry.check_contracts({"heat": heat(), "probe": probe(probe.Parameters(), "probe")})
    assert error.value.path == "physics.probe"
    assert error.value.problem.startswith(problem), error.value.problem
    assert error.value.fix.startswith("the plug-in's author must correct its declaration")


def test_a_declaration_that_raises_is_reported_with_its_exception():
    with pytest.raises(CaseError, match=r"'b' \(broken\)\.provides failed: RuntimeError: the "):
        registry.check_contracts({"heat": heat(), "b": Broken(Broken.Parameters(), "b")})


def probe_class(provides) -> type[Physics]:
    """A plug-in class named 'probe' providing ``provides``."""
    cls = type(make(name="probe"))
    cls.provides = property(lambda self: provides)
    return cls


PROBE_CASE = {
    "mesh": {"type": "rectangle", "cells": [2, 2]},
    "physics": {"heat": {}, "p": {"type": "probe"}},
}


def test_a_space_dolfinx_cannot_make_is_the_plugins_error(use_plugins):
    use_plugins(probe_class([FieldSpec("q", "scalar", "W/m^3", space=("Nonsense", 1))]))
    with pytest.raises(CaseError) as error:
        Simulation.from_case(PROBE_CASE).build()
    assert error.value.path == "physics.p"
    assert error.value.problem.startswith(
        "'p' declares field 'q' in the space ('Nonsense', 1), which DOLFINx cannot make on "
        "triangle cells: Unknown element family"
    )


def test_a_solved_field_without_a_residual_is_the_plugins_error(use_plugins, tmp_path, capsys):
    from app.cli import main

    use_plugins(probe_class([FieldSpec("q", "scalar", "W/m^3")]))
    path = tmp_path / "case.toml"
    path.write_text(
        '[mesh]\ntype = "rectangle"\ncells = [2, 2]\n[physics.heat]\n[physics.p]\ntype = "probe"\n'
    )
    assert main(["run", str(path), "-o", str(tmp_path / "out"), "-q"]) == 2
    message = capsys.readouterr().err
    assert "physics.p: 'p' (probe) provides ['q'] to be solved for, but its residual() " in message
    assert "Fix: the plug-in's author must correct its declaration" in message
    assert "Traceback" not in message


def test_a_field_on_an_unknown_place_lists_the_places(use_plugins):
    use_plugins(probe_class([FieldSpec("q", "scalar", "W/m^3", region="nowhere")]))
    with pytest.raises(CaseError) as error:
        Simulation.from_case(PROBE_CASE).build()
    assert error.value.problem == (
        "unknown region or boundary 'nowhere'; regions or boundaries here: bottom, domain, left, "
        "right, top"
    )
