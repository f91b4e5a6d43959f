"""The coordinate system of mass transport: the measure and gradient each integral takes.

``cartesian``: weight 1. ``axisymmetric``: 2 pi r, with r = x (the full revolution).
``spherical``: 4 pi r^2, with r = x on a 1D mesh; on a pseudo-2D (x, r) or pseudo-3D (x, y, r)
mesh r is the coordinate ``radial_axis`` and transport acts along r only (a particle at every x,
or every (x, y) of a 2D cell). With a
``particle_radius`` R (a number or a table by region) the mesh's coordinate along that axis is
the normalised radius y = r/R in [0, 1], so one mesh holds particles of different sizes::

    r = R y,   dr = R dy,   d/dr = (1/R) d/dy
    volume integrals:   4 pi r^2 R  dx dy
    boundary integrals: 4 pi r^2 s  ds,   s = |d(x, r)/d(x, y)| along the facet

(s = 1 on the particle surface y = 1 and its centre, R on facets across the radius).
"""

import math
from typing import Any

import ufl

from app.contracts import BadValue, Context


class Coordinates:
    """Measures, gradients and units of one instance's coordinate system on its mesh.

    Args:
        params: The instance's parameters.
        ctx: Its context.
    """

    def __init__(self, params: Any, ctx: Context):
        self.kind = params.coordinates
        self.ctx = ctx
        self.axis = self._checked_axis(params.radial_axis)
        # Spherical on a pseudo-2D/3D mesh: a particle at every point of the other axes,
        # transport along r only.
        self.radial_only = self.kind == "spherical" and ctx.mesh.topology.dim >= 2
        self.radius = None
        if params.particle_radius is not None:
            self.radius = ctx.coefficient(params.particle_radius)

    def _checked_axis(self, axis: int | None) -> int:
        ctx = self.ctx
        if ctx.gdim > 2 and (
            self.kind == "axisymmetric" or (self.kind, axis) == ("spherical", None)
        ):
            raise BadValue(
                f"{self.kind} coordinates need a 1D or 2D mesh, got {ctx.gdim}D",
                token="coordinates",
                fix="use cartesian coordinates on 3D meshes, or spherical with radial_axis on a "
                "pseudo-3D (x, y, r) mesh (a particle at every (x, y))",
            )
        axis = axis or 0
        if axis >= ctx.gdim:
            raise BadValue(
                f"radial_axis = {axis}, but the mesh is {ctx.gdim}D", token="radial_axis"
            )
        return axis

    def r(self) -> Any:
        """The radial coordinate r (in m)."""
        y = self.ctx.x[self.axis]
        return y if self.radius is None else self.radius * y

    def _shell(self) -> Any:
        """1, 2 pi r or 4 pi r^2."""
        if self.kind == "cartesian":
            return 1
        r = self.r()
        return 2 * math.pi * r if self.kind == "axisymmetric" else 4 * math.pi * r**2

    def weight(self) -> Any:
        """Weight of volume integrals: the shell, times dr/dy = R for a normalised radius."""
        shell = self._shell()
        return shell if self.radius is None else shell * self.radius

    def surface_weight(self) -> Any:
        """Weight of boundary integrals: the shell, times the facet's length factor."""
        shell = self._shell()
        if self.radius is None:
            return shell
        n = self.ctx.n
        across = 1 - n[self.axis] ** 2  # squared component of the facet's tangent along r
        return shell * ufl.sqrt(n[self.axis] ** 2 + self.radius**2 * across)

    def along(self, vector: Any) -> Any:
        """A vector as transport sees it (its radial part on a pseudo-2D mesh)."""
        if not self.radial_only:
            return vector
        return vector[self.axis] * ufl.unit_vector(self.axis, self.ctx.gdim)

    def gradient(self, u: Any) -> Any:
        """The gradient transport acts along (d/dr = (1/R) d/dy on a normalised radius)."""
        gradient = self.along(ufl.grad(u))
        return gradient if self.radius is None else gradient / self.radius

    def units(self, base: str) -> str:
        """Units of an integral of the coordinate system's measure (base: mol or mol/s)."""
        if self.kind == "cartesian":
            return self.ctx.per_depth(base)
        if self.kind == "axisymmetric":
            return base if self.ctx.gdim == 2 else f"{base}/m"
        # per unit length (2D) or area (3D) of the axes the particles sit at
        along = {1: "mol", 2: "mol*m", 3: "mol*m^2"}[self.ctx.gdim]
        return base.replace("mol", along)
