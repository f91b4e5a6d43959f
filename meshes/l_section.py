"""An L-shaped section (a 90 degree bend between two flanges) for plane-strain spring-in.

The bend is the quarter annulus inner_radius <= r <= inner_radius + thickness, x >= 0, y >= 0;
flange "a" runs down from it (y from 0 to -flange), flange "b" left (x from 0 to -flange)::

    [mesh]
    type = "gmsh"
    file = "meshes/l_section.py"
    order = 2                                     # curved cells follow the arcs exactly
    parameters = { inner_radius = 0.01, thickness = 0.002, flange = 0.03 }

Regions "bend", "flange_a", "flange_b"; boundaries "end_a" (y = -flange), "end_b"
(x = -flange), "inner" (the tool side), "outer" (the bag side).
"""

import gmsh


def build(model, inner_radius=0.01, thickness=0.002, flange=0.03):
    """The L-section (metres); cells about thickness/2 (quadratic cells for bending)."""
    a, t, f = inner_radius, thickness, flange
    if not (a > 0 and t > 0 and f > 0):
        raise ValueError(f"need positive inner_radius, thickness, flange, got {a}, {t}, {f}")
    b = a + t
    gmsh.option.setNumber("Mesh.CharacteristicLengthMax", t / 2)
    occ = model.occ
    ring, _ = occ.cut([(2, occ.addDisk(0, 0, 0, b, b))], [(2, occ.addDisk(0, 0, 0, a, a))])
    bend, _ = occ.intersect(ring, [(2, occ.addRectangle(0, 0, 0, b, b))])
    flange_a = occ.addRectangle(a, -f, 0, t, f)
    flange_b = occ.addRectangle(-f, a, 0, f, t)
    parts, mapping = occ.fragment(bend, [(2, flange_a), (2, flange_b)])
    occ.synchronize()
    regions = {"bend": mapping[0], "flange_a": mapping[1], "flange_b": mapping[2]}
    for name, entities in regions.items():
        model.addPhysicalGroup(2, [tag for _, tag in entities], name=name)

    # OCC numbers the curves freely, so name the outer ones by where they lie: the inner
    # (tool) side reaches no further than r = a from the bend's centre, the outer side r = b.
    names: dict[str, list[int]] = {"end_a": [], "end_b": [], "inner": [], "outer": []}
    for _, curve in model.getBoundary(parts, oriented=False):
        _, _, _, x1, y1, _ = model.getBoundingBox(1, curve)
        if abs(y1 + f) < 1e-3 * t:  # (bounding boxes carry a small tolerance)
            names["end_a"].append(curve)
        elif abs(x1 + f) < 1e-3 * t:
            names["end_b"].append(curve)
        else:
            names["inner" if max(x1, y1) < (a + b) / 2 else "outer"].append(curve)
    for name, curves in names.items():
        model.addPhysicalGroup(1, curves, name=name)
