"""Two layers on either side of a thin metal plate (gmsh Python script).

Layer 1 fills 0 < x < d1, the plate d1 < x < d1 + t (not meshed: a conductor is one
equipotential, so only its faces matter), layer 2 fills d1 + t < x < d1 + t + d2; all are
H tall. With electrodes on the outer faces this is two capacitors (or resistors) in series
through a floating conductor, whose potential follows in closed form::

    [mesh]
    type = "gmsh"
    file = "../meshes/floating_plate.py"
    parameters = { thickness_1 = 1e-3, thickness_2 = 2e-3 }

Regions: "layer_1", "layer_2". Boundaries: "left" (x = 0), "right" (outer face of layer 2),
"plate" (both faces of the plate), "bottom" and "top" (y = 0 and y = H, both layers).
"""

import gmsh


def build(model, thickness_1=1e-3, thickness_2=2e-3, plate=0.2e-3, height=1e-3):
    """The two layers with the plate's gap between them (metres)."""
    d1, d2, t, h = float(thickness_1), float(thickness_2), float(plate), float(height)
    gmsh.option.setNumber("Mesh.CharacteristicLengthMax", min(d1, d2, h) / 4)
    first = model.occ.addRectangle(0, 0, 0, d1, h)
    second = model.occ.addRectangle(d1 + t, 0, 0, d2, h)
    model.occ.synchronize()

    eps = 1e-2 * min(d1, d2, t, h)  # above gmsh's bounding-box tolerance (1e-7 m)

    def curves(x0, y0, x1, y1):
        box = (x0 - eps, y0 - eps, -eps, x1 + eps, y1 + eps, eps)
        return [tag for _, tag in model.getEntitiesInBoundingBox(*box, 1)]

    right = d1 + t + d2
    model.addPhysicalGroup(2, [first], tag=1, name="layer_1")
    model.addPhysicalGroup(2, [second], tag=2, name="layer_2")
    model.addPhysicalGroup(1, curves(0, 0, 0, h), tag=1, name="left")
    model.addPhysicalGroup(1, curves(right, 0, right, h), tag=2, name="right")
    faces = curves(d1, 0, d1, h) + curves(d1 + t, 0, d1 + t, h)
    model.addPhysicalGroup(1, faces, tag=3, name="plate")
    model.addPhysicalGroup(1, curves(0, 0, right, 0), tag=4, name="bottom")
    model.addPhysicalGroup(1, curves(0, h, right, h), tag=5, name="top")
