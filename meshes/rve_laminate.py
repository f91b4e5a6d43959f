"""A periodic unit cell of two layers: a laminate, the microstructure whose effective properties
are known exactly (Voigt along the layers, Reuss across them).

The cell is [0, 1]^d (d = 2 or 3) with a layer of the inclusion phase of thickness
``volume_fraction`` across x, centred in the cell: the layers are normal to x. Regions
"matrix" and "inclusion"; periodic faces as in rve_inclusion.py::

    microstructure = "../meshes/rve_laminate.py"
    parameters = { dim = 2 }
"""

from app.multiscale.cells import make_periodic


def limits(dim=2):
    """Any fraction strictly between 0 and 1 meshes (0 and 1 are one phase alone)."""
    return {"volume_fraction": (0.0, 0.98)}


def depolarisation(dim=2):
    """Layers normal to x: the series direction (L = 1) and the parallel ones (L = 0)."""
    return [1.0] + [0.0] * (dim - 1), 0.0


def build(model, volume_fraction, dim=2):
    """The two-layer cell (see the module)."""
    if dim not in (2, 3):
        raise ValueError(f"dim must be 2 or 3, got {dim}")
    if not 0 <= volume_fraction <= limits(dim)["volume_fraction"][1]:
        raise ValueError(f"volume_fraction must lie in [0, 0.98], got {volume_fraction}")
    occ = model.occ
    low, high = 0.5 - volume_fraction / 2, 0.5 + volume_fraction / 2
    widths = [low, volume_fraction, 1 - high]
    starts = [0.0, low, high]
    slabs = []
    for start, width in zip(starts, widths, strict=True):
        if width <= 0:
            continue
        if dim == 2:
            slabs.append((2, occ.addRectangle(start, 0, 0, width, 1)))
        else:
            slabs.append((3, occ.addBox(start, 0, 0, width, 1, 1)))
    pieces, _ = occ.fragment(slabs[:1], slabs[1:]) if len(slabs) > 1 else (slabs, None)
    occ.synchronize()
    inclusion, matrix = [], []
    for entity in pieces:
        x0, _, _, x1, _, _ = occ.getBoundingBox(*entity)
        middle = (x0 + x1) / 2
        (inclusion if low < middle < high else matrix).append(entity[1])
    model.addPhysicalGroup(dim, matrix, name="matrix")
    if inclusion:
        model.addPhysicalGroup(dim, inclusion, name="inclusion")
    make_periodic(model, dim)
