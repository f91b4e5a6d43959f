"""The peer of the battery benchmark: PyBaMM's DFN, a 1C discharge of Chen2020 from SOC 1 at
298.15 K to its 2.5 V cut-off, as a PyBaMM user writes it (default model options, mesh and
solver: IDAKLU), writing time, voltage and discharge capacity to a CSV.

    .venv/bin/python benchmarks/plain_pybamm_dfn.py --out /tmp/pybamm.csv [--end 120]
"""

from __future__ import annotations

import argparse

import numpy as np
import pybamm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="CSV to write")
    parser.add_argument(
        "--end",
        type=float,
        default=3700.0,
        help="end time [s] (the cut-off ends a full discharge before the default)",
    )
    args = parser.parse_args()
    simulation = pybamm.Simulation(
        pybamm.lithium_ion.DFN(), parameter_values=pybamm.ParameterValues("Chen2020")
    )
    solution = simulation.solve([0, args.end], initial_soc=1.0)
    columns = ("Time [s]", "Voltage [V]", "Discharge capacity [A.h]")
    table = np.column_stack([solution[name].entries for name in columns])
    header = "time_s,voltage_V,discharge_capacity_Ah"
    np.savetxt(args.out, table, delimiter=",", header=header, comments="")


if __name__ == "__main__":
    main()
