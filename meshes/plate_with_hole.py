"""A quarter of a plate with a central circular hole, refined towards the hole.

The Kirsch problem (shared/VALIDATION.md A4): a plate [-W, W] x [-H, H] with a hole of radius a
at the origin, pulled along x. By symmetry only x >= 0, y >= 0 is meshed::

    [mesh]
    type = "gmsh"
    file = "meshes/plate_with_hole.py"
    parameters = { radius = 0.01, width = 0.1, height = 0.1, hole_size = 5e-4 }

Cells are ``hole_size`` at the hole (default a/20) and grow linearly with the distance d from it,
size = hole_size + growth * d, up to the largest size (the case's ``mesh.size``, default
``max(width, height)/10``).

Region "solid"; boundaries "hole" (the arc), "left" (x = 0), "bottom" (y = 0), "right" (x = W)
and "top" (y = H).
"""

import gmsh


def build(model, radius=1.0, width=10.0, height=10.0, hole_size=None, growth=0.25):
    """Quarter plate [0, width] x [0, height] minus the disk of ``radius`` at the origin, with
    cells of ``hole_size`` (default radius/20) at the hole, growing by ``growth`` times the
    distance from it."""
    a, w, h = radius, width, height
    if not 0 < a < min(w, h):
        raise ValueError(f"need 0 < radius < min(width, height), got {a}, {w}, {h}")
    gmsh.option.setNumber("Mesh.CharacteristicLengthMax", max(w, h) / 10)

    occ = model.occ
    plate, _ = occ.cut([(2, occ.addRectangle(0, 0, 0, w, h))], [(2, occ.addDisk(0, 0, 0, a, a))])
    occ.synchronize()

    names = {}
    tol = 1e-9 * max(w, h)
    for _, curve in model.getBoundary(plate, oriented=False):
        x, y, _ = occ.getCenterOfMass(1, curve)
        sides = {"left": abs(x) < tol, "bottom": abs(y) < tol, "right": abs(x - w) < tol}
        sides["top"] = abs(y - h) < tol
        names[curve] = next((name for name, hit in sides.items() if hit), "hole")
    model.addPhysicalGroup(2, [tag for _, tag in plate], name="solid")
    for name in ("hole", "left", "bottom", "right", "top"):
        model.addPhysicalGroup(1, [c for c, n in names.items() if n == name], name=name)

    # The stress concentrates at the hole: small cells there, growing away from it.
    fine = hole_size if hole_size is not None else a / 20
    hole = [c for c, n in names.items() if n == "hole"]
    distance = model.mesh.field.add("Distance")
    model.mesh.field.setNumbers(distance, "CurvesList", hole)
    model.mesh.field.setNumber(distance, "Sampling", 200)
    threshold = model.mesh.field.add("Threshold")
    model.mesh.field.setNumber(threshold, "InField", distance)
    model.mesh.field.setNumber(threshold, "SizeMin", fine)
    model.mesh.field.setNumber(threshold, "SizeMax", max(w, h))
    model.mesh.field.setNumber(threshold, "DistMin", 0.0)
    model.mesh.field.setNumber(threshold, "DistMax", (max(w, h) - fine) / growth)
    model.mesh.field.setAsBackgroundMesh(threshold)
    gmsh.option.setNumber("Mesh.MeshSizeExtendFromBoundary", 0)
    gmsh.option.setNumber("Mesh.MeshSizeFromPoints", 0)
    gmsh.option.setNumber("Mesh.MeshSizeFromCurvature", 0)
