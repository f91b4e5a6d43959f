"""NAFEMS LE10: a thick elliptic plate under pressure, one quarter, in two layers.

The plate lies between the ellipses x^2/2^2 + y^2/1^2 = 1 (inside) and x^2/3.25^2 + y^2/2.75^2 = 1
(outside), for x >= 0, y >= 0, and is ``thickness`` thick (0.6 m), from z = -thickness/2 to
+thickness/2. It is built as two layers that share the mid-plane z = 0, so that the mid-plane
line of the outer face is an edge of the mesh: the benchmark holds that line vertically::

    [mesh]
    type = "gmsh"
    file = "meshes/nafems_le10.py"
    size = 0.15

Region "plate"; boundaries "top" (z = +t/2, loaded), "bottom" (z = -t/2), "inner" and "outer"
(the elliptic faces), "symmetry_x" (x = 0) and "symmetry_y" (y = 0); edge set "midline" (the
outer face at z = 0); point set "D" (x = 2, y = 0, z = +t/2, where sigma_yy is reported).
"""

import gmsh

INNER = (2.0, 1.0)  # semi-axes along x and y, m
OUTER = (3.25, 2.75)


def build(model, thickness=0.6):
    """The quarter plate in two layers, with the benchmark's named faces, line and point."""
    if thickness <= 0:
        raise ValueError(f"thickness must be positive, got {thickness}")
    gmsh.option.setNumber("Mesh.CharacteristicLengthMax", 0.2)
    occ, half = model.occ, thickness / 2
    ring, _ = occ.cut(
        [(2, occ.addDisk(0, 0, -half, *OUTER))], [(2, occ.addDisk(0, 0, -half, *INNER))]
    )
    quarter, _ = occ.intersect(ring, [(2, occ.addRectangle(0, 0, -half, *OUTER))])
    lower = occ.extrude(quarter, 0, 0, half)
    middle = next(tag for dim, tag in lower if dim == 2)  # the lower layer's top: z = 0
    upper = occ.extrude([(2, middle)], 0, 0, half)
    occ.synchronize()

    volumes = [tag for dim, tag in lower + upper if dim == 3]
    model.addPhysicalGroup(3, volumes, name="plate")
    faces: dict[str, list[int]] = {}
    for _, face in model.getBoundary([(3, v) for v in volumes], oriented=False):
        faces.setdefault(_face_name(model, face, half), []).append(face)
    for name, tags in faces.items():
        model.addPhysicalGroup(2, tags, name=name)

    # The outer face's curves at z = 0: its two layers meet along the mid-plane line.
    outer_curves = model.getBoundary([(2, f) for f in faces["outer"]], combined=False)
    midline = {abs(c) for _, c in outer_curves if abs(_centre(model, 1, abs(c))[2]) < 1e-9}
    model.addPhysicalGroup(1, sorted(midline), name="midline")
    corner = (INNER[0], 0.0, half)
    point_d = [
        p
        for _, p in model.getEntities(0)
        if max(abs(a - b) for a, b in zip(model.getValue(0, p, []), corner, strict=True)) < 1e-9
    ]
    model.addPhysicalGroup(0, point_d, name="D")


def _centre(model, dim, tag):
    return model.occ.getCenterOfMass(dim, tag)


def _face_name(model, face, half):
    x, y, z = _centre(model, 2, face)
    tol = 1e-9
    if abs(z - half) < tol:
        return "top"
    if abs(z + half) < tol:
        return "bottom"
    if abs(x) < tol:
        return "symmetry_x"
    if abs(y) < tol:
        return "symmetry_y"
    return "inner" if (x / INNER[0]) ** 2 + (y / INNER[1]) ** 2 < 1.2 else "outer"
