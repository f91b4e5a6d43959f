"""A quarter disk (x >= 0, y >= 0, x^2 + y^2 <= R^2): the meridian of a solid sphere.

With the axisymmetric formulation (x = r, y = z) it is one eighth of a sphere; the particle
stress benchmarks (shared/VALIDATION.md A5 and A11) use it with u_r = 0 on the axis and u_z = 0
on the equatorial plane::

    [mesh]
    type = "gmsh"
    file = "meshes/quarter_disk.py"
    size = 0.1e-6
    order = 2
    parameters = { radius = 5e-6 }

Region "solid"; boundaries "axis" (x = 0), "bottom" (y = 0) and "surface" (the arc).
"""

import gmsh


def build(model, radius=1.0):
    """The quarter disk of the given ``radius`` (metres)."""
    if radius <= 0:
        raise ValueError(f"radius must be positive, got {radius}")
    gmsh.option.setNumber("Mesh.CharacteristicLengthMax", radius / 8)

    occ = model.occ
    quarter, _ = occ.intersect(
        [(2, occ.addDisk(0, 0, 0, radius, radius))],
        [(2, occ.addRectangle(0, 0, 0, radius, radius))],
    )
    occ.synchronize()

    names = {}
    for _, curve in model.getBoundary(quarter, oriented=False):
        x, y, _ = occ.getCenterOfMass(1, curve)
        names[curve] = (
            "axis" if abs(x) < 1e-9 * radius else "bottom" if abs(y) < 1e-9 * radius else "surface"
        )
    model.addPhysicalGroup(2, [tag for _, tag in quarter], name="solid")
    for name in ("axis", "bottom", "surface"):
        model.addPhysicalGroup(1, [c for c, n in names.items() if n == name], name=name)
