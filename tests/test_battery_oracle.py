"""The boundary-mesh DFN (cases/battery_discharge.toml) against its whole-mesh oracle
(tests/data/battery_discharge_whole_mesh.toml): the same DFN written with no instance on a
boundary's mesh, the electrolyte and potentials solved on the whole (x, r) mesh and the particle
surface values carried to Butler-Volmer by fields constant in r. Same x and r mesh, same time
steps: issue 12 asks the two to agree within 0.1 mV RMS.
"""

import numpy as np

from tests.battery import CASE, DATA, SMALL_MESH, discharge

ORACLE = DATA / "battery_discharge_whole_mesh.toml"
#: a short 1C discharge; the steps grow by 1.5 from 0.1 s to a minute whatever the voltage does
#: (no error control: its tolerance on the voltage would size the two runs' steps apart by
#: their 0.1 mV), so both runs take the same steps
SHORT = ['protocol.steps=["Discharge at 1C for 10 minutes"]', "time.adaptive.tolerances={}"]


def test_the_whole_mesh_oracle_gives_the_same_voltage(tmp_path):
    product = discharge(tmp_path / "product", *SHORT, *SMALL_MESH, case=CASE)
    oracle = discharge(tmp_path / "oracle", *SHORT, *SMALL_MESH, case=ORACLE)
    np.testing.assert_allclose(oracle["time_s"], product["time_s"], rtol=1e-12)
    assert oracle["time_s"][-1] == 600.0
    difference = oracle["voltage_V"] - product["voltage_V"]
    assert np.sqrt(np.mean(difference**2)) < 1e-4
    # the voltage fell by tens of mV over the run: the comparison is not of two flat lines
    assert product["voltage_V"][0] - product["voltage_V"][-1] > 0.05
    np.testing.assert_allclose(
        oracle["discharge_capacity_Ah"], product["discharge_capacity_Ah"], rtol=1e-9
    )
