"""cases/studies/battery_morris.toml (issue 18's battery example), in a tiny version: two
trajectories on the small mesh of tests/battery.py, with steps up to 2 minutes and 50 mV (18
discharges of about 60 steps).

What the physics says, derived in the study's header: at 1C the positive particles limit the
discharge (R_p^2 / D_p = 6800 s against the negative's 1040 s), while the separator's porosity
only moves an electrolyte drop of about 2 mV by a fraction of a millivolt. So both the positive
radius and the positive diffusivity screen above the separator porosity, for the capacity and
for the voltage half-way (at the full steps the tiny version ranked eps_s 8th of 8 for the
capacity, 7th for the voltage, D_s_p first for both); and the effects have the sign of
diffusion in a sphere: a larger particle or a slower diffusivity delivers less (a negative mean
effect of R_p, a positive one of D_s_p).
"""

import tomllib

import pytest
import tomli_w

from app.studies.runner import Study
from tests.battery import SMALL_MESH
from tests.conftest import CASES

STUDY = CASES / "studies" / "battery_morris.toml"


@pytest.mark.slow
def test_positive_particles_screen_above_the_separator_porosity(tmp_path):
    data = tomllib.loads(STUDY.read_text())
    data["case"] = str((STUDY.parent / data["case"]).resolve())
    mesh = tomllib.loads("\n".join(SMALL_MESH))["mesh"]
    data["overrides"] |= {
        "mesh.layers": mesh["layers"],
        "mesh.radial_cells": mesh["radial_cells"],
        "time.adaptive.dt_max": "120 s",
        "time.adaptive.limits": {"voltage_V": "50 mV"},
    }
    data["method"]["trajectories"] = 2
    path = tmp_path / STUDY.name
    path.write_text(tomli_w.dumps(data))
    study = Study.from_file(path, tmp_path / "out")
    table = study.run()
    assert table.completed.all() and len(table) == 2 * (len(study.names) + 1)
    for quantity in ("capacity", "voltage_30min"):
        morris = study.analysis["morris"][quantity]
        mu_star = dict(zip(study.names, morris["mu_star"], strict=True))
        mu = dict(zip(study.names, morris["mu"], strict=True))
        assert mu_star["R_p"] > mu_star["eps_s"], (quantity, mu_star)
        assert mu_star["D_s_p"] > mu_star["eps_s"], (quantity, mu_star)
        assert mu["R_p"] < 0 < mu["D_s_p"], (quantity, mu)
    assert (tmp_path / "out" / "morris_indices.csv").is_file()
