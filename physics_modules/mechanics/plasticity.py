"""Von Mises (J2) plasticity with isotropic and kinematic hardening for the mechanics plug-in.

The return mapping itself (equations, tolerances) is the framework's
:func:`app.contracts.j2_return_mapping`, shared with the nonlinear unit cells of multiscale
runs; this module reads the case's constants, hands it the accepted internal variables and
reports what the plastic flow did. The stress is an expression of the displacement, so
``ufl.derivative`` of the residual is the consistent (algorithmic) tangent and the global Newton
converges quadratically.

The plastic work accumulates sigma : d(eps_p) = dp sigma:N; the dissipated energy sigma_y dp
(what the yield stress dissipates; the rest of the plastic work is stored in hardening).
"""

from collections.abc import Callable
from typing import Any

import ufl

from app.contracts import (
    Context,
    InternalVariable,
    J2History,
    J2Material,
    Quantity,
    Value,
    j2_return_mapping,
)

from .parameters import Plasticity


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

    def material(self, ctx: Context) -> J2Material:
        """The case's constants in a context."""
        params = self.params
        saturation = None
        if self.voce:
            saturation = (
                ctx.coefficient(params.saturation_stress),
                ctx.coefficient(params.saturation_rate),
            )
        return J2Material(
            lame=self._lame(ctx),
            yield_stress=ctx.coefficient(params.yield_stress),
            isotropic_modulus=ctx.coefficient(params.isotropic_modulus),
            saturation=saturation,
            kinematic_modulus=ctx.coefficient(params.kinematic_modulus) if self.kinematic else None,
            local_iterations=params.local_iterations,
        )

    def return_mapping(self, ctx: Context, strain: Any) -> dict[str, Any]:
        """The stress and the new internal variables of ``strain`` (3x3, eigenstrains removed)
        from the accepted state."""
        material = self.material(ctx)
        history = J2History(
            ctx.previous("plastic_strain"),
            ctx.previous("equivalent_plastic_strain"),
            ctx.previous("back_stress") if self.kinematic else None,
        )
        step = j2_return_mapping(material, strain, history)
        dp, stress = step.increment, step.stress
        state = {
            "stress": stress,
            "plastic_strain": step.plastic_strain,
            "equivalent_plastic_strain": step.equivalent_plastic_strain,
            "plastic_work_density": ctx.previous("plastic_work_density")
            + dp * ufl.inner(stress, step.direction),
            "dissipated_energy_density": ctx.previous("dissipated_energy_density")
            + material.yield_stress * dp,
        }
        if self.kinematic:
            state["back_stress"] = step.back_stress
        return state

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
