"""Von Mises (J2) plasticity with isotropic and kinematic hardening: the return mapping in UFL.

One implementation for every user: the mechanics plug-in (through :mod:`app.contracts`) and the
nonlinear unit cells of :mod:`app.multiscale.plastic_cell`.

Small strain, associative flow, backward Euler. With the strain eps (minus eigenstrains) of the
current displacement and the accepted plastic strain eps_p,n, equivalent plastic strain p_n and
back stress beta_n::

    trial stress     sigma* = C : (eps - eps_p,n),    xi* = dev(sigma*) - beta_n
    trial yield      f* = q* - sigma_y - R(p_n),      q* = sqrt(3/2 xi*:xi*)
    flow direction   N = 3/2 xi*/q*
    increment        dp = 0 where f* <= 0 (to 1e-10 sigma_y), else the root of
                     g(dp) = q* - (3 mu + H_kin) dp - sigma_y - R(p_n + dp) = 0
    new state        sigma = sigma* - 2 mu dp N,  eps_p = eps_p,n + dp N,  p = p_n + dp,
                     beta = beta_n + 2/3 H_kin dp N

R(p) = H p + Q (1 - exp(-b p)). Linear hardening (no Voce term) gives dp = f*/(3 mu + H + H_kin)
in closed form; Voce hardening takes a fixed number of Newton iterations from the linearised
increment, written out in UFL. Either way the stress is an expression of the strain, so
``ufl.derivative`` of a residual is the consistent (algorithmic) tangent and a global Newton
converges quadratically.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ufl

# The equivalent stress is sqrt(3/2 xi:xi + (TINY sigma_y)^2): finite flow direction and
# derivative at a stress-free point (where dp = 0 anyway), unchanged to round-off elsewhere.
TINY = 1e-10
# A trial state less than this fraction of sigma_y outside the yield surface is elastic: the
# converged state a step starts from lies on the surface only up to round-off, and round-off
# (which differs between partitions) must not choose the tangent of Newton's first iteration.
YIELD_TOLERANCE = 1e-10


def deviatoric(tensor: Any) -> Any:
    """The deviatoric part of a 3x3 tensor."""
    return tensor - ufl.tr(tensor) / 3 * ufl.Identity(3)


@dataclass(frozen=True)
class J2Material:
    """The constants of a J2 material, as UFL scalars or numbers.

    Attributes:
        lame: Lamé's (lambda, mu).
        yield_stress: sigma_y > 0.
        isotropic_modulus: H of the linear part of R(p).
        saturation: (Q, b) of the Voce part Q (1 - exp(-b p)); None: linear hardening only.
        kinematic_modulus: H_kin of the back stress; None: no kinematic hardening.
        local_iterations: Newton iterations of the Voce increment (unrolled in UFL).
    """

    lame: tuple[Any, Any]
    yield_stress: Any
    isotropic_modulus: Any = 0.0
    saturation: tuple[Any, Any] | None = None
    kinematic_modulus: Any | None = None
    local_iterations: int = 6

    def hardening(self, p: Any) -> tuple[Any, Any]:
        """R(p) and its slope dR/dp."""
        H = self.isotropic_modulus
        R, slope = H * p, H
        if self.saturation is not None:
            Q, b = self.saturation
            R += Q * (1 - ufl.exp(-b * p))
            slope += Q * b * ufl.exp(-b * p)
        return R, slope


@dataclass(frozen=True)
class J2History:
    """The accepted state a step starts from (UFL); ``back_stress`` None without kinematic
    hardening."""

    plastic_strain: Any
    equivalent_plastic_strain: Any
    back_stress: Any = None


@dataclass(frozen=True)
class J2Step:
    """The return mapping of one strain: the stress, the new state, the increment dp and the
    flow direction N (3x3 tensors in UFL)."""

    stress: Any
    plastic_strain: Any
    equivalent_plastic_strain: Any
    back_stress: Any
    increment: Any
    direction: Any


def j2_return_mapping(material: J2Material, strain: Any, history: J2History) -> J2Step:
    """The stress and new internal variables of ``strain`` (3x3, eigenstrains removed) from the
    accepted ``history`` (see the module)."""
    lam, mu = material.lame
    sigma_y = material.yield_stress
    kinematic = material.kinematic_modulus is not None
    H_kin = material.kinematic_modulus if kinematic else 0
    back_n = history.back_stress if kinematic else ufl.zero(3, 3)
    p_n = history.equivalent_plastic_strain
    trial_elastic = strain - history.plastic_strain
    trial = lam * ufl.tr(trial_elastic) * ufl.Identity(3) + 2 * mu * trial_elastic
    xi = deviatoric(trial) - back_n
    q = ufl.sqrt(1.5 * ufl.inner(xi, xi) + (TINY * sigma_y) ** 2)
    f = q - sigma_y - material.hardening(p_n)[0]
    plastic = ufl.gt(f, YIELD_TOLERANCE * sigma_y)
    dp = ufl.conditional(plastic, _increment(material, q, p_n, f, H_kin), 0)
    N = 1.5 * xi / q
    return J2Step(
        stress=trial - 2 * mu * dp * N,
        plastic_strain=history.plastic_strain + dp * N,
        equivalent_plastic_strain=p_n + dp,
        back_stress=back_n + 2 / 3 * H_kin * dp * N if kinematic else None,
        increment=dp,
        direction=N,
    )


def _increment(material: J2Material, q: Any, p_n: Any, f: Any, H_kin: Any) -> Any:
    """dp on the yield surface: closed form for linear hardening, else Newton on g(dp) from the
    increment of the hardening slope at p_n (an underestimate for a concave R, from which Newton
    rises monotonically)."""
    elastic = 3 * material.lame[1] + H_kin
    dp = f / (elastic + material.hardening(p_n)[1])
    if material.saturation is None:
        return dp
    for _ in range(material.local_iterations):
        R, slope = material.hardening(p_n + dp)
        dp += (q - elastic * dp - material.yield_stress - R) / (elastic + slope)
    return dp
