"""ScaleBridge: finite-element multiphysics across scales on DOLFINx.

The Python API mirrors the command line::

    from app import Simulation
    sim = Simulation.from_case("cases/heated_plate.toml", overrides={"time.end": 10})
    result = sim.run("results/plate")
    result.quantities["max_temperature_K"]
"""

import contextlib
import logging
from importlib.metadata import PackageNotFoundError, version

# The PyPI wheel must order MPI ahead of dolfinx/petsc4py, so it is imported before anything
# else in the package. Cluster users bring their own DOLFINx, without this module.
with contextlib.suppress(ImportError):
    import dolfinx_solver  # noqa: F401

from app import jit_cache

# Before any form is compiled: FFCx 0.11 lists its whole cache folder on every cached form.
jit_cache.install()

try:
    __version__ = version("scalebridge")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"


# A library stays quiet unless its user configures logging; the CLI and run folders do.
logging.getLogger("scalebridge").addHandler(logging.NullHandler())


def __getattr__(name: str):
    # The simulation pulls in DOLFINx; importing `app` alone (for `app.contracts`, the CLI's
    # argument parsing, or `scalebridge --help`) stays light.
    if name == "Simulation":
        from app.simulation import Simulation

        return Simulation
    raise AttributeError(name)
