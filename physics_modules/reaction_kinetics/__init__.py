"""Reaction kinetics: reaction networks, precipitation and dissolution, mineral volume fractions.

Reactions are written as equations over named species, ``"Ca + CO3 -> calcite"`` (irreversible)
or ``"2 A + B <-> C"`` (reversible). Each has a net rate r (mol per m^3 of bulk volume per s);
a species X with net stoichiometric coefficient nu_X gains sum_r nu_X r::

    transported X (a mass transport plug-in solves it):   provides X_source = sum_r nu_X r
    immobile X, concentration per pore volume (mol/m^3):   d(eps X)/dt = sum_r nu_X r
    mineral M (molar_volume V_m), volume fraction phi_M:   (1/V_m) d(phi_M)/dt = sum_r nu_M r
    porosity (derived) eps = eps_0 - sum_M phi_M

Rate laws (k is Arrhenius-scaled: k(T) = k exp(-E_a/R (1/T - 1/T_ref)), T the ``temperature``
parameter if given, else the ``temperature`` field if provided, else 298.15 K)::

    mass_action   r = eps (k prod_reactants c^o - k_b prod_products c^o)    k_b = k/K if K given
    expression    r = (case expression)                                    per fluid volume (x eps)
    saturation    r_precipitation = k A sgn(Omega - 1) |Omega - 1|^n       one mineral; A per bulk
    tst           r = k A (1 - Q/K)                                         Q/K of the equation

Orders o are the stoichiometric coefficients unless ``orders`` says otherwise; minerals have
activity 1 (order 0). Q is the reaction quotient (products over reactants, minerals left out) and
K the equilibrium constant of the equation as written; Omega = IAP/K_sp is the mineral's
saturation ratio (Q/K for a dissolution as written, K/Q for a precipitation). ``volume``
says whether a rate is per unit of pore fluid (multiplied by eps; default of mass_action and
expression) or of bulk volume (default of the mineral laws, whose surface area A is per bulk).

Exhaustion: a reaction stops cleanly when what it consumes runs out. Mass-action terms vanish
with their reactants by themselves; every other consumed amount (minerals, species of the other
laws) multiplies its direction by min(1, c/threshold), and a direction producing a mineral by
min(1, (eps - eps_min)/porosity_cutoff). With an implicit time step no amount goes negative and
the pore space never fills beyond eps_min (with bdf1; bdf2 may undershoot slightly where an
amount runs out abruptly). Rates are integrated at the nodes (``lumped``), as
mass transport integrates its sources at degree 1, so every element balance closes exactly.

Solved species live in cellwise-constant spaces (DG0): each cell is a well-mixed reactor, a
local ODE, and a one-cell mesh is a batch reactor. Derived fields: ``X_source`` per transported
species, ``<reaction>_rate`` per reaction, the porosity (name in ``fields``, when there are
minerals). Expressions may name species, other fields and this instance's porosity.

A case uses it as::

    [physics.chemistry]
    type = "reaction_kinetics"
    porosity = 0.4                                     # eps_0: pore space without the minerals
    species.Ca = { transported = true, composition = { Ca = 1 } }
    species.CO3 = { transported = true, composition = { C = 1, O = 3 } }

    [physics.chemistry.species.calcite]
    initial = 0.05
    molar_volume = "36.9 cm^3/mol"
    composition = { Ca = 1, C = 1, O = 3 }

    [physics.chemistry.reactions.growth]
    equation = "calcite <-> Ca + CO3"
    law = "saturation"
    rate_constant = "1e-6 mol/(m^2*s)"
    equilibrium_constant = 3.3e-3                      # (mol/m^3)^2: K_sp
    surface_area = "1e3*(calcite/0.05)**(2/3) + 10"   # m^2 per m^3 of bulk
    activation_energy = "23.5 kJ/mol"
"""

from .equations import Equation, parse_equation
from .plugin import ReactionKinetics

__all__ = ["Equation", "ReactionKinetics", "parse_equation"]
