"""Conversions of reaction_kinetics: a degree of conversion (of cure) at every point, its rate
laws, and the fields and quantities an instance with conversions adds.

A conversion alpha in [0, 1] is dimensionless and local (no transport): d(alpha)/dt = f(alpha, T)
at each node of its DG0 field, with T the instance's temperature. The laws::

    kamal_sourour       f = (k1 + k2 alpha^m) (1 - alpha)^n                autocatalytic
    lee_loos_springer   f = (k1 + k2 alpha) (1 - alpha) (B - alpha)   alpha <= alpha_switch
                        f = k3 (1 - alpha)                            alpha >  alpha_switch
    k_i = A_i exp(-E_i / (R T))

``lee_loos_springer`` is the piecewise law of Hercules 3501-6 (Lee, Loos & Springer 1982:
B = 0.47, alpha_switch = 0.3). Its rate jumps at alpha_switch; where it jumps up, an implicit step
that starts just below has no solution, so the jump is spread linearly over alpha_switch < alpha <
alpha_switch + switch_width (1e-3 by default; steps with dt (jump of the rate) < switch_width
solve without trouble). Near vitrification the reaction becomes diffusion controlled: with a
``glass_transition`` the rate is multiplied by a factor that falls from 1 to 0 as the glass
transition temperature of the network, by DiBenedetto's equation, rises through the cure
temperature::

    Tg(alpha) = Tg0 + (Tg_inf - Tg0) lambda alpha / (1 - (1 - lambda) alpha)
    f_d = 1 / (1 + exp(C (Tg(alpha) - T - offset)))

(the form of Cole et al. with the critical conversion alpha_c(T) replaced by Tg(alpha) = T).
The heat released per unit volume is ``heat_release`` d(alpha)/dt, with ``heat_release`` the
heat of complete conversion per unit volume (a composite: rho_r (1 - V_f) H_r).
"""

from typing import Any, Literal

import ufl
from pydantic import Field, model_validator

from app.contracts import GAS_CONSTANT, Context, FieldSpec, Parameters, Property, Quantity, quantity

#: Number of rate constants k_i each law takes.
CONSTANTS = {"kamal_sourour": 2, "lee_loos_springer": 3}


class RateConstant(Parameters):
    """An Arrhenius rate constant k = A exp(-E / (R T))."""

    pre_exponential: float = quantity("1/s", ..., "A (may be negative: A2 of 3501-6)")
    activation_energy: float = quantity("J/mol", 0.0, "Activation energy E", ge=0)


class GlassTransition(Parameters):
    """DiBenedetto's Tg(alpha) and the diffusion-control factor it sets."""

    uncured: float = quantity("K", ..., "Tg0: glass transition of the uncured resin", gt=0)
    cured: float = quantity("K", ..., "Tg_inf: glass transition when fully cured", gt=0)
    ratio: float = Field(..., gt=0, le=1, description="lambda of DiBenedetto's equation")
    sharpness: float = quantity("1/K", ..., "C: how fast the rate falls as Tg passes T", gt=0)
    offset: float = quantity("K", 0.0, "Tg - T at which the rate is halved", difference=True)

    @model_validator(mode="after")
    def _rises(self) -> "GlassTransition":
        if self.cured <= self.uncured:
            raise ValueError(
                f"cured ({self.cured:g} K) must exceed uncured ({self.uncured:g} K): the "
                "glass transition rises with cure"
            )
        return self

    def temperature(self, alpha: Any) -> Any:
        """Tg(alpha) by DiBenedetto's equation."""
        lam = self.ratio
        return self.uncured + (self.cured - self.uncured) * lam * alpha / (1 - (1 - lam) * alpha)

    def factor(self, alpha: Any, T: Any) -> Any:
        """f_d in (0, 1): 1 far above Tg, 0 deep in the glass."""
        return 1 / (1 + ufl.exp(self.sharpness * (self.temperature(alpha) - T - self.offset)))


