"""A periodic unit cell with one inclusion: the representative volume element of a matrix that
holds inclusions (particles, mineral crystals, fibres) or pores at a given volume fraction.

The cell is [0, 1]^d; the inclusion sits at its centre, so a periodic array of cells is a
square (cubic) array of inclusions. Shapes::

    circle      2D disk                        (a cylinder seen end-on: fibres along z)
    ellipse     2D ellipse, semi-axes a = aspect_ratio * b, turned by ``angle`` (degrees)
    sphere      3D ball
    spheroid    3D spheroid, axis a = aspect_ratio * b along x turned by ``angle`` about z
    fibre       3D cylinder along z through the whole cell (a fibre-reinforced cell)

``porous = true`` leaves the inclusion out (a pore): only the matrix is meshed. Volume fraction
0 is the matrix alone. The mesh is periodic: each face of the cell is meshed as a translated
copy of the opposite face (``gmsh.model.mesh.setPeriodic``), so the nodes of opposite faces
match, which a periodic finite-element solve needs.

Regions: "matrix" and "inclusion" (no inclusion when porous or at volume fraction 0); no
boundary groups (the solver finds the cell's faces by their coordinates). Used by
``[surrogates.<name>]`` sections of case files as::

    microstructure = "../meshes/rve_inclusion.py"
    parameters = { shape = "ellipse", aspect_ratio = 2.0 }
"""

import math

import gmsh

from app.multiscale.cells import make_periodic

CURVATURE = 24  # cells per full turn of a curved surface: small inclusions stay resolved

SHAPES = {"circle": 2, "ellipse": 2, "sphere": 3, "spheroid": 3, "fibre": 3}
MARGIN = 0.03  # least matrix between an inclusion and the cell's faces (of the cell size)


def limits(shape="circle", aspect_ratio=1.0, angle=0.0, porous=False):
    """Range of ``volume_fraction`` this script can mesh for the other parameters: the
    inclusion must stay ``MARGIN`` inside the cell."""
    b = _largest_semi_axis(shape, aspect_ratio, angle)  # the semi-axis scale that just fits
    a = aspect_ratio * b
    if shape in ("circle", "fibre"):
        most = math.pi * b * b
    elif shape == "ellipse":
        most = math.pi * a * b
    elif shape == "sphere":
        most = 4 / 3 * math.pi * b**3
    else:
        most = 4 / 3 * math.pi * a * b * b
    return {"volume_fraction": (0.0, most)}


def depolarisation(shape="circle", aspect_ratio=1.0, angle=0.0, porous=False):
    """Depolarisation factors of the inclusion along its axes (x, y(, z) before turning) and
    the angle (degrees, about z) it is turned by: its shape as the dilute limit sees it."""
    if shape == "circle":
        return [0.5, 0.5], 0.0
    if shape == "ellipse":
        return [1 / (1 + aspect_ratio), aspect_ratio / (1 + aspect_ratio)], angle
    if shape == "fibre":
        return [0.5, 0.5, 0.0], 0.0
    if shape == "sphere" or abs(aspect_ratio - 1) < 1e-12:
        return [1 / 3] * 3, 0.0
    if aspect_ratio > 1:  # prolate along x
        e = math.sqrt(1 - 1 / aspect_ratio**2)
        along = (1 - e * e) / e**2 * (math.atanh(e) / e - 1)
    else:  # oblate
        e = math.sqrt(1 / aspect_ratio**2 - 1)
        along = (1 + e * e) / e**3 * (e - math.atan(e))
    return [along, (1 - along) / 2, (1 - along) / 2], angle


