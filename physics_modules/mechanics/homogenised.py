"""The stress of nonlinear unit cells at the quadrature points: FE2 (``constitutive``).

With ``constitutive = { rve = "name" }`` each quadrature point of the mesh has its own unit cell
(``[rves.<name>]``: a microstructure of elastic and von Mises phases), driven by the point's
macro strain; its volume-averaged stress is the macro stress and its homogenised consistent
tangent the material tangent of Newton's method::

    sigma(x_q) = <sigma>_Y(eps(x_q); history of cell q),    d sigma = C_hom(x_q) : d eps

The cells keep their histories (plastic strains) and the framework accepts them only with the
macro step (app/pointwise_law.py). 2D meshes are in plane strain (2D cells), 3D meshes take 3D
cells. The strain energy density reported is sigma : eps / 2, the stored energy only while the
cells stay elastic.
"""

from typing import Any

import ufl

from app.contracts import Context, InternalVariable, Quantity, RVESource


class CellStress:
    """The stress of the cells of ``source`` (see the module)."""

    def __init__(self, source: RVESource):
        self.source = source

    @property
    def internal_variables(self) -> list[InternalVariable]:
        return []  # the histories live in the cells

    def stress(self, ctx: Context, strain: Any) -> Any:
        """The stress the residual uses, linearised at the current iterate by the framework."""
        return ctx.point_stress(self.source, strain).stress(strain)

    def update(self, ctx: Context, strain: Any) -> dict[str, Any]:
        return {}

    def latest(self, ctx: Context, strain: Any) -> tuple[Any, Any]:
        """The cells' stress after the latest solve, and sigma : eps / 2."""
        stress = ctx.point_stress(self.source, strain).latest()
        return stress, ufl.inner(stress, strain) / 2

    def quantities(self, ctx: Context, weight: Any, units: dict[str, str]) -> dict[str, Quantity]:
        return {}
