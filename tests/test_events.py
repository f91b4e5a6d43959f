"""Time control: events located in time, error-controlled adaptive steps, failures recovered,
protocols executed."""

import math
import tomllib

import numpy as np
import pytest
import ufl
from dolfinx import fem
from mpi4py import MPI

from app.errors import CaseError, Diverged, SolverError
from app.expressions import parse
from app.simulation import Simulation
from tests.conftest import ROOT, assert_same_quantities, runs_on_ranks


def ramp_case(**time) -> dict:
    """Every boundary follows 300 + 100 sin t, so the hottest point is on the boundary and the
    maximum temperature is exactly 300 + 100 sin t while it rises (t < pi/2)."""
    sides = ("left", "right", "bottom", "top")
    return {
        "mesh": {"type": "rectangle", "cells": [4, 4]},
        "physics": {
            "heat": {
                "initial": 300,
                "boundaries": {
                    s: {"type": "temperature", "value": "300 + 100*sin(t)"} for s in sides
                },
            }
        },
        "time": {"scheme": "bdf1", "end": 2.0, "dt": 0.1, **time},
        "events": [{"when": "max_temperature_K > 350"}],
    }


def test_event_is_located_at_the_crossing():
    result = Simulation.from_case(ramp_case()).run()
    crossing = math.asin(0.5)  # 300 + 100 sin t = 350
    stopped = result.quantities["time_s"][-1]
    assert result.event == "max_temperature_K > 350"
    assert abs(stopped - crossing) / crossing < 1e-3
    assert 0 <= stopped - crossing <= 2e-6 + 1e-12  # never before, at most the tolerance after
    assert result.quantities["max_temperature_K"][-1] >= 350


def test_event_written_in_words():
    case = ramp_case()
    case["events"] = [{"when": "max temperature > 77 degC", "tolerance": 1e-4}]
    result = Simulation.from_case(case).run()
    crossing = math.asin((273.15 + 77 - 300) / 100)
    assert 0 <= result.quantities["time_s"][-1] - crossing <= 1e-4


def test_event_with_an_unknown_quantity_is_a_case_error():
    case = ramp_case()
    case["events"] = [{"when": "max_temprature_K > 350"}]
    with pytest.raises(CaseError, match=r"events\[0\].when: .*did you mean 'max_temperature_K'"):
        Simulation.from_case(case).build()


def _heat_toward_420_K(end: float) -> dict:
    """k = sqrt(420 - T), heated by 1500 W/m^2: more than the bar can carry below 420 K (at
    most int_300^420 k dT = 876 W/m), so no solution exists after about 0.039 s."""
    return {
        "mesh": {"type": "interval", "cells": [20]},
        "physics": {
            "heat": {
                "conductivity": "sqrt(420 - temperature)",
                "initial": 300,
                "boundaries": {
                    "left": {"type": "flux", "value": 1500},
                    "right": {"type": "temperature", "value": 300},
                },
            }
        },
        "time": {"scheme": "bdf1", "end": end, "dt": end, "adaptive": {}},
        "output": {"interval": end / 4},
    }


def test_non_finite_solutions_are_rejected_and_retried():
    """One step to 0.035 s overshoots to where sqrt(420 - T) is NaN; the step is rejected,
    retried smaller, and nothing non-finite reaches the output."""
    result = Simulation.from_case(_heat_toward_420_K(0.035)).run()
    assert result.rejected > 0
    for values in result.quantities.values():
        assert np.isfinite(values).all()


def test_a_run_past_the_end_of_its_solution_fails_instead_of_freezing():
    """Past 0.039 s every Newton trial is NaN. PETSc calls such a failed line search converged
    (by the step norm), which used to leave the state frozen to the end (200 s) and the run
    'completed'; the step is rejected until dt_min and the run fails, saying where and why."""
    with pytest.raises(Diverged) as failure:
        Simulation.from_case(_heat_toward_420_K(200.0)).run()
    message = str(failure.value)
    assert "residual of field 'temperature' is nan" in message
    assert "the line search found no finite residual" in message
    assert "dt would fall below time.adaptive.dt_min" in message


