"""Generalised Maxwell viscoelasticity (Prony series in shear and bulk) with time-temperature
superposition.

A long-term spring (G_inf, K_inf from E and nu) in parallel with Maxwell branches, each a spring
(G_i or K_i) in series with a dashpot of relaxation time tau_i. With the deviatoric strain e and
the volumetric strain theta (eigenstrains removed), each shear branch keeps its viscous strain
y_i and each bulk branch its viscous volume change z_i::

    sigma = 2 G_inf e + K_inf theta I + sum_i 2 G_i (e - y_i) + sum_i K_i (theta - z_i) I
    dy_i/dt = (e - y_i) / (a_T tau_i),   dz_i/dt = (theta - z_i) / (a_T tau_i)

so G(t) = G_inf + sum G_i exp(-t/tau_i) (and K(t) alike) at the reference temperature. The
shift factor a_T(T) slows (a_T > 1, colder) or speeds up the branches: WLF or Arrhenius.

Integrators, both O(1) memory per step:

* ``exponential`` (default): exact for a strain linear in time over each step,
  y = exp(-x) y_n + (1 - exp(-x)) e_n + (1 - g(x)) (e - e_n),  x = dt/(a_T tau),
  g(x) = (1 - exp(-x))/x; the branch stress becomes exp(-x) s_n + 2 G g(x) (e - e_n), the
  recursive update of Simo & Hughes (Computational Inelasticity, 1998, section 10.3).
* ``scheme``: the case's time scheme on each branch ODE (backward Euler, or BDF2 with
  ``scheme = "bdf2"``), through ``ctx.relaxation``.

The dissipated energy accumulates the branches' dissipation rate 2 G_i |e - y_i|^2/(a_T tau_i)
(+ K_i (theta - z_i)^2/(a_T tau_i)) by the trapezoidal rule over each step.
"""

from collections.abc import Callable
from typing import Any

import ufl

from app.contracts import GAS_CONSTANT, Context, InternalVariable, Quantity

from .elastic import deviatoric
from .parameters import ArrheniusShift, Viscoelasticity, WLFShift

# Below this x = dt/(a_T tau), g(x) = (1 - exp(-x))/x is evaluated by its series (the quotient
# loses digits, and dt = 0 in a single steady solve).
SMALL_STEP = 1e-4


def _relaxed_fraction(x: Any) -> Any:
    """g(x) = (1 - exp(-x))/x, exact to round-off down to x = 0."""
    series = 1 - x / 2 + x**2 / 6 - x**3 / 24
    quotient = (1 - ufl.exp(-x)) / ufl.max_value(x, SMALL_STEP)
    return ufl.conditional(ufl.lt(x, SMALL_STEP), series, quotient)


