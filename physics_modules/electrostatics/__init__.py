"""Electrostatics: the electric potential in dielectrics and in conductors.

One equation, two readings. With a material coefficient ``a`` and the flux ``G``::

    G = a (grad phi - k grad ln c)        (k = 0 unless a diffusion potential is given)
    -div G = f                            in the domain

* ``mode = "dielectric"``: ``a`` is the permittivity eps, ``f`` the charge density rho and
  ``D = -G = -eps grad phi`` the electric displacement (Gauss's law div D = rho).
* ``mode = "conduction"``: ``a`` is the conductivity sigma, ``f`` a volumetric current source
  s (current injected per volume, e.g. by an electrode reaction) and ``i = -G`` the current
  density, so that div i = s; ``transport_factor`` f (default 1) multiplies sigma: a porous
  medium's eps/tau (a surrogate of its unit cell per region) times the electrolyte's
  sigma(c). With ``diffusion_potential`` the current of a concentrated electrolyte carries the
  diffusion term of the concentration field c::

      i = -sigma (grad phi - k grad ln c),     k = chi R T / F  [V]

  and ``joule_heating = true`` provides the heat ``i . E`` (E = -grad phi; sigma |grad phi|^2
  without the diffusion term) to a heat plug-in of the same case, coupled inside Newton.

Boundaries (named; those not listed are insulated, G . n = 0)::

    phi = phi_b                                   "potential" (may depend on t)
    G . n = g                                     "current" (A/m^2 into the domain) or
                                                  "surface_charge" (C/m^2, dielectric)
    phi = U on the boundary, int G . n = I        "total_current" (A) / "total_charge" (C)
    phi = U on the boundary, int G . n = 0        "floating" (an isolated conductor)

The potential U of an equipotential boundary is one more unknown, a global (real) field named
``<potential>_<boundary>`` (``potential_right``). The boundary's equipotential condition is
imposed by Nitsche's method and its net flow by one equation per boundary::

    F_phi += [-(G . n) v - a (grad v . n)(phi - U) + gamma a/h (phi - U) v] ds
    F_U   += [(G . n - gamma a/h (phi - U)) - I/|boundary|] w ds

The bracket in F_U is the consistent normal flux, so its integral is exactly I for the discrete
solution; the symmetric Nitsche terms keep the operator symmetric. Like any potential, phi needs
a reference: a "potential" boundary, or a coupling that fixes its level (electrode kinetics).

Quantities: per boundary the current leaving the domain through it (conduction; the sign
convention of every boundary flow of the built-ins: what leaves is positive, while prescribed
boundary currents are given as what enters) or the charge on it (dielectric): the reaction on
potential boundaries (and point or edge sets held at a potential), the prescribed value on
current/charge boundaries and the consistent flux on equipotential ones (exact for the discrete
solution, so balances close to round-off); the potential of each equipotential boundary; the
electrical power int i . E (conduction) or the stored energy 1/2 int D . E (dielectric).

A case uses it as::

    [physics.electrostatics]
    mode = "conduction"
    conductivity = "5.96e7/(1 + 0.0039*(temperature - 293.15))"
    joule_heating = true
    boundaries.left = { type = "potential", value = "5 mV" }
    boundaries.right = { type = "total_current", value = "-2 A" }

Several instances (a battery's solid and electrolyte potentials) rename their fields:
``fields = { potential = "phi_e", current_density = "i_e", current_source = "a_j" }``. A list
of sources adds them up, each integrated over the region it lives on (one electrode reaction
per electrode): ``current_source = ["a_j_negative", "a_j_positive"]``.
"""

from .plugin import Electrostatics

__all__ = ["Electrostatics"]
