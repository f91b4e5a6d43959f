"""The pseudo-3D (x, y, r) mesh of a 2D battery cell with tabs: a particle at every (x, y).

x runs through the layers (negative electrode, separator, positive electrode, in m), y along the
electrode height (m), and z is the normalised particle radius r in [0, 1]: the pseudo-2D (x, r)
mesh of ``type = "pseudo2d"`` with the height added. Hexahedra, structured: vertex planes exactly
at the layer interfaces and the tab ends, cells uniform across each layer and graded toward the
particle surface along r (r_i = 1 - (1 - i/N)^g, the rows of the pseudo2d mesh)::

    [mesh]
    type = "gmsh"
    file = "../meshes/battery_cell_2d.py"
    parameters = { height = 200e-6, positive_tab_width = 50e-6, radial_grading = 1.5 }

Regions: ``negative``, ``separator``, ``positive``. Boundaries: ``top`` (r = 1: the particle
surfaces and, read in (x, y), the cell's 2D plane, whose facet submesh carries the electrolyte
and the potentials), ``bottom`` (r = 0), the tabs ``negative_tab`` (x = 0) and ``positive_tab``
(x = L) over [tab_start, tab_start + tab_width] in y, the rest of the collector edges
``negative_edge`` and ``positive_edge`` (absent when a tab spans its whole edge), and the
electrode's lower (y = 0) and upper (y = height) ends ``lower`` and ``upper``.
"""

import itertools
import math

import numpy as np

MAX_CELLS = 10**7


def build(
    model,
    negative=85.2e-6,
    separator=12e-6,
    positive=75.6e-6,
    height=200e-6,
    negative_tab_start=0.0,
    negative_tab_width=None,
    positive_tab_start=0.0,
    positive_tab_width=None,
    negative_cells=10,
    separator_cells=5,
    positive_cells=10,
    height_cells=4,
    radial_cells=8,
    radial_grading=1.0,
):
    """The cell (metres); tabs default to their whole collector edge."""
    thicknesses = (negative, separator, positive)
    counts = (negative_cells, separator_cells, positive_cells, height_cells, radial_cells)
    if not all(0 < value < math.inf for value in (*thicknesses, height)):
        raise ValueError(
            f"layer thicknesses and height must be positive and finite, got {thicknesses}, {height}"
        )
    if any(int(count) != count or count < 1 for count in counts):
        raise ValueError(f"cell counts must be whole numbers >= 1, got {counts}")
    cells = sum(counts[:3]) * counts[3] * counts[4]
    if cells > MAX_CELLS:  # checked before gmsh meshes it: the memory budget sees it only after
        raise ValueError(f"{cells:.3g} cells is more than {MAX_CELLS:.0e}; use fewer")
    if not 1 <= radial_grading <= 10:
        raise ValueError(f"radial_grading is in [1, 10] (1: uniform), got {radial_grading}")
    tabs = {
        "negative": _tab(negative_tab_start, negative_tab_width, height, "negative"),
        "positive": _tab(positive_tab_start, positive_tab_width, height, "positive"),
    }
    xs = np.concatenate([[0.0], np.cumsum(thicknesses)])
    ys = np.unique([0.0, height, *tabs["negative"], *tabs["positive"]])
    layer_cells = [int(negative_cells), int(separator_cells), int(positive_cells)]
    band_cells = [max(1, round(height_cells * (b - a) / height)) for a, b in itertools.pairwise(ys)]
    plane = _plane(model, xs, ys, layer_cells, band_cells)

    n = int(radial_cells)
    rows = 1 - (1 - np.arange(1, n + 1) / n) ** radial_grading
    model.geo.extrude(
        [(2, s) for s in plane], 0, 0, 1, numElements=[1] * n, heights=list(rows), recombine=True
    )
    model.geo.synchronize()
    _groups(model, xs, ys, tabs)


def _tab(start, width, height, name):
    """The tab's ends in y, checked to lie on the edge."""
    width = height - start if width is None else width
    if not (start >= 0 and width > 0 and start + width <= height * (1 + 1e-12)):
        raise ValueError(
            f"the {name} tab [{start:g}, {start + width:g}] m must lie within the edge "
            f"[0, {height:g}] m with a positive width"
        )
    return start, min(start + width, height)


def _plane(model, xs, ys, layer_cells, band_cells):
    """The (x, y) plane at r = 0 as structured quadrilateral patches, one per layer and band."""
    geo = model.geo
    points = [[geo.addPoint(x, y, 0) for y in ys] for x in xs]
    across = [  # lines along x, per layer and y plane
        [geo.addLine(points[i][j], points[i + 1][j]) for j in range(len(ys))]
        for i in range(len(xs) - 1)
    ]
    along = [  # lines along y, per x plane and band
        [geo.addLine(points[i][j], points[i][j + 1]) for j in range(len(ys) - 1)]
        for i in range(len(xs))
    ]
    for i, cells in enumerate(layer_cells):
        for line in across[i]:
            geo.mesh.setTransfiniteCurve(line, cells + 1)
    for j, cells in enumerate(band_cells):
        for i in range(len(xs)):
            geo.mesh.setTransfiniteCurve(along[i][j], cells + 1)
    surfaces = []
    for i in range(len(xs) - 1):
        for j in range(len(ys) - 1):
            loop = geo.addCurveLoop(
                [across[i][j], along[i + 1][j], -across[i][j + 1], -along[i][j]]
            )
            surface = geo.addPlaneSurface([loop])
            geo.mesh.setTransfiniteSurface(surface)
            geo.mesh.setRecombine(2, surface)
            surfaces.append(surface)
    return surfaces


def _groups(model, xs, ys, tabs):
    """Regions by layer; boundaries by where their surfaces lie."""
    length, height = xs[-1], ys[-1]
    eps = 1e-9 * min(np.diff(xs).min(), np.diff(ys).min())

    def within(dim, x0, x1, y0, y1, z0, z1):
        box = (x0 - eps, y0 - eps, z0 - 1e-9, x1 + eps, y1 + eps, z1 + 1e-9)
        return [tag for _, tag in model.getEntitiesInBoundingBox(*box, dim)]

    for name, (x0, x1) in zip(
        ("negative", "separator", "positive"), itertools.pairwise(xs), strict=True
    ):
        model.addPhysicalGroup(3, within(3, x0, x1, 0, height, 0, 1), name=name)
    model.addPhysicalGroup(2, within(2, 0, length, 0, height, 1, 1), name="top")
    model.addPhysicalGroup(2, within(2, 0, length, 0, height, 0, 0), name="bottom")
    model.addPhysicalGroup(2, within(2, 0, length, 0, 0, 0, 1), name="lower")
    model.addPhysicalGroup(2, within(2, 0, length, height, height, 0, 1), name="upper")
    for name, x in (("negative", 0.0), ("positive", length)):
        edge = set(within(2, x, x, 0, height, 0, 1))
        tab = set(within(2, x, x, *tabs[name], 0, 1))
        model.addPhysicalGroup(2, sorted(tab), name=f"{name}_tab")
        if edge - tab:
            model.addPhysicalGroup(2, sorted(edge - tab), name=f"{name}_edge")
