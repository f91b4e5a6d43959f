"""Von Mises (J2) plasticity with isotropic and kinematic hardening: the return mapping in UFL.

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

R(p) = H p + Q (1 - exp(-b p)). Linear hardening (Q = 0) gives dp = f*/(3 mu + H + H_kin) in
closed form; Voce hardening takes a fixed number of Newton iterations from the linearised
increment, written out in UFL. Either way the stress is an expression of the displacement,
so ``ufl.derivative`` of the residual is the consistent (algorithmic) tangent and the global
Newton converges quadratically.

The plastic work accumulates sigma : d(eps_p) = dp sigma:N; the dissipated energy sigma_y dp
(what the yield stress dissipates; the rest of the plastic work is stored in hardening).
"""

from collections.abc import Callable
from typing import Any

import ufl

from app.contracts import Context, InternalVariable, Quantity, Value

from .elastic import deviatoric
from .parameters import Plasticity

# The equivalent stress is sqrt(3/2 xi:xi + (TINY sigma_y)^2): finite flow direction and
# derivative at a stress-free point (where dp = 0 anyway), unchanged to round-off elsewhere.
TINY = 1e-10
# A trial state less than this fraction of sigma_y outside the yield surface is elastic: the
# converged state a step starts from lies on the surface only up to round-off, and round-off
# (which differs between partitions) must not choose the tangent of Newton's first iteration.
YIELD_TOLERANCE = 1e-10


def _given(value: Any) -> bool:
    """Whether a parameter is more than a constant 0 (a term to keep)."""
    return not (isinstance(value, Value) and value.value == 0.0)


