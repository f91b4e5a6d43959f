"""Mass transport: diffusion, advection, migration and reaction of dissolved species.

Each species ``X`` named in the case is a concentration field ``c`` (mol/m^3, per unit pore
volume) obeying a conservation law in a porous medium of porosity ``eps``::

    d(eps c)/dt + div N = S                                      in the domain (or a region)
    N = -D_eff grad c  +  q c  -  z D_eff c F/(R T) grad phi      flux (mol/(m^2 s))
    D_eff = f max(eps, eps_floor)^b D  (Bruggeman b = 1.5, Archie b = m = 2, or D_eff = f D)
    S = source(c, ...) + X_source + (1 - t+) s_I/(n F)           volumetric sources

with ``f`` the ``transport_factor`` (default 1): what a microstructure's tortuosity leaves of
the diffusivity, eps/tau with ``effective_diffusivity = "none"``, often a surrogate of its
unit cell per region (``{ negative = { surrogate = "packing" }, separator = "eps_s**1.5" }``)
while D(c) stays the species' own function of the concentration; ``eps_floor``
(``porosity_floor``, default 0) the diffusive path a pore space that fills
up (a clogging mineral) keeps, ``q`` the Darcy (superficial) velocity of a vector field named
by ``velocity``, ``z`` the charge number (Nernst-Planck migration in the potential field named
by ``potential``) and ``S`` per unit total volume: the case's ``source`` (an expression that
may use the species itself, "-2e-3*c" or Fisher's "u*(1 - u)": the unknown enters, so Newton
stays consistent), an optional
field ``X_source`` that another plug-in provides (reaction kinetics), and for the salt of a
binary electrolyte the share ``(1 - t+)/(n F)`` of an electrode reaction current ``s_I`` (A/m^3,
the field named by ``current_source``: ``a j`` of a battery model), which gives the DFN
electrolyte equation ``eps dc/dt = div(eps^b D grad c) + (1 - t+) a j/F``. Several providers
add up (``sources = ["X_anode", "X_cathode"]``, ``current_source = ["a_j_n", "a_j_p"]``), each
integrated over the region its field lives on (one electrode reaction per electrode).

Boundaries (per species; those not listed have no flux, N . n = 0)::

    c = c_b                                  "concentration"
    -N . n = g                               "flux" (mol/(m^2 s) entering)
    N . n = k_m (c - c_inf)                  "mass_transfer" (a Robin condition)
    -N . n = (1 - t+) i/(n F)                "current" (i in A/m^2 entering through an electrode)
    N . n = (q . n) c                        "outflow" (advection leaves, no diffusive flux)

Coordinates (per instance): ``cartesian``; ``axisymmetric`` (r = x, integrals carry 2 pi r: the
full revolution; on a 1D mesh a cylinder per unit length); ``spherical`` (integrals carry
4 pi r^2; on a 1D mesh r = x, on a pseudo-2D (x, r) or pseudo-3D (x, y, r) mesh r is the
coordinate ``radial_axis`` and transport acts along r only, the other coordinates being
parameters: a particle at every x, as a battery DFN needs, or at every (x, y) of a 2D cell; with
``particle_radius`` R, a number or a table by region, that coordinate is r/R in [0, 1]:
particles of several sizes on one mesh, see ``coordinates.py``). The weak form is the
flux form weighted by the coordinate system's measure W::

    int [eps W dc/dt w - W N . grad w - W S w] dx + int W (N . n) w ds = 0

Péclet limits: a Galerkin solution oscillates where the cell Péclet number |q| h/(2 D_eff)
exceeds 1; refine, or set ``stabilization = "supg"`` (streamline upwinding built from the strong
steady residual, migration drift included). The time derivative is not part of that residual
(the framework owns time), so transient runs carry an O(tau dc/dt) error that vanishes at
steady state.

Positivity: with degree 1 the sources are integrated at the nodes (lumped), so a consumption
reaction cannot drive c negative in an unresolved reaction layer; the capacity term keeps the
framework's consistent mass matrix, so steps dt < h^2/(6 D_eff) after a jump may undershoot.
The stored amount eps c is handed to the framework as a storage, so a porosity that changes in
time (a pore space filling with mineral, solved in the same group) conserves the amount exactly.

Outputs per species: the flux ``X_flux`` (derived, without stabilisation), the amount (with
porosity; per region too), the flow leaving through each boundary, the source integral and the
extremes (see :meth:`MassTransport.quantities`). Field names are the species names, so two
instances must name different species.

A case uses it as::

    [physics.electrolyte]
    type = "mass_transport"
    porosity = { anode = 0.25, separator = 0.47, cathode = 0.335 }

    [physics.electrolyte.species.c_e]
    diffusivity = "8.794e-11*(c_e/1000)**2 - 3.972e-10*(c_e/1000) + 4.862e-10"
    transference = 0.2594
    current_source = "a_j"                  # A/m^3, from electrode kinetics
    initial = "1000 mol/m^3"

    [physics.tracer]
    type = "mass_transport"
    velocity = "darcy_velocity"             # provided by the darcy plug-in
    stabilization = "supg"
    species.dye.diffusivity = "1e-9 m^2/s"
    species.dye.source = "-1e-4*dye"
    species.dye.boundaries.inlet = { type = "concentration", value = "1 mol/m^3" }
    species.dye.boundaries.outlet = { type = "outflow" }
"""

from .plugin import MassTransport

__all__ = ["MassTransport"]