def test_a_factorisation_of_infinite_entries_is_a_failed_step_not_a_petsc_error():
    """dT/dt = 100 sqrt(400 - T) reaches 400 K at t = 0.2 s, where the Jacobian's
    d/dT sqrt(400 - T) is infinite: MUMPS refuses the factor and PETSc raises inside the
    Newton solve. That is a failed step like any other (retried smaller, then the run fails
    with the solver's reason), never a PETSc traceback."""
    case = {
        "mesh": {"type": "interval", "cells": [4]},
        "physics": {"heat": {"initial": 300, "source": "100*sqrt(400 - temperature)"}},
        "time": {"scheme": "bdf1", "end": 1.0, "dt": 0.5, "adaptive": {}},
    }
    with pytest.raises(SolverError, match="Newton DIVERGED_LINEAR_SOLVE"):
        Simulation.from_case(case).run()


# u = (1 + x^2) g(t), g = 1 + 4 exp(-t/tau): a sharp transient (tau = 0.01) then a slow tail.
# In P2 the discretisation is exact in space, so errors are the time error alone.
TAU = 0.01
EXACT = f"(1 + x**2)*(1 + 4*exp(-t/{TAU}))"
SOURCE = f"-(1 + x**2)*4/{TAU}*exp(-t/{TAU}) - 2*(1 + 4*exp(-t/{TAU}))"
OUTPUTS = [TAU / 2, TAU, 2 * TAU, 5 * TAU, 0.2, 0.5]


def manufactured_case(time: dict, output: dict) -> dict:
    """u = (1 + x^2) g(t), g = 1 + 4 exp(-t/tau), on two P2 cells: exact in space, so what
    differs from it is the time error alone."""
    return {
        "mesh": {"type": "interval", "cells": [2]},
        "physics": {
            "heat": {
                "degree": 2,
                "source": SOURCE,
                "initial": EXACT,
                "boundaries": {
                    s: {"type": "temperature", "value": EXACT} for s in ("left", "right")
                },
            }
        },
        "time": {"end": 0.5, **time},
        "output": output,
    }


def transient_run(**time) -> tuple[int, float]:
    """Accepted steps, and the largest L2 error over the output times."""
    sim = Simulation.from_case(manufactured_case({"scheme": "bdf2", **time}, {"times": OUTPUTS}))
    errors = []

    def record_error(t):
        u = sim.store["temperature"].function
        exact = parse(EXACT).to_ufl(sim.context("heat").namespace())
        dx = ufl.dx(domain=u.function_space.mesh, metadata={"quadrature_degree": 8})
        local = fem.assemble_scalar(fem.form((u - exact) ** 2 * dx))
        errors.append(math.sqrt(MPI.COMM_WORLD.allreduce(local, op=MPI.SUM)))

    sim.output_observers.append(record_error)
    result = sim.run()
    return result.steps, max(errors)


def test_error_control_reaches_the_fine_fixed_step_accuracy_with_fewer_steps():
    fixed_steps, fixed_error = transient_run(dt=TAU / 20)
    steps, error = transient_run(dt=TAU / 100, adaptive={"rtol": 3e-5, "atol": 3e-5})
    print(
        f"fixed dt: {fixed_steps} steps, error {fixed_error:.2e}; error-controlled: {steps} "
        f"steps, error {error:.2e}"
    )
    assert error <= fixed_error
    assert 5 * steps <= fixed_steps


HEATER = ROOT / "cases" / "heat_cycling.toml"


