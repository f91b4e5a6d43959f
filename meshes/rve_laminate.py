"""A periodic unit cell of two layers: a laminate, the microstructure whose effective properties
are known exactly (Voigt along the layers, Reuss across them).

The cell is [0, 1]^d (d = 2 or 3) with a layer of the inclusion phase of thickness
``volume_fraction`` centred in the cell, normal to the axis ``normal`` (0: x, the default;
1: y; 2: z in 3D). Regions "matrix" and "inclusion"; periodic faces as in rve_inclusion.py::

    microstructure = "../meshes/rve_laminate.py"
    parameters = { dim = 2 }
"""

from app.multiscale.cells import make_periodic


def limits(dim=2):
    """Any fraction strictly between 0 and 1 meshes (0 and 1 are one phase alone)."""
    return {"volume_fraction": (0.0, 0.98)}


def depolarisation(dim=2, normal=0):
    """Across the layers the series direction (L = 1), along them the parallel ones (L = 0)."""
    return [1.0 if axis == normal else 0.0 for axis in range(dim)], 0.0


def _slab(occ, dim, normal, start, width):
    """The slab start < x_normal < start + width of the unit cell."""
    corner, sizes = [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]
    corner[normal], sizes[normal] = start, width
    if dim == 2:
        return (2, occ.addRectangle(corner[0], corner[1], 0, sizes[0], sizes[1]))
    return (3, occ.addBox(*corner, *sizes))


def build(model, volume_fraction, dim=2, normal=0):
    """The two-layer cell (see the module)."""
    if dim not in (2, 3):
        raise ValueError(f"dim must be 2 or 3, got {dim}")
    if normal not in range(dim):
        raise ValueError(f"normal must be an axis 0..{dim - 1} of a {dim}D cell, got {normal}")
    if not 0 <= volume_fraction <= limits(dim)["volume_fraction"][1]:
        raise ValueError(f"volume_fraction must lie in [0, 0.98], got {volume_fraction}")
    normal, occ = int(normal), model.occ
    low, high = 0.5 - volume_fraction / 2, 0.5 + volume_fraction / 2
    widths = [low, volume_fraction, 1 - high]
    starts = [0.0, low, high]
    slabs = [
        _slab(occ, dim, normal, start, width)
        for start, width in zip(starts, widths, strict=True)
        if width > 0
    ]
    pieces, _ = occ.fragment(slabs[:1], slabs[1:]) if len(slabs) > 1 else (slabs, None)
    occ.synchronize()
    inclusion, matrix = [], []
    for entity in pieces:
        box = occ.getBoundingBox(*entity)
        middle = (box[normal] + box[normal + 3]) / 2
        (inclusion if low < middle < high else matrix).append(entity[1])
    model.addPhysicalGroup(dim, matrix, name="matrix")
    if inclusion:
        model.addPhysicalGroup(dim, inclusion, name="inclusion")
    make_periodic(model, dim)