class Conversion(Parameters):
    """One degree of conversion (its name is its field's name) and its rate law."""

    law: Literal["kamal_sourour", "lee_loos_springer"] = Field(description="Rate law")
    rate_constants: list[RateConstant] = Field(
        description="k1, k2 (kamal_sourour) or k1, k2, k3 (lee_loos_springer)"
    )
    exponents: tuple[float, float] | None = Field(
        None, description="m, n of kamal_sourour (alpha^m (1 - alpha)^n)"
    )
    limit: float = Field(0.47, gt=0, description="B of lee_loos_springer")
    switch: float = Field(0.3, gt=0, lt=1, description="alpha_switch of lee_loos_springer")
    switch_width: float = Field(
        1e-3, gt=0, le=0.05, description="Conversion over which lee_loos_springer's jump is spread"
    )
    initial: float = Field(0.0, ge=0, lt=1, description="Degree of conversion at t = 0")
    heat_release: Property = quantity(
        "J/m^3", 0.0, "Heat of complete conversion per unit volume (rho_r (1 - V_f) H_r)", ge=0
    )
    glass_transition: GlassTransition | None = Field(
        None, description="Diffusion control near vitrification (DiBenedetto Tg)"
    )

    @model_validator(mode="after")
    def _constants_fit_law(self) -> "Conversion":
        needed, given = CONSTANTS[self.law], len(self.rate_constants)
        if given != needed:
            raise ValueError(
                f"law = '{self.law}' takes {needed} rate_constants, not {given}: give a list "
                "of { pre_exponential = ..., activation_energy = ... }"
            )
        return self

    @model_validator(mode="after")
    def _exponents_fit_law(self) -> "Conversion":
        if self.law == "kamal_sourour" and self.exponents is None:
            raise ValueError("law = 'kamal_sourour' needs exponents = [m, n]")
        if self.law != "kamal_sourour" and self.exponents is not None:
            raise ValueError(f"law = '{self.law}' does not use exponents")
        if self.exponents is not None and min(self.exponents) < 0:
            raise ValueError(f"exponents m, n must be >= 0, got {list(self.exponents)}")
        return self

    @model_validator(mode="after")
    def _switches_below_limit(self) -> "Conversion":
        if self.law == "lee_loos_springer" and self.switch >= self.limit:
            raise ValueError(
                f"switch ({self.switch:g}) must be below limit B ({self.limit:g}): the early "
                "branch (B - alpha) would turn negative before the late one takes over"
            )
        return self

    @model_validator(mode="after")
    def _starts(self) -> "Conversion":
        """An autocatalytic law without an uncatalysed term never leaves alpha = 0."""
        uncatalysed = self.rate_constants[0].pre_exponential
        if self.law == "kamal_sourour" and uncatalysed == 0 and self.initial == 0:
            raise ValueError(
                "with k1 = 0 (pre_exponential of the first rate constant) the autocatalytic "
                "term alone never starts from alpha = 0: give initial > 0 (e.g. 0.001)"
            )
        return self

    def rate(self, alpha: Any, T: Any) -> Any:
        """d(alpha)/dt as UFL of the conversion and the temperature."""
        k = [
            c.pre_exponential * ufl.exp(-c.activation_energy / (GAS_CONSTANT * T))
            for c in self.rate_constants
        ]
        # A Newton iterate may step outside [0, 1] (the converged value of a step does not):
        # there the powers are 0, chosen by a conditional so that their derivatives are never
        # evaluated at a non-positive base (0 * inf would poison the Jacobian).
        if self.law == "kamal_sourour":
            m, n = self.exponents
            reacted = ufl.conditional(ufl.gt(alpha, 0.0), alpha**m, 0.0)
            remaining = ufl.conditional(ufl.lt(alpha, 1.0), (1 - alpha) ** n, 0.0)
            rate = (k[0] + k[1] * reacted) * remaining
        else:
            early = (k[0] + k[1] * alpha) * (1 - alpha) * (self.limit - alpha)
            late = k[2] * ufl.max_value(1 - alpha, 0.0)
            # The blend over switch_width keeps the rate continuous: any step has a root.
            blend = ufl.max_value(ufl.min_value((alpha - self.switch) / self.switch_width, 1), 0)
            rate = early + blend * (late - early)
        if self.glass_transition is not None:
            rate = rate * self.glass_transition.factor(alpha, T)
        return rate


def conversion_fields(conversions: dict[str, Conversion], heat: str | None) -> list[FieldSpec]:
    """Each conversion (DG0, solved), its rate and, when named, the heat they release."""
    specs = []
    for name in conversions:
        specs.append(
            FieldSpec(
                name, "scalar", "dimensionless", ("DG", 0), description=name, bounds=(0.0, 1.0)
            )
        )
        specs.append(
            FieldSpec(name + "_rate", "scalar", "1/s", ("DG", 0), derived=True, description=name)
        )
    if conversions and heat is not None:
        what = "Heat released by the conversions"
        specs.append(FieldSpec(heat, "scalar", "W/m^3", ("DG", 0), derived=True, description=what))
    return specs


def released_heat(ctx: Context, conversions: dict[str, Conversion], rates: dict) -> Any:
    """Heat released per unit volume and time: the sum of heat_release d(alpha)/dt."""
    return sum(ctx.coefficient(c.heat_release) * rates[name] for name, c in conversions.items())


def conversion_quantities(
    ctx: Context, conversions: dict[str, Conversion], rates: dict, measure: Any
) -> dict[str, Quantity]:
    """Per conversion its extremes and mean; the heat all of them release."""
    quantities = {}
    for name in conversions:
        quantities[f"min_{name}"] = Quantity.minimum(name, "dimensionless", f"Lowest {name}")
        quantities[f"max_{name}"] = Quantity.maximum(name, "dimensionless", f"Highest {name}")
        quantities[f"mean_{name}"] = Quantity.integral(
            ctx.field(name) / ctx.size() * ctx.dx(), "dimensionless", f"Mean {name}"
        )
    if conversions:
        quantities["conversion_heat"] = Quantity.integral(
            released_heat(ctx, conversions, rates) * measure,
            ctx.per_depth("W"),
            "Heat released by the conversions",
        )
    return quantities


def clashing_conversion(conversions: dict, taken: set[str], reserved: set[str]) -> str | None:
    """The first conversion whose name (or whose rate's) is taken, reserved or no identifier."""
    for name in conversions:
        if not name.isidentifier() or name in reserved or {name, f"{name}_rate"} & taken:
            return name
    return None
