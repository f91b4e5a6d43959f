"""One eighth of a thick spherical shell (a <= r <= b, x, y, z >= 0) for 3D problems.

The spherical capacitor (shared/VALIDATION.md A6) and other radially symmetric problems are
solved on this octant; the three flat faces are symmetry planes::

    [mesh]
    type = "gmsh"
    file = "meshes/octant_shell.py"
    order = 2                                     # curved cells follow the spheres
    parameters = { inner_radius = 0.01, outer_radius = 0.02 }

Region "shell"; boundaries "inner" (r = a), "outer" (r = b) and "x0", "y0", "z0" (the planes
x = 0, y = 0, z = 0).
"""

import gmsh


def build(model, inner_radius=1.0, outer_radius=2.0):
    """The octant of the shell between ``inner_radius`` and ``outer_radius`` (metres)."""
    a, b = inner_radius, outer_radius
    if not 0 < a < b:
        raise ValueError(f"need 0 < inner_radius < outer_radius, got {a} and {b}")
    gmsh.option.setNumber("Mesh.CharacteristicLengthMax", (b - a) / 4)

    occ = model.occ
    shell, _ = occ.cut([(3, occ.addSphere(0, 0, 0, b))], [(3, occ.addSphere(0, 0, 0, a))])
    octant, _ = occ.intersect(shell, [(3, occ.addBox(0, 0, 0, b, b, b))])
    occ.synchronize()

    # OCC numbers the faces of the result freely, so name them by where they lie: a flat face
    # has its centre of mass on its plane; a spherical octant's lies at sqrt(3)/2 of its radius.
    names = {}
    for _, face in model.getBoundary(octant, oriented=False):
        centre = occ.getCenterOfMass(2, face)
        flat = [axis for axis, value in zip("xyz", centre, strict=True) if abs(value) < 1e-9 * b]
        if flat:
            names[face] = f"{flat[0]}0"
        else:
            distance = sum(value * value for value in centre) ** 0.5
            names[face] = "inner" if distance < 3**0.5 / 2 * (a + b) / 2 else "outer"
    model.addPhysicalGroup(3, [tag for _, tag in octant], name="shell")
    for name in ("inner", "outer", "x0", "y0", "z0"):
        model.addPhysicalGroup(2, [f for f, n in names.items() if n == name], name=name)
