"""A trabecular strut: an old mineralised core wrapped in osteoid packets facing the marrow.

Case B of the biomineral scenario (gmsh script). The strut lies along x, 0 <= x <= ``length``:

* 2D (``dimension = 2``): a plate section |y| <= thickness/2, the core |y| <= thickness/2 -
  packet, a packet of thickness ``packet`` on either face;
* 3D (``dimension = 3``): a cylinder of diameter ``thickness``, the core a coaxial cylinder,
  the packets a shell of thickness ``packet``.

So one case runs in 2D or 3D by changing only ``parameters.dimension``::

    [mesh]
    type = "gmsh"
    file = "../meshes/trabecular_strut.py"
    size = "10 um"
    parameters = { dimension = 2, length = 1e-3, thickness = 0.2e-3, packet = 50e-6 }

Regions: "core", "packets". Boundaries: "marrow" (the faces in contact with the marrow),
"left" (x = 0), "right" (x = length) and the interior facet set "cement_line" (core against
packets). Triangles or tetrahedra, at most ``packet``/5 in size unless the case sets ``size``.
"""

import gmsh


def build(model, dimension=2, length=1e-3, thickness=0.2e-3, packet=50e-6):
    """The strut (metres); x along its axis, the packets at radius (|y|) > thickness/2 - packet."""
    dimension, length, radius, packet = int(dimension), float(length), thickness / 2, float(packet)
    if dimension not in (2, 3):
        raise ValueError(f"dimension must be 2 or 3, got {dimension}")
    if not 0 < packet < radius:
        raise ValueError("need 0 < packet < thickness/2")
    core_radius = radius - packet
    gmsh.option.setNumber("Mesh.CharacteristicLengthMax", packet / 5)
    occ = model.occ
    if dimension == 2:
        parts = [
            occ.addRectangle(0, -radius, 0, length, packet),
            occ.addRectangle(0, -core_radius, 0, length, 2 * core_radius),
            occ.addRectangle(0, core_radius, 0, length, packet),
        ]
    else:
        parts = [
            occ.addCylinder(0, 0, 0, length, 0, 0, radius),
            occ.addCylinder(0, 0, 0, length, 0, 0, core_radius),
        ]
    # Fragmenting makes core and packets share the cement line, so the mesh conforms there.
    occ.fragment([(dimension, parts[0])], [(dimension, tag) for tag in parts[1:]])
    occ.synchronize()

    # Facets are told apart by a point on each (OpenCASCADE's bounding boxes of curved faces
    # are loose): the ends by x, the cement line and the marrow face by their distance from
    # the axis; the core is what the marrow face does not bound.
    facet, tolerance = dimension - 1, 1e-3 * packet
    where = {tag: _point_on(model, facet, tag) for _, tag in model.getEntities(facet)}
    groups = {"marrow": [], "left": [], "right": [], "cement_line": []}
    for tag, (x, distance) in where.items():
        if abs(x) < tolerance:
            groups["left"].append(tag)
        elif abs(x - length) < tolerance:
            groups["right"].append(tag)
        elif abs(distance - radius) < tolerance:
            groups["marrow"].append(tag)
        else:
            groups["cement_line"].append(tag)
    core, packets = [], []
    for _, tag in model.getEntities(dimension):
        faces = {abs(t) for _, t in model.getBoundary([(dimension, tag)], oriented=False)}
        (packets if faces & set(groups["marrow"]) else core).append(tag)
    model.addPhysicalGroup(dimension, core, tag=1, name="core")
    model.addPhysicalGroup(dimension, packets, tag=2, name="packets")
    for name, tags in groups.items():
        model.addPhysicalGroup(facet, tags, name=name)


def _point_on(model, dim, tag):
    """(x, distance from the x axis) of a point on an entity, at the middle of its parameters."""
    low, high = model.getParametrizationBounds(dim, tag)
    x, y, z = model.getValue(dim, tag, [(a + b) / 2 for a, b in zip(low, high, strict=True)])
    return x, (y * y + z * z) ** 0.5