class J2Plasticity:
    """The return mapping of :class:`~physics_modules.mechanics.parameters.Plasticity`.

    Args:
        params: The case's plasticity table.
        lame: The plug-in's Lamé constants (lambda, mu) in a context.
    """

    def __init__(self, params: Plasticity, lame: Callable[[Context], tuple[Any, Any]]):
        self.params, self._lame = params, lame
        self.kinematic = _given(params.kinematic_modulus)
        self.voce = _given(params.saturation_stress) and _given(params.saturation_rate)

    @property
    def internal_variables(self) -> list[InternalVariable]:
        variables = [
            InternalVariable("plastic_strain", "dimensionless", (3, 3), description="eps_p"),
            InternalVariable(
                "equivalent_plastic_strain",
                "dimensionless",
                description="p = int sqrt(2/3) |d eps_p|",
            ),
            InternalVariable("plastic_work_density", "J/m^3", description="int sigma : d eps_p"),
            InternalVariable(
                "dissipated_energy_density", "J/m^3", description="int sigma_y dp (dissipated)"
            ),
        ]
        if self.kinematic:
            variables.append(
                InternalVariable("back_stress", "Pa", (3, 3), description="Kinematic back stress")
            )
        return variables

    def _hardening(self, ctx: Context, p: Any) -> tuple[Any, Any]:
        """R(p) and its slope dR/dp."""
        params = self.params
        H = ctx.coefficient(params.isotropic_modulus)
        R, slope = H * p, H
        if self.voce:
            Q, b = (
                ctx.coefficient(params.saturation_stress),
                ctx.coefficient(params.saturation_rate),
            )
            R += Q * (1 - ufl.exp(-b * p))
            slope += Q * b * ufl.exp(-b * p)
        return R, slope

    def return_mapping(self, ctx: Context, strain: Any) -> dict[str, Any]:
        """The stress and the new internal variables of ``strain`` (3x3, eigenstrains removed)
        from the accepted state."""
        lam, mu = self._lame(ctx)
        sigma_y = ctx.coefficient(self.params.yield_stress)
        H_kin = ctx.coefficient(self.params.kinematic_modulus) if self.kinematic else 0
        plastic_n = ctx.previous("plastic_strain")
        p_n = ctx.previous("equivalent_plastic_strain")
        back_n = ctx.previous("back_stress") if self.kinematic else ufl.zero(3, 3)
        trial_elastic = strain - plastic_n
        trial = lam * ufl.tr(trial_elastic) * ufl.Identity(3) + 2 * mu * trial_elastic
        xi = deviatoric(trial) - back_n
        q = ufl.sqrt(1.5 * ufl.inner(xi, xi) + (TINY * sigma_y) ** 2)
        f = q - sigma_y - self._hardening(ctx, p_n)[0]
        plastic = ufl.gt(f, YIELD_TOLERANCE * sigma_y)
        dp = ufl.conditional(plastic, self._increment(ctx, q, p_n, f, mu, H_kin), 0)
        N = 1.5 * xi / q
        stress = trial - 2 * mu * dp * N
        state = {
            "stress": stress,
            "plastic_strain": plastic_n + dp * N,
            "equivalent_plastic_strain": p_n + dp,
            "plastic_work_density": ctx.previous("plastic_work_density")
            + dp * ufl.inner(stress, N),
            "dissipated_energy_density": ctx.previous("dissipated_energy_density") + sigma_y * dp,
        }
        if self.kinematic:
            state["back_stress"] = back_n + 2 / 3 * H_kin * dp * N
        return state

    def _increment(self, ctx: Context, q: Any, p_n: Any, f: Any, mu: Any, H_kin: Any) -> Any:
        """dp on the yield surface: closed form for linear hardening, else Newton on g(dp)
        from the increment of the hardening slope at p_n (an underestimate for a concave R,
        from which Newton rises monotonically)."""
        elastic = 3 * mu + H_kin
        dp = f / (elastic + self._hardening(ctx, p_n)[1])
        if not self.voce:
            return dp
        sigma_y = ctx.coefficient(self.params.yield_stress)
        for _ in range(self.params.local_iterations):
            R, slope = self._hardening(ctx, p_n + dp)
            dp += (q - elastic * dp - sigma_y - R) / (elastic + slope)
        return dp

    def stress(self, ctx: Context, strain: Any) -> Any:
        """The stress the residual uses: the return mapping of the current strain."""
        return self.return_mapping(ctx, strain)["stress"]

    def update(self, ctx: Context, strain: Any) -> dict[str, Any]:
        state = self.return_mapping(ctx, strain)
        return {variable.name: state[variable.name] for variable in self.internal_variables}

    def latest(self, ctx: Context, strain: Any) -> tuple[Any, Any]:
        """Stress and stored elastic energy after the latest solve (from the stored plastic
        strain)."""
        lam, mu = self._lame(ctx)
        elastic = strain - ctx.field("plastic_strain")
        stress = lam * ufl.tr(elastic) * ufl.Identity(3) + 2 * mu * elastic
        return stress, ufl.inner(stress, elastic) / 2

    def quantities(self, ctx: Context, weight: Any, units: dict[str, str]) -> dict[str, Quantity]:
        """Plastic work, dissipated energy, yielded volume and the largest equivalent plastic
        strain."""
        dx = ctx.dx()
        yielded = ufl.conditional(ufl.gt(ctx.field("equivalent_plastic_strain"), 0), 1, 0)
        return {
            "plastic_work": Quantity.integral(
                ctx.field("plastic_work_density") * weight * dx,
                units["energy"],
                "Plastic work, int sigma : d eps_p",
            ),
            "dissipated_energy": Quantity.integral(
                ctx.field("dissipated_energy_density") * weight * dx,
                units["energy"],
                "Energy dissipated by plastic flow",
            ),
            "yielded_volume": Quantity.integral(
                yielded * weight * dx, units["volume"], "Volume that has yielded (p > 0)"
            ),
            "max_equivalent_plastic_strain": Quantity.maximum(
                "equivalent_plastic_strain", "dimensionless", "Largest equivalent plastic strain"
            ),
        }