def test_heat_protocol_cycles():
    """cases/heat_cycling.toml: heat until 350 K, cool 10 minutes, three times."""
    result = Simulation.from_case(HEATER).run()
    q = result.quantities
    stages = q["step"].astype(int)
    ends = [i for i in range(len(stages)) if i + 1 == len(stages) or stages[i + 1] != stages[i]]
    heating = [i for i in ends if stages[i] >= 0 and stages[i] % 2 == 0]
    cooling = [i for i in ends if stages[i] >= 0 and stages[i] % 2 == 1]
    assert len(heating) == 3 and len(cooling) == 3
    assert list(q["cycle"][cooling].astype(int)) == [0, 1, 2]
    for i in heating:  # each heating stage stops at the crossing, not later than the tolerance
        assert 350 <= q["max_temperature_K"][i] < 350.01
    starts = [q["time_s"][i] for i in heating]
    for start, end in zip(starts, [q["time_s"][i] for i in cooling], strict=True):
        assert end - start == pytest.approx(600.0)  # "Cool for 10 minutes"
    assert q["heat_flow_bottom_W_per_m"][cooling[0]] == 0.0  # the heater is off while cooling


def test_protocol_with_an_unknown_control_is_rejected():
    with pytest.raises(CaseError, match="unknown verb 'Haet' \\(did you mean 'Heat'\\?\\)"):
        Simulation.from_case(HEATER, {"protocol.steps": ["Haet at 1 W/m^2 for 1 s"]})


def test_protocol_targets_are_checked():
    wrong_units = {"protocol.controls.Heat.target": "physics.heat.conductivity"}
    with pytest.raises(
        CaseError, match=r"5e4 W/m\^2|50000 W/m\^2 cannot be converted to W/\(m\*K\)"
    ):
        Simulation.from_case(HEATER, wrong_units).build()
    expression = {
        "physics.heat.source": "1e3*x",
        "protocol.controls.Heat.target": "physics.heat.source",
    }
    with pytest.raises(CaseError, match="is not a constant parameter"):
        Simulation.from_case(HEATER, expression).build()
    typo = {"protocol.controls.Heat.target": "physics.heat.boundaries.bottom.valu"}
    with pytest.raises(CaseError, match="is not a constant parameter"):
        Simulation.from_case(HEATER, typo).build()


def until_only(steps: list[str], **time) -> dict:
    """cases/heat_cycling.toml with the given steps and no time.end: the protocol bounds it."""
    case = tomllib.loads(HEATER.read_text())
    del case["time"]["end"]
    case["time"] |= time
    case["protocol"] |= {"steps": steps, "repeat": 2}
    case["output"] = {"interval": 600.0}
    return case