def build(model, volume_fraction, shape="circle", aspect_ratio=1.0, angle=0.0, porous=False):
    """The unit cell with one centred inclusion of ``volume_fraction`` (see the module)."""
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {', '.join(SHAPES)}, got {shape!r}")
    if not aspect_ratio > 0:
        raise ValueError(f"aspect_ratio must be > 0, got {aspect_ratio}")
    low, high = limits(shape, aspect_ratio, angle, porous)["volume_fraction"]
    if not low <= volume_fraction <= high:
        raise ValueError(
            f"volume_fraction {volume_fraction:g} does not fit a {shape} in the cell "
            f"(range {low:g} to {high:.4g} with these parameters)"
        )
    dim = SHAPES[shape]
    occ = model.occ
    cell = occ.addRectangle(0, 0, 0, 1, 1) if dim == 2 else occ.addBox(0, 0, 0, 1, 1, 1)
    inclusion = []
    if volume_fraction > 0:
        inclusion = [(dim, _inclusion(occ, volume_fraction, shape, aspect_ratio, angle))]
    if inclusion and porous:
        matrix, _ = occ.cut([(dim, cell)], inclusion)
        inclusion = []
    elif inclusion:
        pieces, _ = occ.fragment([(dim, cell)], inclusion)
        inclusion = [piece for piece in pieces if _inside(occ, piece)]
        matrix = [piece for piece in pieces if piece not in inclusion]
    else:
        matrix = [(dim, cell)]
    occ.synchronize()
    model.addPhysicalGroup(dim, [tag for _, tag in matrix], name="matrix")
    if inclusion:
        model.addPhysicalGroup(dim, [tag for _, tag in inclusion], name="inclusion")
    make_periodic(model, dim)
    gmsh.option.setNumber("Mesh.MeshSizeFromCurvature", CURVATURE)


def _inclusion(occ, fraction, shape, aspect_ratio, angle):
    """The inclusion's OCC entity, centred in the cell."""
    c = 0.5
    if shape == "circle":
        r = math.sqrt(fraction / math.pi)
        return occ.addDisk(c, c, 0, r, r)
    if shape == "fibre":
        r = math.sqrt(fraction / math.pi)
        return occ.addCylinder(c, c, 0, 0, 0, 1, r)
    if shape == "sphere":
        return occ.addSphere(c, c, c, (3 * fraction / (4 * math.pi)) ** (1 / 3))
    if shape == "ellipse":
        b = math.sqrt(fraction / (math.pi * aspect_ratio))
        a = aspect_ratio * b
        # OCC wants the major radius first; a disk along y is one along x turned by 90 degrees
        tag = occ.addDisk(c, c, 0, max(a, b), min(a, b))
        turn = math.radians(angle) + (0 if a >= b else math.pi / 2)
        occ.rotate([(2, tag)], c, c, 0, 0, 0, 1, turn)
        return tag
    b = (3 * fraction / (4 * math.pi * aspect_ratio)) ** (1 / 3)
    tag = occ.addSphere(c, c, c, b)
    occ.dilate([(3, tag)], c, c, c, aspect_ratio, 1, 1)
    occ.rotate([(3, tag)], c, c, c, 0, 0, 1, math.radians(angle))
    return tag


def _largest_semi_axis(shape, aspect_ratio, angle):
    """The semi-axis b (the one across the long axis a = aspect_ratio * b) whose inclusion
    keeps MARGIN to the faces of the cell, after turning by ``angle`` about z."""
    room = 0.5 - MARGIN
    if shape in ("circle", "sphere", "fibre"):
        return room
    turn = math.radians(angle)
    a_per_b, cos, sin = aspect_ratio, math.cos(turn), math.sin(turn)
    # half-widths (per b) of the bounding box of an ellipse with semi-axes (a, b) turned by
    # angle; a spheroid also reaches b along z
    half_x = math.hypot(a_per_b * cos, sin)
    half_y = math.hypot(a_per_b * sin, cos)
    return room / max(half_x, half_y, 1.0 if shape == "spheroid" else 0.0)


def _inside(occ, entity):
    """Whether a fragment of the cell keeps off its x and y faces (the inclusion; a fibre
    spans z)."""
    dim, tag = entity
    x0, y0, _, x1, y1, _ = occ.getBoundingBox(dim, tag)
    return min(x0, y0) > 1e-6 and max(x1, y1) < 1 - 1e-6
