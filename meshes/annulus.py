"""An annulus a < r < b: the cross-section of a coaxial cable (gmsh Python script).

A case points at this script and may set its radii::

    [mesh]
    type = "gmsh"
    file = "../meshes/annulus.py"
    size = "0.1 mm"
    order = 2                      # curved cells: the circles are not polygons
    parameters = { inner_radius = "0.5e-3", outer_radius = "1.75e-3" }

Region: "dielectric". Boundaries: "inner" (r = a) and "outer" (r = b). With
``interface_radius = c`` (a < c < b) the annulus has two layers instead, the regions
"inner_layer" (r < c) and "outer_layer" (r > c), which meet at the interface "interface".
"""

import gmsh


def build(model, inner_radius=0.5e-3, outer_radius=1.75e-3, interface_radius=None):
    """Disk of radius b minus the disk of radius a, centred at the origin (metres)."""
    a, b = float(inner_radius), float(outer_radius)
    if not 0 < a < b:
        raise ValueError(f"need 0 < inner_radius < outer_radius, got {a} and {b}")
    c = None if interface_radius is None else float(interface_radius)
    if c is not None and not a < c < b:
        raise ValueError(f"need inner_radius < interface_radius < outer_radius, got {a}, {c}, {b}")
    # Default cells: about 12 across the gap, so the case runs at a useful size without `size`.
    gmsh.option.setNumber("Mesh.CharacteristicLengthMax", (b - a) / 12)

    occ = model.occ
    ring, _ = occ.cut([(2, occ.addDisk(0, 0, 0, b, b))], [(2, occ.addDisk(0, 0, 0, a, a))])
    if c is not None:  # fragmenting makes the layers share the interface circle
        ring, _ = occ.fragment(ring, [(1, occ.addCircle(0, 0, 0, c))])
        ring = [entity for entity in ring if entity[0] == 2]
    occ.synchronize()

    # The cut and fragment renumber freely: tell surfaces and circles apart by their size.
    def radius(dim, tag):
        return model.getBoundingBox(dim, tag)[3]

    if c is None:
        model.addPhysicalGroup(2, [tag for _, tag in ring], tag=1, name="dielectric")
    else:
        layers = {"inner_layer": [], "outer_layer": []}
        for _, surface in ring:
            layers["inner_layer" if radius(2, surface) < (c + b) / 2 else "outer_layer"].append(
                surface
            )
        model.addPhysicalGroup(2, layers["inner_layer"], tag=1, name="inner_layer")
        model.addPhysicalGroup(2, layers["outer_layer"], tag=2, name="outer_layer")
    circles = {"inner": [], "interface": [], "outer": []}
    for _, curve in model.getEntities(1):
        r = radius(1, curve)
        if r < (a + (c or b)) / 2:
            circles["inner"].append(curve)
        elif c is not None and r < (c + b) / 2:
            circles["interface"].append(curve)
        else:
            circles["outer"].append(curve)
    model.addPhysicalGroup(1, circles["inner"], tag=1, name="inner")
    model.addPhysicalGroup(1, circles["outer"], tag=2, name="outer")
    if c is not None:
        model.addPhysicalGroup(1, circles["interface"], tag=3, name="interface")
