"""What a plug-in parameter gets from a surrogate: its component, unit and cellwise values.

``{ surrogate = "name", component = "..." }`` in a case; the component defaults by kind:

Each component is a cellwise field named ``<surrogate>_<component>`` (``mineral_tensor``), written
with the other fields.

* conductivity: ``tensor`` for a parameter that accepts one (heat's conductivity, mass
  transport's diffusivity: the full d x d tensor; a scalar on a 1D mesh), else ``isotropic``
  (the mean of the cell tensor's principal values, trace/d). Also ``xx``, ``yy``, ``zz``,
  ``xy``, ``xz``, ``yz``. A 3D run with a 2D cell (a cross-section of fibres along z) gets the
  exact parallel (Voigt) value along z; a 2D run with a 3D cell its x-y block.
* elasticity: the isotropic projection of the cell's stiffness, as ``youngs_modulus``,
  ``poisson_ratio``, ``bulk_modulus`` or ``shear_modulus``; the default is the parameter's own
  name (mechanics' ``youngs_modulus`` and ``poisson_ratio``). A 2D cell is in plane strain:
  its moduli reproduce its in-plane stiffness in a plane-strain run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.errors import CaseError, did_you_mean, listing
from app.multiscale import laws
from app.parameters import Surrogate
from app.units import compatible

AXES = "xyz"
CONDUCTIVITY = ("tensor", "isotropic", "xx", "yy", "zz", "xy", "xz", "yz")
ELASTICITY = ("youngs_modulus", "poisson_ratio", "bulk_modulus", "shear_modulus")


@dataclass(frozen=True)
class Output:
    """One cellwise field a surrogate fills: its component and value shape on the run's mesh."""

    field: str
    component: str
    shape: tuple[int, ...]
    units: str


def resolve(value: Surrogate, kind: str, units: str | None, gdim: int, where: str) -> Output:
    """The field a parameter that names a surrogate reads.

    Args:
        value: The parameter's value.
        kind: The surrogate's property ("conductivity" or "elasticity").
        units: The unit the surrogate's phases were given in (None: plain SI numbers).
        gdim: The run's mesh dimension.
        where: The parameter's case path.

    Raises:
        CaseError: A component that does not exist or does not fit the parameter.
    """
    if kind == "conductivity":
        component = value.component or ("tensor" if value.tensor else "isotropic")
        _check(component, CONDUCTIVITY, where)
        if component == "tensor" and not value.tensor:
            raise CaseError(
                where,
                "this parameter takes a scalar, not a tensor",
                'give component = "isotropic" or one of xx, yy, ...',
            )
        if units is not None and value.units and not compatible(units, value.units):
            raise CaseError(
                where,
                f"the surrogate's phases are in {units}, but this parameter is in {value.units}",
                "give the phases of the surrogate in a unit of this parameter",
            )
        if component not in ("tensor", "isotropic") and max(map(AXES.index, component)) >= 3:
            raise CaseError(where, f"no component {component}")
        shape = (gdim, gdim) if component == "tensor" and gdim > 1 else ()
        return Output(f"{value.name}_{component}", component, shape, value.units or units or "")
    default = value.parameter if value.parameter in ELASTICITY else None
    component = value.component or default
    if component is None:
        raise CaseError(
            where,
            "name the elastic constant this parameter takes from the surrogate "
            f"({listing(ELASTICITY)})",
            f'give {{ surrogate = "{value.name}", component = "youngs_modulus" }}',
        )
    _check(component, ELASTICITY, where)
    expected = "dimensionless" if component == "poisson_ratio" else "Pa"
    if value.units and not compatible(expected, value.units):
        raise CaseError(
            where,
            f"{component} is in {expected}, but this parameter is in {value.units}",
        )
    return Output(f"{value.name}_{component}", component, (), expected)


def _check(component: str, known: tuple[str, ...], where: str) -> None:
    if component not in known:
        raise CaseError(
            where,
            f"unknown component '{component}'{did_you_mean(component, known)}; components: "
            f"{', '.join(known)}",
        )


def conductivity_values(
    output: Output, tensors: np.ndarray, fraction: np.ndarray, matrix: float, inclusion: float
) -> np.ndarray:
    """Cellwise values of a conductivity output from the cell tensors (n, d, d)."""
    if output.component == "isotropic":
        return np.trace(tensors, axis1=1, axis2=2) / tensors.shape[1]
    full = _embedded(tensors, fraction, matrix, inclusion)
    if output.component == "tensor":
        size = output.shape[0] if output.shape else 1
        block = full[:, :size, :size]
        return block.reshape(len(block), -1) if output.shape else block[:, 0, 0]
    i, j = (AXES.index(axis) for axis in output.component)
    return full[:, i, j]


def _embedded(tensors: np.ndarray, fraction: np.ndarray, matrix: float, inclusion: float):
    """3 x 3 tensors: a 2D cell's prism along z conducts in parallel (Voigt) along z."""
    if tensors.shape[1] == 3:
        return tensors
    full = np.zeros((len(tensors), 3, 3))
    full[:, :2, :2] = tensors
    full[:, 2, 2] = laws.voigt(matrix, inclusion, fraction)
    return full


def elastic_values(output: Output, bulk: np.ndarray, shear: np.ndarray) -> np.ndarray:
    """Cellwise values of an elastic constant from bulk and shear moduli."""
    match output.component:
        case "bulk_modulus":
            return bulk
        case "shear_modulus":
            return shear
        case "youngs_modulus":
            return 9 * bulk * shear / (3 * bulk + shear)
    return (3 * bulk - 2 * shear) / (2 * (3 * bulk + shear))
