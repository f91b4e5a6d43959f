"""An L-shaped section (a 90 degree bend between two flanges) for spring-in, 2D or 3D.

The bend is the quarter annulus inner_radius <= r <= inner_radius + thickness, x >= 0, y >= 0;
flange "a" runs down from it (y from 0 to -flange), flange "b" left (x from 0 to -flange)::

    [mesh]
    type = "gmsh"
    file = "meshes/l_section.py"
    order = 2                                     # curved cells follow the arcs exactly
    parameters = { inner_radius = 0.01, thickness = 0.002, flange = 0.03 }

Regions "bend", "flange_a", "flange_b"; boundaries "end_a" (y = -flange), "end_b"
(x = -flange), "inner" (the tool side), "outer" (the bag side). With ``depth`` > 0 the section
is extruded along z into a part of that width (``layers`` cells across it), with the further
boundaries "front" (z = 0) and "back" (z = depth).
"""

import gmsh


def build(model, inner_radius=0.01, thickness=0.002, flange=0.03, depth=0.0, layers=1):
    """The L-section (metres); cells about thickness/2 (quadratic cells for bending)."""
    a, t, f = inner_radius, thickness, flange
    if not (a > 0 and t > 0 and f > 0 and depth >= 0):
        raise ValueError(
            f"need positive inner_radius, thickness, flange and depth >= 0, got {a}, {t}, {f}, "
            f"{depth}"
        )
    if int(layers) != layers or layers < 1:
        raise ValueError(f"layers is a whole number of cells across the width, got {layers}")
    b = a + t
    gmsh.option.setNumber("Mesh.CharacteristicLengthMax", t / 2)
    occ = model.occ
    ring, _ = occ.cut([(2, occ.addDisk(0, 0, 0, b, b))], [(2, occ.addDisk(0, 0, 0, a, a))])
    bend, _ = occ.intersect(ring, [(2, occ.addRectangle(0, 0, 0, b, b))])
    flange_a = occ.addRectangle(a, -f, 0, t, f)
    flange_b = occ.addRectangle(-f, a, 0, f, t)
    parts, mapping = occ.fragment(bend, [(2, flange_a), (2, flange_b)])
    dim = 2
    if depth > 0:  # each region swept along z, then glued again where the regions meet
        volumes = []
        for entities in mapping:
            extruded = occ.extrude(entities, 0, 0, depth, numElements=[int(layers)])
            volumes.append([(3, tag) for d, tag in extruded if d == 3])
        dim = 3
        parts, pieces = occ.fragment(volumes[0], volumes[1] + volumes[2])
        starts = [0, len(volumes[0]), len(volumes[0]) + len(volumes[1])]
        mapping = [
            [piece for kept in pieces[start : start + len(region)] for piece in kept]
            for start, region in zip(starts, volumes, strict=True)
        ]
    occ.synchronize()
    regions = {"bend": mapping[0], "flange_a": mapping[1], "flange_b": mapping[2]}
    for name, entities in regions.items():
        model.addPhysicalGroup(dim, [tag for _, tag in entities], name=name)

    # OCC numbers the curves (surfaces) freely, so name the outer ones by where they lie: the
    # inner (tool) side reaches no further than r = a from the bend's centre, the outer r = b.
    names: dict[str, list[int]] = {"end_a": [], "end_b": [], "inner": [], "outer": []}
    if dim == 3:
        names |= {"front": [], "back": []}
    tolerance = 1e-3 * t  # (bounding boxes carry a small tolerance)
    for _, entity in model.getBoundary(parts, oriented=False):
        _, _, z0, x1, y1, z1 = model.getBoundingBox(dim - 1, entity)
        if dim == 3 and z1 - z0 < tolerance:
            names["front" if z1 < depth / 2 else "back"].append(entity)
        elif abs(y1 + f) < tolerance:
            names["end_a"].append(entity)
        elif abs(x1 + f) < tolerance:
            names["end_b"].append(entity)
        else:
            names["inner" if max(x1, y1) < (a + b) / 2 else "outer"].append(entity)
    for name, entities in names.items():
        model.addPhysicalGroup(dim - 1, entities, name=name)