class GeneralisedMaxwell:
    """The branches of :class:`~physics_modules.mechanics.parameters.Viscoelasticity`.

    Args:
        params: The case's viscoelasticity table.
        lame: The plug-in's Lamé constants (lambda, mu) of the long-term spring in a context.
    """

    def __init__(self, params: Viscoelasticity, lame: Callable[[Context], tuple[Any, Any]]):
        self.params, self._lame = params, lame
        self.shear = [f"viscous_strain_{i + 1}" for i in range(len(params.shear))]
        self.bulk = [f"viscous_volume_strain_{i + 1}" for i in range(len(params.bulk))]

    @property
    def internal_variables(self) -> list[InternalVariable]:
        return [
            *(
                InternalVariable(name, "dimensionless", (3, 3), description="Shear branch y_i")
                for name in self.shear
            ),
            *(
                InternalVariable(name, "dimensionless", description="Bulk branch z_i")
                for name in self.bulk
            ),
            InternalVariable(
                "mechanical_strain", "dimensionless", (3, 3), description="Strain at the last step"
            ),
            InternalVariable(
                "dissipated_energy_density", "J/m^3", description="Energy the dashpots dissipated"
            ),
        ]

    def shift_factor(self, ctx: Context) -> Any:
        """a_T(T): 1 without a shift."""
        shift = self.params.shift
        if shift is None:
            return 1
        T, T_ref = ctx.field("temperature"), ctx.coefficient(shift.reference_temperature)
        match shift:
            case WLFShift():
                c1, c2 = ctx.coefficient(shift.c1), ctx.coefficient(shift.c2)
                return 10 ** (-c1 * (T - T_ref) / (c2 + T - T_ref))
            case ArrheniusShift():
                activation = ctx.coefficient(shift.activation_energy)
                return ufl.exp(activation / GAS_CONSTANT * (1 / T - 1 / T_ref))
        raise TypeError(shift)

    def _branches(self, ctx: Context) -> list[tuple[str, str, Any, Any]]:
        """(name, kind, modulus, shifted relaxation time) of every branch."""
        a_T = self.shift_factor(ctx)
        return [
            (name, kind, ctx.coefficient(term.modulus), a_T * ctx.coefficient(term.relaxation_time))
            for kind, names, terms in (
                ("shear", self.shear, self.params.shear),
                ("bulk", self.bulk, self.params.bulk),
            )
            for name, term in zip(names, terms, strict=True)
        ]

    @staticmethod
    def _target(kind: str, strain: Any) -> Any:
        """What a branch's viscous strain relaxes to: e (shear) or theta (bulk)."""
        return deviatoric(strain) if kind == "shear" else ufl.tr(strain)

    def _viscous(self, ctx: Context, strain: Any) -> dict[str, Any]:
        """The new viscous strain of every branch, for the current strain."""
        before = ctx.previous("mechanical_strain")
        new = {}
        for name, kind, _, time in self._branches(ctx):
            target = self._target(kind, strain)
            if self.params.integrator == "scheme":
                new[name] = ctx.relaxation(name, target, time)
                continue
            x = ctx.dt / time
            decay, start = ufl.exp(-x), self._target(kind, before)
            new[name] = (
                decay * ctx.previous(name)
                + (1 - decay) * start
                + (1 - _relaxed_fraction(x)) * (target - start)
            )
        return new

    def _stress(self, ctx: Context, strain: Any, viscous: dict[str, Any]) -> Any:
        lam, mu = self._lame(ctx)
        identity = ufl.Identity(3)
        stress = lam * ufl.tr(strain) * identity + 2 * mu * strain
        for name, kind, modulus, _ in self._branches(ctx):
            overstrain = self._target(kind, strain) - viscous[name]
            stress += (
                2 * modulus * overstrain if kind == "shear" else modulus * overstrain * identity
            )
        return stress

    def _dissipation(self, ctx: Context, strain: Any, viscous: dict[str, Any]) -> Any:
        """Power the dashpots dissipate per volume."""
        power = 0
        for name, kind, modulus, time in self._branches(ctx):
            overstrain = self._target(kind, strain) - viscous[name]
            factor = 2 * modulus if kind == "shear" else modulus
            power += factor * ufl.inner(overstrain, overstrain) / time
        return power

    def stress(self, ctx: Context, strain: Any) -> Any:
        """The stress the residual uses: the branches advanced to the current strain."""
        return self._stress(ctx, strain, self._viscous(ctx, strain))

    def update(self, ctx: Context, strain: Any) -> dict[str, Any]:
        viscous = self._viscous(ctx, strain)
        accepted = {name: ctx.previous(name) for name in [*self.shear, *self.bulk]}
        before = self._dissipation(ctx, ctx.previous("mechanical_strain"), accepted)
        after = self._dissipation(ctx, strain, viscous)
        dissipated = ctx.previous("dissipated_energy_density") + ctx.dt / 2 * (before + after)
        return viscous | {"mechanical_strain": strain, "dissipated_energy_density": dissipated}

    def latest(self, ctx: Context, strain: Any) -> tuple[Any, Any]:
        """Stress and energy stored in the springs after the latest solve (from the stored
        branches)."""
        latest = {name: ctx.field(name) for name in [*self.shear, *self.bulk]}
        lam, mu = self._lame(ctx)
        energy = lam / 2 * ufl.tr(strain) ** 2 + mu * ufl.inner(strain, strain)
        for name, kind, modulus, _ in self._branches(ctx):
            overstrain = self._target(kind, strain) - latest[name]
            factor = modulus if kind == "shear" else modulus / 2
            energy += factor * ufl.inner(overstrain, overstrain)
        return self._stress(ctx, strain, latest), energy

    def quantities(self, ctx: Context, weight: Any, units: dict[str, str]) -> dict[str, Quantity]:
        return {
            "dissipated_energy": Quantity.integral(
                ctx.field("dissipated_energy_density") * weight * ctx.dx(),
                units["energy"],
                "Energy dissipated by the Maxwell branches",
            )
        }
