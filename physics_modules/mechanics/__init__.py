"""Solid mechanics: quasi-static elasticity (small strain or Neo-Hookean), plasticity and
viscoelasticity.

Equilibrium without inertia; loads may depend on t, and each time step is a steady solve::

    -div sigma = f                                 in the domain
    u_i = g_i  (some or all components)            "displacement" and "fixed" boundaries
    sigma n = t                                    "traction"
    sigma n = -p n                                 "pressure" (p > 0 pushes on the surface)
    sigma n = -k u   or   -k (u.n) n               "spring" (elastic foundation)

Boundaries the case does not list are traction free.
``angles.<name> = ["first", "second"]`` reports the rotation about z of the second straight
boundary minus that of the first (the slope of its normal displacement): a spring-in angle.

**Small strain** (default). With an eigenstrain eps*: thermal expansion, swelling and the
dimensionless fields ``eigenstrains`` names (a moisture or cure plug-in's; a scalar field is
isotropic, a tensor field its symmetric part, with none out of plane on a 2D mesh)::

    eps = sym(grad u),   eps_el = eps - eps*,   sigma = C : eps_el
    eps* = [alpha (T - T_ref) + Omega (c - c_ref)/3 + scalar fields] I + tensor fields
    isotropic:    sigma = 2 mu eps_el + lambda tr(eps_el) I,
                  lambda = E nu / ((1 + nu)(1 - 2 nu)),  mu = E / (2 (1 + nu))
    orthotropic:  normal block C = S^-1,  S = [[1/E1, -nu12/E1, -nu13/E1],
                                               [-nu12/E1, 1/E2, -nu23/E2],
                                               [-nu13/E1, -nu23/E2, 1/E3]],
                  shear sigma_ij = 2 G_ij eps_ij (material axes = global axes; per region)

**Porous solids** (``pore_pressure = { field = "pressure", biot_coefficient = 1 }``): the
effective stress principle of Terzaghi and Biot, the pore pressure p of a field (the darcy
plug-in's, or a prescribed one) carrying part of the load::

    sigma = sigma'(eps - eps*) - alpha p I

sigma' is the stress of whichever small-strain law the case chose (elastic, orthotropic,
plasticity, viscoelasticity, incremental, FE2 cells: a yield or a relaxation is driven by the
effective stress); the ``stress`` field and the reactions are of the total stress, the von Mises
stress is the same for both. Not with large deformation or plane stress (where sigma_zz = 0
would involve p). Coupled with darcy (``biot_coefficient`` of both, which should be equal) the
fluid content reads div u back: Biot's consolidation (cases/terzaghi.toml).

**Materials with memory** (small strain, 3D, plane strain and axisymmetric; one at a time), each
with its internal variables at the quadrature points (``plasticity.py``, ``viscoelasticity.py``,
``incremental.py`` state the equations):

* ``plasticity``: von Mises plasticity with linear and Voce isotropic and linear kinematic
  hardening, by a return mapping whose consistent tangent Newton differentiates exactly;
* ``viscoelasticity``: a generalised Maxwell solid (Prony series in shear and bulk) with a WLF
  or Arrhenius time-temperature shift, integrated exactly (exponential) or by the time scheme;
* ``stress_form = "incremental"``: the rate form sigma_{n+1} = sigma_n + C : d(eps - eps*), for
  a stiffness that changes with the state (stress built at a low modulus stays locked in);
* ``constitutive = { rve = "name" }`` (FE2, ``homogenised.py``): the stress of a nonlinear unit
  cell at every quadrature point (``[rves.<name>]``), its homogenised tangent for Newton, plane
  strain or 3D.

Their stress-like outputs are values at the quadrature points (written as cell means).

**Large deformation** (``large_deformation = true``): compressible Neo-Hookean in the reference
configuration, the eigenstrain as a multiplicative stretch F = F_e F*, F* = I + eps*::

    psi(F_e) = mu/2 (tr(F_e^T F_e) - 3) - mu ln J_e + lambda/2 (ln J_e)^2    (per unit volume)
    P = det(F*) [mu (F_e - F_e^-T) + lambda ln(J_e) F_e^-T] F*^-T            (first Piola)
    int P : grad v dX = int f.v dX + int t.v dA                              (dead loads)

tractions are nominal (per reference area); a pressure follows the surface, t = -p J F^-T N.
Newton's method (the framework's SNES) solves it; ramp large loads with t.

**Formulations** on 2D meshes, all written with the 3x3 tensors of 3D whose out-of-plane row is
(0, 0, eps_zz): plane strain (eps_zz = 0), plane stress (sigma_zz = 0, eps_zz condensed out of
the law) and axisymmetric (x = r >= 0, y = z, eps_zz is the hoop strain u_r/r; integrals carry
2 pi r, so reactions, loads and energies are those of the full revolution). ``auto`` is 3d on 3D
meshes and plane strain on 2D ones.

A case uses it as::

    [physics.mechanics]
    formulation = "plane_strain"
    youngs_modulus = "210 GPa"
    poisson_ratio = 0.3
    boundaries.left = { type = "displacement", x = 0 }      # symmetry plane
    boundaries.bottom = { type = "displacement", y = 0 }
    boundaries.inner = { type = "pressure", value = "100 MPa" }

Outputs: the displacement (solved), strain, stress, von Mises stress, strain energy density and
the out-of-plane normal stress (``hoop_stress`` in axisymmetric, else ``out_of_plane_stress``:
sigma_zz, zero in plane stress) as derived fields; the support reactions, applied boundary
loads and mean displacements of every boundary with a condition (load-displacement pairs),
strain energy and the largest von Mises stress as quantities; plastic work, dissipated energy,
yielded volume and the largest equivalent plastic strain with plasticity, dissipated energy
with viscoelasticity.

The rigid-body motions are the near-nullspace of CG + GAMG; with no support and no spring they
are the exact nullspace (a free body under balanced loads). A body held only partly, e.g. by
one symmetry plane, must be held against its remaining rigid motions by the case.
"""

from .plugin import Mechanics

__all__ = ["Mechanics"]
