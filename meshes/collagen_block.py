"""A collagen block fed through its top face: case A of the biomineral scenario (gmsh script).

A square (2D) or cube (3D) of side ``side``, y pointing up in both, so the top face is y = side
whichever the dimension. Ions enter through the top and precipitate within a few hundred
microns of it, so the cells are structured and graded in depth: ``surface_cell`` thick at the
top, growing geometrically to the bottom, and ``cells_across`` wide laterally. A facet set at
``mark_depth`` below the top lets a case read the mineral fraction there::

    [mesh]
    type = "gmsh"
    file = "../meshes/collagen_block.py"
    parameters = { dimension = 2, side = 2e-3, surface_cell = 5e-6 }

Region: "matrix". Boundaries: "top" (y = side), "bottom" (y = 0), "sides" (the lateral faces)
and the interior facet set "mark" (y = side - mark_depth). Cells: quadrilaterals (2D) or
hexahedra (3D). ``size`` in a case has no effect: the cell counts follow from the parameters.
"""


def layer(thickness, first, cells):
    """Growth ratio q of ``cells`` cells that start at ``first`` and fill ``thickness`` (1:
    equal cells, when that many cells of ``first`` would already overfill it)."""
    if cells * first >= thickness:
        return 1.0
    low, high = 1.0, 2.0
    while first * (high**cells - 1) / (high - 1) < thickness:
        high *= 2
    for _ in range(200):  # bisection on the geometric sum
        q = (low + high) / 2
        low, high = (q, high) if first * (q**cells - 1) / (q - 1) < thickness else (low, q)
    return (low + high) / 2


def build(
    model,
    dimension=2,
    side=2e-3,
    surface_cell=5e-6,
    mark_depth=200e-6,
    cells_to_mark=24,
    cells_below_mark=24,
    cells_across=8,
):
    """The block [0, side]^d with the top at y = side (metres)."""
    dimension, side, h0, depth = int(dimension), float(side), float(surface_cell), float(mark_depth)
    if dimension not in (2, 3):
        raise ValueError(f"dimension must be 2 or 3, got {dimension}")
    if not 0 < h0 < depth < side:
        raise ValueError("need 0 < surface_cell < mark_depth < side")
    n1, n2, across = int(cells_to_mark), int(cells_below_mark), int(cells_across)
    q1 = layer(depth, h0, n1)
    q2 = layer(side - depth, h0 * q1**n1, n2)  # continues the grading below the mark

    geo, top_of_lower = model.geo, side - depth
    corners = [(0, 0), (side, 0), (side, top_of_lower), (side, side), (0, side), (0, top_of_lower)]
    p = [geo.addPoint(x, y, 0) for x, y in corners]
    bottom, top = geo.addLine(p[0], p[1]), geo.addLine(p[3], p[4])
    right_low, right_up = geo.addLine(p[1], p[2]), geo.addLine(p[2], p[3])
    left_up, left_low = geo.addLine(p[4], p[5]), geo.addLine(p[5], p[0])
    mark = geo.addLine(p[5], p[2])
    lower = geo.addPlaneSurface([geo.addCurveLoop([bottom, right_low, -mark, left_low])])
    upper = geo.addPlaneSurface([geo.addCurveLoop([mark, right_up, top, left_up])])
    for line in (bottom, top, mark):
        geo.mesh.setTransfiniteCurve(line, across + 1)
    # Cells shrink towards the top: lines drawn upwards shrink (1/q), downwards grow (q).
    for line, cells, ratio in ((right_up, n1, 1 / q1), (left_up, n1, q1)):
        geo.mesh.setTransfiniteCurve(line, cells + 1, "Progression", ratio)
    for line, cells, ratio in ((right_low, n2, 1 / q2), (left_low, n2, q2)):
        geo.mesh.setTransfiniteCurve(line, cells + 1, "Progression", ratio)
    for surface in (lower, upper):
        geo.mesh.setTransfiniteSurface(surface)
        geo.mesh.setRecombine(2, surface)
    if dimension == 3:
        geo.extrude([(2, lower), (2, upper)], 0, 0, side, [across], recombine=True)
    geo.synchronize()

    eps = 1e-6 * side
    depth_z = side if dimension == 3 else 0.0

    def inside(dim, x0, y0, z0, x1, y1, z1):
        box = (x0 - eps, y0 - eps, z0 - eps, x1 + eps, y1 + eps, z1 + eps)
        return [tag for _, tag in model.getEntitiesInBoundingBox(*box, dim)]

    facet = dimension - 1
    cells = [tag for _, tag in model.getEntities(dimension)]
    model.addPhysicalGroup(dimension, cells, tag=1, name="matrix")
    model.addPhysicalGroup(facet, inside(facet, 0, side, 0, side, side, depth_z), name="top")
    model.addPhysicalGroup(facet, inside(facet, 0, 0, 0, side, 0, depth_z), name="bottom")
    level = side - depth
    model.addPhysicalGroup(facet, inside(facet, 0, level, 0, side, level, depth_z), name="mark")
    lateral = [
        *inside(facet, 0, 0, 0, 0, side, depth_z),
        *inside(facet, side, 0, 0, side, side, depth_z),
    ]
    if dimension == 3:
        lateral += inside(facet, 0, 0, 0, side, side, 0) + inside(
            facet, 0, 0, side, side, side, side
        )
    model.addPhysicalGroup(facet, lateral, name="sides")
