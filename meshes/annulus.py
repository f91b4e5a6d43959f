"""An annulus a < r < b: the cross-section of a coaxial cable (gmsh Python script).

A case points at this script and may set its radii::

    [mesh]
    type = "gmsh"
    file = "../meshes/annulus.py"
    size = "0.1 mm"
    order = 2                      # curved cells: the circles are not polygons
    parameters = { inner_radius = "0.5e-3", outer_radius = "1.75e-3" }

Region: "dielectric". Boundaries: "inner" (r = a) and "outer" (r = b).
"""

import gmsh


def build(model, inner_radius=0.5e-3, outer_radius=1.75e-3):
    """Disk of radius b minus the disk of radius a, centred at the origin (metres)."""
    a, b = float(inner_radius), float(outer_radius)
    if not 0 < a < b:
        raise ValueError(f"need 0 < inner_radius < outer_radius, got {a} and {b}")
    # Default cells: about 12 across the gap, so the case runs at a useful size without `size`.
    gmsh.option.setNumber("Mesh.CharacteristicLengthMax", (b - a) / 12)

    outer = model.occ.addDisk(0, 0, 0, b, b)
    inner = model.occ.addDisk(0, 0, 0, a, a)
    ring, _ = model.occ.cut([(2, outer)], [(2, inner)])
    model.occ.synchronize()

    model.addPhysicalGroup(2, [tag for _, tag in ring], tag=1, name="dielectric")
    # Tell the circles apart by their bounding boxes (the cut may renumber curves).
    circles = {"inner": [], "outer": []}
    for _, curve in model.getEntities(1):
        x_max = model.getBoundingBox(1, curve)[3]
        circles["inner" if x_max < (a + b) / 2 else "outer"].append(curve)
    model.addPhysicalGroup(1, circles["inner"], tag=1, name="inner")
    model.addPhysicalGroup(1, circles["outer"], tag=2, name="outer")