def test_protocol_of_until_steps_needs_no_end():
    """'Heat until 350 K', 'Cool until 330 K', twice, and no time.end: the run ends with the
    last condition, every 10 minutes and every stage end written."""
    steps = [
        "Heat at 5e4 W/m^2 until max temperature > 350 K",
        "Cool until max temperature < 330 K",
    ]
    result = Simulation.from_case(until_only(steps)).run()
    q = result.quantities
    assert result.event is None
    stages = q["step"].astype(int)
    ends = [i for i in range(len(stages)) if i + 1 == len(stages) or stages[i + 1] != stages[i]]
    # the first row is the start of the first step, with its settings in force
    assert stages[0] == 0
    assert list(stages[ends]) == [0, 1, 2, 3]
    assert q["heat_flow_bottom_W_per_m"][0] == pytest.approx(-5e4 * 0.1)
    for i in ends[0::2]:
        assert 350 <= q["max_temperature_K"][i] < 350.01
    for i in ends[1::2]:
        assert 329.99 < q["max_temperature_K"][i] <= 330
    assert ends[-1] == len(stages) - 1  # the last condition ended the run
    times = q["time_s"]
    intervals = [t for t in times if t > 0 and math.isclose(t / 600, round(t / 600))]
    assert len(intervals) == int(times[-1] // 600)  # every 10 minutes up to the end


@pytest.mark.parametrize(
    "time", [{"adaptive": {}}, {"scheme": "bdf1", "dt": 3600.0}], ids=["adaptive", "fixed_dt"]
)
def test_a_condition_never_met_ends_the_run_with_the_reason(time: dict):
    """1 kW/m^2 against convection (h = 20 W/(m^2 K)) through 2 cm of steel (k = 50 W/(m K))
    settles at 300 + 50 + 0.4 K on the heated side: 'until 1000 K' is never met. Without
    time.end nothing else ends the step: the run stops once the solution stops changing,
    naming the step and its condition."""
    steps = ["Heat at 1e3 W/m^2 until max temperature > 1000 K", "Cool for 10 minutes"]
    sim = Simulation.from_case(until_only(steps, **time))
    with pytest.raises(SolverError, match=r"'max temperature > 1000 K' was never met: the sol"):
        sim.run()
    assert sim.evaluate_quantities()["max_temperature_K"] == pytest.approx(350.4, rel=1e-8)


@pytest.mark.mpi
def test_until_only_protocol_on_two_ranks(tmp_path):
    """The steady-state check and the lazily placed output times agree across ranks."""
    text = HEATER.read_text().replace('end = "10 h"', "")
    text = text.replace("repeat = 3", "repeat = 1")
    text = text.replace('"Cool for 10 minutes"', '"Cool until max temperature < 340 K"')
    assert "end =" not in text and "until max temperature < 340 K" in text
    case = tmp_path / "until.toml"
    case.write_text(text)
    serial, parallel = runs_on_ranks(case, tmp_path, "--set", "output.interval=300")
    assert_same_quantities(serial, parallel)
    assert 339.99 < serial["max_temperature_K"][-1] <= 340


def test_a_condition_moving_away_ends_the_run():
    """'Heat until below 250 K' on an insulated plate heated from below: the temperature only
    rises, forever, and no steady state comes. The run stops once it is a thousand times its
    starting scale (300 K + 50 K to the threshold) away, instead of marching on without end."""
    case = until_only(["Heat at 5e4 W/m^2 until max temperature < 250 K"], adaptive={})
    del case["physics"]["heat"]["boundaries"]["top"]
    with pytest.raises(SolverError, match=r"'max temperature < 250 K' was never met: by t = "):
        Simulation.from_case(case).run()


@pytest.mark.parametrize(("times", "rows"), [([100.0], [0, 10]), ([5.0, 100.0], [0, 5, 10])])
def test_output_times_outside_the_run_are_said_and_do_not_mean_every_step(caplog, times, rows):
    """Listed output times past the end (a case whose time.end was shortened) write no row and
    are reported; the run still writes at the times inside it and at the end, not after every
    step as a case without output times does."""
    case = {
        "mesh": {"type": "interval", "cells": [4]},
        "physics": {"heat": {"initial": 300, "source": 1}},
        "time": {"scheme": "bdf1", "end": 10.0, "dt": 1.0},
        "output": {"times": times},
    }
    with caplog.at_level("WARNING", logger="scalebridge"):
        result = Simulation.from_case(case).run()
    assert list(result.quantities["time_s"]) == pytest.approx(rows)
    assert "output.times: 1 of the" in caplog.text and "no rows there" in caplog.text


def test_limited_steps_and_protocol_steps_are_logged_by_name(caplog):
    """A step retried for a `[time.adaptive] limits` column names the column, its change and the
    limit; each protocol step is announced once, though the first is also applied before the
    first row. The limit holds on every accepted step."""
    case = tomllib.loads(HEATER.read_text())
    case["time"] |= {"end": 300.0, "dt": 100.0, "adaptive": {"limits": {"max_temperature_K": 2}}}
    steps = ["Heat at 5e4 W/m^2 for 2 minutes", "Cool for 3 minutes"]
    case["protocol"] |= {"steps": steps, "repeat": 1}
    with caplog.at_level("INFO", logger="scalebridge"):
        result = Simulation.from_case(case).run()
    hottest = result.quantities["max_temperature_K"]
    assert max(abs(np.diff(hottest))) <= 2 * (1 + 1e-9)
    assert caplog.text.count("protocol step 0 (cycle 0)") == 1
    assert caplog.text.count("protocol step 1 (cycle 0)") == 1
    assert "changed max_temperature_K by " in caplog.text and "(limit 2); dt -> " in caplog.text
