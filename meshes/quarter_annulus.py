"""A quarter of a thick-walled tube (annulus a <= r <= b, x >= 0, y >= 0) for plane problems.

The Lamé thick cylinder (shared/VALIDATION.md A4) is solved on this quarter with symmetry
conditions on the two straight edges::

    [mesh]
    type = "gmsh"
    file = "meshes/quarter_annulus.py"
    size = 0.05                                   # largest cell size, m
    order = 2                                     # curved cells follow the arcs exactly
    parameters = { inner_radius = 0.1, outer_radius = 0.2 }

Region "solid"; boundaries "inner" (r = a), "outer" (r = b), "left" (x = 0) and "bottom" (y = 0).
"""

import gmsh


def build(model, inner_radius=1.0, outer_radius=2.0):
    """The quarter annulus between ``inner_radius`` and ``outer_radius`` (metres)."""
    a, b = inner_radius, outer_radius
    if not 0 < a < b:
        raise ValueError(f"need 0 < inner_radius < outer_radius, got {a} and {b}")
    gmsh.option.setNumber("Mesh.CharacteristicLengthMax", (b - a) / 8)

    occ = model.occ
    ring, _ = occ.cut([(2, occ.addDisk(0, 0, 0, b, b))], [(2, occ.addDisk(0, 0, 0, a, a))])
    quarter, _ = occ.intersect(ring, [(2, occ.addRectangle(0, 0, 0, b, b))])
    occ.synchronize()

    # OCC numbers the curves of the result freely, so name them by where they lie.
    names = {}
    for _, curve in model.getBoundary(quarter, oriented=False):
        x, y, _ = occ.getCenterOfMass(1, curve)
        if abs(y) < 1e-9 * b:
            names[curve] = "bottom"
        elif abs(x) < 1e-9 * b:
            names[curve] = "left"
        else:
            names[curve] = "inner" if x * x + y * y < ((a + b) / 2) ** 2 else "outer"
    model.addPhysicalGroup(2, [tag for _, tag in quarter], name="solid")
    for name in ("inner", "outer", "left", "bottom"):
        model.addPhysicalGroup(1, [c for c, n in names.items() if n == name], name=name)
