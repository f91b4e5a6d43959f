"""The pore space of a packing of equal spherical particles: the periodic unit cell of a battery
electrode whose electrolyte fills the pores (issue 17's second case).

The cell is [0, 1]^3 with one particle of radius r centred on its corner (eighths at the eight
corners), so a periodic array of cells is a simple cubic packing. Only the pores are meshed
(region "matrix"); the particles are the cell's non-conducting phase (an "inclusion" left out,
as ``porous = true`` does in rve_inclusion.py), so the cell's effective conductivity over the
electrolyte's is the electrode's transport factor eps/tau at porosity eps = 1 -
volume_fraction.

Why simple cubic with overlapping spheres: an electrode's solid fraction, 0.66-0.75 for
Chen2020 (porosity 0.25-0.34), is beyond what equal spheres can fill without overlapping in
the simple cubic array (0.524) and at or beyond the body-centred (0.680) and face-centred
(0.740) ones, which would leave only point contacts and vanishing throats that no mesh
resolves. Particles that overlap their neighbours (sintered or calendered contacts: r > 1/2)
keep the pores connected through channels along the cell's edges up to r = sqrt(2)/2 (solid
fraction 0.965), and every face of the cell cuts a particle in a disk, so the pore space is
a single periodic body with throats of finite width. Two regimes are meshed:

    isolated     r <= 1/2 - MARGIN: a particle inside the cell (volume fraction <= 0.435)
    overlapping  NECK <= sqrt(r^2 - 1/4) and sqrt(2)/2 - r >= CHANNEL: necks of radius at
                 least NECK to each neighbour, channels at least CHANNEL wide along the edges
                 (volume fraction 0.591 to 0.907, porosity 0.093 to 0.409)

In between the particles nearly touch (a vanishing gap or neck) and build() refuses the
state with the window it can mesh. Volume fraction 0 is the electrolyte alone.

Measured (periodic, P2, mesh_size 0.25 and 0.12 agree to 1e-5: the curvature sizes the mesh;
tests/test_rve_particles.py):

    porosity eps         0.1     0.2     0.25    0.3     0.335   0.4     0.6     0.8     0.95
    cell eps/tau         0.0303  0.0929  0.1287  0.1677  0.1971  0.2577  0.4904  0.7268  0.9269
    Bruggeman eps^1.5    0.0316  0.0894  0.1250  0.1643  0.1939  0.2530  0.4648  0.7155  0.9259
    HS upper 2eps/(3-eps) 0.0690 0.1429  0.1818  0.2222  0.2514  0.3077  0.5000  0.7273  0.9268

At Chen2020's porosities the packing conducts 3.0 % (negative, 0.25) and 1.7 % (positive,
0.335) more than Bruggeman (tortuosity 1.94 and 1.70 against 2.00 and 1.73). In the DFN at 1C
(cases/battery_discharge.toml, with these factors for the electrodes' electrolyte diffusivity
and conductivity, the separator kept at eps^1.5) the discharge capacity moves from 4.99165 to
4.99213 Ah (+0.010 %) and the voltage up by 1.3 mV (mean over the discharge 3.50598 ->
3.50732 V; 3.51891 -> 3.52022 V at 30 min)::

    DN='negative = "D_e(c_e, T_amb)*0.12869/eps_n**1.5"'   # the law's eps^1.5 divided out
    DS='separator = "D_e(c_e, T_amb)"'
    DP='positive = "D_e(c_e, T_amb)*0.19714/eps_p**1.5"'
    KN='negative = "kappa_e(c_e, T_amb)*0.12869"'
    KS='separator = "kappa_e(c_e, T_amb)*eps_s**b_e_s"'
    KP='positive = "kappa_e(c_e, T_amb)*0.19714"'
    scalebridge run cases/battery_discharge.toml \
      --set "physics.electrolyte.species.c_e.diffusivity={$DN, $DS, $DP}" \
      --set "physics.electrolyte_potential.conductivity={$KN, $KS, $KP}"

cases/battery_discharge_rve.toml serves these factors through a surrogate, per electrode (the
separator is a membrane, not this packing, and keeps eps^1.5).
"""

import math

import gmsh

from app.multiscale.cells import make_periodic

CURVATURE = 24  # cells per full turn of a curved surface
MARGIN = 0.03  # least electrolyte between an isolated particle and the cell's faces
NECK = 0.15  # least neck radius between overlapping particles (of the cell size)
CHANNEL = 0.05  # least distance from a cell edge to an overlapping particle


def solid_fraction(radius: float) -> float:
    """Volume of the particle of a radius inside the unit cell (six caps cut off beyond 1/2;
    the caps stay apart while radius < sqrt(2)/2)."""
    ball = 4 / 3 * math.pi * radius**3
    if radius <= 0.5:
        return ball
    height = radius - 0.5
    return ball - 6 * math.pi * height**2 * (3 * radius - height) / 3


def radius_of(volume_fraction: float) -> float:
    """The radius whose particle fills ``volume_fraction`` of the cell (bisection; the
    fraction grows monotonically with the radius up to sqrt(2)/2)."""
    low, high = 0.0, math.sqrt(0.5)
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if solid_fraction(middle) < volume_fraction else (low, middle)
    return (low + high) / 2


ISOLATED = solid_fraction(0.5 - MARGIN)
OVERLAPPING = (solid_fraction(math.hypot(0.5, NECK)), solid_fraction(math.sqrt(0.5) - CHANNEL))


def limits():
    """Range of ``volume_fraction`` (of the particles) this script meshes; the window
    between the two regimes of the module is refused by build()."""
    return {"volume_fraction": (0.0, OVERLAPPING[1])}


def depolarisation():
    """A sphere's depolarisation factors (the dilute limit) and no turning."""
    return [1 / 3, 1 / 3, 1 / 3], 0.0


def build(model, volume_fraction):
    """The pore space of the cell at a particle ``volume_fraction`` (see the module)."""
    if not (0 <= volume_fraction <= ISOLATED or OVERLAPPING[0] <= volume_fraction):
        raise ValueError(
            f"volume_fraction {volume_fraction:g}: the particles nearly touch (a gap or neck "
            f"below the mesh's reach); mesh 0 to {ISOLATED:.4g} (isolated) or "
            f"{OVERLAPPING[0]:.4g} to {OVERLAPPING[1]:.4g} (overlapping)"
        )
    if volume_fraction > OVERLAPPING[1]:
        raise ValueError(
            f"volume_fraction {volume_fraction:g} closes the pore channels; at most "
            f"{OVERLAPPING[1]:.4g} (channels {CHANNEL:g} wide along the cell's edges)"
        )
    occ = model.occ
    cell = [(3, occ.addBox(0, 0, 0, 1, 1, 1))]
    if volume_fraction > 0:
        # the particle centred on a corner, as eight pieces: each face then cuts spheres whose
        # traces are translates of those on the opposite face, seams included (one sphere at
        # the centre has its OCC seam on one face of a pair only, and gmsh cannot pair them)
        radius = radius_of(volume_fraction)
        corners = [(x, y, z) for x in (0, 1) for y in (0, 1) for z in (0, 1)]
        particle = [(3, occ.addSphere(*corner, radius)) for corner in corners]
        cell, _ = occ.cut(cell, particle)
    occ.synchronize()
    model.addPhysicalGroup(3, [tag for _, tag in cell], name="matrix")
    make_periodic(model, 3)
    gmsh.option.setNumber("Mesh.MeshSizeFromCurvature", CURVATURE)
