"""Homogenisation: effective isotropic elastic moduli of a two-phase composite.

A matrix (phase m, e.g. wet collagen) holds inclusions (phase i, e.g. hydroxyapatite crystals)
of volume fraction f, a field another plug-in provides (a mineral volume fraction of
``reaction_kinetics``). Each phase is isotropic (bulk modulus K, shear modulus G); the scheme
the case chooses gives the composite's K(f) and G(f), and from them E = 9KG/(3K + G) and
nu = (3K - 2G)/(2(3K + G)), as fields that mechanics reads through its expressions
(``youngs_modulus = "youngs_modulus"``)::

    voigt                    K = (1 - f) K_m + f K_i                      (uniform strain)
    reuss                    1/K = (1 - f)/K_m + f/K_i                    (uniform stress)
    hashin_shtrikman_lower   K = [sum_r f_r/(K_r + 4/3 G-)]^-1 - 4/3 G-     (Walpole's form;
    hashin_shtrikman_upper   G = [sum_r f_r/(G_r + z)]^-1 - z,               - : smallest, + :
                             z = G*/6 (9 K* + 8 G*)/(K* + 2 G*)              largest moduli)
    mori_tanaka              K = ((1-f) K_m + f K_i a)/((1-f) + f a),  G likewise with b
    self_consistent          both phases embedded in the composite itself (a fixed point)

and G likewise (Voigt, Reuss). With well-ordered phases the Hashin-Shtrikman bounds are the
classical K = K_1 + f_2/[1/(K_2 - K_1) + 3 f_1/(3 K_1 + 4 G_1)] with phase 1 the softer (lower)
or the stiffer (upper) one; the lower bound equals Mori-Tanaka with spheres.

Mori-Tanaka and self-consistent inclusions are spheroids of aspect ratio a = c/a (``aspect_ratio``:
1 spheres, > 1 needles, < 1 platelets), randomly oriented. A dilute inclusion in a medium C_0
strains by A = [I + S : C_0^-1 : (C_i - C_0)]^-1, with S Eshelby's tensor of the spheroid in
C_0 (Tandon & Weng's closed forms); random orientation averages A to its isotropic projection
a J + b K (J = I x I/3, K = I_sym - J; a = J::A, b = K::A/5). Mori-Tanaka takes C_0 = C_m.
The self-consistent scheme takes C_0 = C_eff, with the inclusions as spheroids and the matrix
phase as spheres (a polycrystal of both), and solves
sum_r f_r (C_r - C_eff) : A_r = 0 by fixed-point iteration.

Mori-Tanaka is a closed form in f and enters the equations as one. The self-consistent moduli
are tabulated at ``table_points`` fractions when the case is set up and interpolated piecewise
linearly in f (a sum of hinges max(f - f_k, 0), so Newton sees their slope); every table entry
is checked to lie within the Hashin-Shtrikman bounds and the interpolant is clipped to them
(a chord may cross a bound the estimate runs along, near f = 1), and the run reports
``bound_violation``: the volume average of how far K and G fall outside the bounds, relative
to them (0 within; Voigt and Reuss, bounds themselves, lie outside the Hashin-Shtrikman ones).
f is clamped to [0, 1] (an iterate slightly outside the range gives the end values).

A case uses it as::

    [physics.stiffness]
    type = "homogenisation"
    fraction = "HA"                         # the inclusions' volume fraction field
    scheme = "self_consistent"
    aspect_ratio = 20                       # needles
    matrix = { youngs_modulus = "1.5 GPa", poisson_ratio = 0.28 }
    inclusions = { bulk_modulus = "82.6 GPa", shear_modulus = "44.9 GPa" }

    [physics.mechanics]
    youngs_modulus = "youngs_modulus"
    poisson_ratio = "poisson_ratio"
"""

from typing import Any, Literal

import numpy as np
import ufl
from pydantic import Field, model_validator

from app.contracts import (
    BadValue,
    Context,
    FieldName,
    FieldSpec,
    Parameters,
    Physics,
    Quantity,
    quantity,
)

SCHEMES = (
    "voigt",
    "reuss",
    "hashin_shtrikman_lower",
    "hashin_shtrikman_upper",
    "mori_tanaka",
    "self_consistent",
)
# Isotropic projectors in Mandel notation (11, 22, 33, sqrt2 23, sqrt2 13, sqrt2 12).
_J = np.zeros((6, 6))
_J[:3, :3] = 1.0 / 3.0
_K = np.eye(6) - _J
# Below this distance from 1 the spheroid formulas cancel badly; the sphere's tensor is used
# (S is smooth in the aspect ratio, so the error is of this order).
_SPHERE_TOLERANCE = 1e-4


# --------------------------------------------------------------------------------------------
# Isotropic elasticity and Eshelby's tensor (numpy)
# --------------------------------------------------------------------------------------------
def youngs(K: Any, G: Any) -> Any:
    """E of bulk and shear moduli (numbers, arrays or UFL)."""
    return 9 * K * G / (3 * K + G)


def poisson(K: Any, G: Any) -> Any:
    """nu of bulk and shear moduli (numbers, arrays or UFL)."""
    return (3 * K - 2 * G) / (2 * (3 * K + G))


def stiffness(K: float, G: float) -> np.ndarray:
    """The isotropic stiffness 3K J + 2G K (Mandel 6x6)."""
    return 3 * K * _J + 2 * G * _K


def isotropic_parts(tensor: np.ndarray) -> tuple[float, float]:
    """(a, b) of the isotropic projection a J + b K of a fourth-order tensor (Mandel 6x6): the
    average over random orientations."""
    return float(np.sum(_J * tensor)), float(np.sum(_K * tensor)) / 5.0


def eshelby(aspect: float, nu: float) -> np.ndarray:
    """Eshelby's tensor (Mandel 6x6) of a spheroid with symmetry axis 3 and aspect ratio
    ``aspect`` = a_3/a_1 in an isotropic medium of Poisson ratio ``nu`` (Tandon & Weng 1984)."""
    c = 1 - nu
    if abs(aspect - 1) < _SPHERE_TOLERANCE:
        normal, cross = (7 - 5 * nu) / (15 * c), (5 * nu - 1) / (15 * c)
        shear = (4 - 5 * nu) / (15 * c)
        S = np.zeros((6, 6))
        S[:3, :3] = cross
        S[[0, 1, 2], [0, 1, 2]] = normal
        S[[3, 4, 5], [3, 4, 5]] = 2 * shear
        return S
    a2 = aspect**2
    d = a2 - 1
    if aspect > 1:  # prolate: needles
        g = aspect / d**1.5 * (aspect * np.sqrt(d) - np.arccosh(aspect))
    else:  # oblate: platelets
        g = aspect / (-d) ** 1.5 * (np.arccos(aspect) - aspect * np.sqrt(-d))
    m = 1 - 2 * nu
    S = np.zeros((6, 6))
    S[0, 0] = S[1, 1] = 3 / (8 * c) * a2 / d + (m - 9 / (4 * d)) * g / (4 * c)
    S[2, 2] = (m + (3 * a2 - 1) / d - (m + 3 * a2 / d) * g) / (2 * c)
    S[0, 1] = S[1, 0] = (a2 / (2 * d) - (m + 3 / (4 * d)) * g) / (4 * c)
    S[0, 2] = S[1, 2] = (-a2 / d + (3 * a2 / d - m) * g / 2) / (2 * c)
    S[2, 0] = S[2, 1] = (-m - 1 / d + (m + 3 / (2 * d)) * g) / (2 * c)
    S[3, 3] = S[4, 4] = (m - (a2 + 1) / d - (m - 3 * (a2 + 1) / d) * g / 2) / (2 * c)  # 2 S_1313
    S[5, 5] = (a2 / (2 * d) + (m - 3 / (4 * d)) * g) / (2 * c)  # 2 S_1212
    return S


def concentration(aspect: float, medium: tuple, phase: tuple) -> tuple[float, float]:
    """Orientation-averaged dilute strain concentration (a, b) of a spheroid of ``phase``
    (K, G) in ``medium`` (K, G)."""
    C0, Ci = stiffness(*medium), stiffness(*phase)
    S = eshelby(aspect, poisson(*medium))
    A = np.linalg.inv(np.eye(6) + S @ np.linalg.solve(C0, Ci - C0))
    return isotropic_parts(A)


# --------------------------------------------------------------------------------------------
# Schemes: rational functions of f work on numbers, arrays and UFL alike
# --------------------------------------------------------------------------------------------
def voigt(f: Any, matrix: tuple, inclusions: tuple) -> tuple[Any, Any]:
    """Uniform strain: the volume average of the moduli (an upper bound)."""
    return tuple((1 - f) * m + f * i for m, i in zip(matrix, inclusions, strict=True))


def reuss(f: Any, matrix: tuple, inclusions: tuple) -> tuple[Any, Any]:
    """Uniform stress: the volume average of the compliances (a lower bound)."""
    return tuple(1 / ((1 - f) / m + f / i) for m, i in zip(matrix, inclusions, strict=True))


def hashin_shtrikman(f: Any, matrix: tuple, inclusions: tuple, upper: bool) -> tuple[Any, Any]:
    """Walpole's bounds (the classical ones for well-ordered phases)."""
    pick = max if upper else min
    K_ref, G_ref = pick(matrix[0], inclusions[0]), pick(matrix[1], inclusions[1])
    zeta = G_ref / 6 * (9 * K_ref + 8 * G_ref) / (K_ref + 2 * G_ref)
    shift = 4 * G_ref / 3
    (Km, Gm), (Ki, Gi) = matrix, inclusions
    K = 1 / ((1 - f) / (Km + shift) + f / (Ki + shift)) - shift
    G = 1 / ((1 - f) / (Gm + zeta) + f / (Gi + zeta)) - zeta
    return K, G


def mori_tanaka(f: Any, matrix: tuple, inclusions: tuple, aspect: float) -> tuple[Any, Any]:
    """Randomly oriented spheroids in the matrix, each strained as if alone in it."""
    a, b = concentration(aspect, matrix, inclusions)
    (Km, Gm), (Ki, Gi) = matrix, inclusions
    K = ((1 - f) * Km + f * Ki * a) / ((1 - f) + f * a)
    G = ((1 - f) * Gm + f * Gi * b) / ((1 - f) + f * b)
    return K, G


def self_consistent(
    f: float, matrix: tuple, inclusions: tuple, aspect: float, start: tuple | None = None
) -> tuple[float, float]:
    """The self-consistent moduli at one fraction, from ``start`` (default Mori-Tanaka).

    Raises:
        ValueError: The fixed point does not converge.
    """
    guess = start or mori_tanaka(f, matrix, inclusions, aspect)
    # Plain iteration converges in tens of sweeps for moderate contrasts; damping is the
    # fallback where it overshoots (a large phase contrast).
    for damping, sweeps in ((1.0, 200), (0.5, 2000)):
        K, G = guess
        for _ in range(sweeps):
            ai, bi = concentration(aspect, (K, G), inclusions)
            am, bm = concentration(1.0, (K, G), matrix)
            K_new = ((1 - f) * am * matrix[0] + f * ai * inclusions[0]) / ((1 - f) * am + f * ai)
            G_new = ((1 - f) * bm * matrix[1] + f * bi * inclusions[1]) / ((1 - f) * bm + f * bi)
            if abs(K_new - K) <= 1e-12 * K and abs(G_new - G) <= 1e-12 * G:
                return K_new, G_new
            K, G = K + damping * (K_new - K), G + damping * (G_new - G)
            if not (K > 0 and G > 0):
                break
    raise ValueError(f"the self-consistent moduli at f = {f:g} do not converge")


def moduli(f: Any, scheme: str, matrix: tuple, inclusions: tuple, aspect: float = 1.0) -> tuple:
    """(K, G) of a scheme at fraction(s) f (numbers or arrays; self-consistent: arrays by
    continuation from f = 0)."""
    match scheme:
        case "voigt":
            return voigt(f, matrix, inclusions)
        case "reuss":
            return reuss(f, matrix, inclusions)
        case "hashin_shtrikman_lower" | "hashin_shtrikman_upper":
            return hashin_shtrikman(f, matrix, inclusions, scheme.endswith("upper"))
        case "mori_tanaka":
            return mori_tanaka(f, matrix, inclusions, aspect)
    fractions = np.atleast_1d(np.asarray(f, dtype=float))
    values, previous = [], None
    for fraction in fractions:
        previous = self_consistent(fraction, matrix, inclusions, aspect, previous)
        values.append(previous)
    K, G = np.array(values).T
    return (K, G) if np.ndim(f) else (float(K[0]), float(G[0]))


def piecewise_linear(f: Any, nodes: np.ndarray, values: np.ndarray) -> Any:
    """The linear interpolant of (nodes, values) at f, as a sum of hinges (UFL)."""
    slopes = np.diff(values) / np.diff(nodes)
    result = values[0] + slopes[0] * (f - nodes[0])
    for node, change in zip(nodes[1:-1], np.diff(slopes), strict=True):
        result = result + change * ufl.max_value(f - node, 0.0)
    return result


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------
class Phase(Parameters):
    """An isotropic phase: E and nu, or K and G."""

    youngs_modulus: float | None = quantity("Pa", None, "Young's modulus E", gt=0)
    poisson_ratio: float | None = Field(None, gt=-1, lt=0.5, description="Poisson ratio nu")
    bulk_modulus: float | None = quantity("Pa", None, "Bulk modulus K", gt=0)
    shear_modulus: float | None = quantity("Pa", None, "Shear modulus G", gt=0)

    @model_validator(mode="after")
    def _one_pair(self) -> "Phase":
        engineering = (self.youngs_modulus, self.poisson_ratio)
        bulk_shear = (self.bulk_modulus, self.shear_modulus)
        complete = [None not in pair for pair in (engineering, bulk_shear)]
        given = [any(v is not None for v in pair) for pair in (engineering, bulk_shear)]
        if sum(complete) != 1 or sum(given) != 1:
            raise ValueError(
                "give youngs_modulus and poisson_ratio, or bulk_modulus and shear_modulus"
            )
        return self

    def moduli(self) -> tuple[float, float]:
        """(K, G)."""
        if self.bulk_modulus is not None:
            return self.bulk_modulus, self.shear_modulus
        E, nu = self.youngs_modulus, self.poisson_ratio
        return E / (3 * (1 - 2 * nu)), E / (2 * (1 + nu))


class FieldNames(Parameters):
    """Global names of the derived fields."""

    bulk_modulus: FieldName = Field("bulk_modulus", description="Effective K (Pa)")
    shear_modulus: FieldName = Field("shear_modulus", description="Effective G (Pa)")
    youngs_modulus: FieldName = Field("youngs_modulus", description="Effective E (Pa)")
    poisson_ratio: FieldName = Field("poisson_ratio", description="Effective nu")


class Homogenisation(Physics):
    """Effective elastic moduli of a matrix with inclusions, from their volume fraction field.

    Voigt, Reuss, Hashin-Shtrikman bounds, Mori-Tanaka and self-consistent estimates with
    spheroidal (sphere, needle, platelet) inclusions; requires the volume fraction field named
    by ``fraction``; provides K, G, E and nu (derived, cellwise) for mechanics' expressions.
    """

    name = "homogenisation"

    class Parameters(Parameters):
        fraction: FieldName = Field(description="Volume fraction field of the inclusions")
        scheme: Literal[SCHEMES] = Field("mori_tanaka", description=" | ".join(SCHEMES))
        aspect_ratio: float = Field(
            1.0, gt=0, description="Inclusion spheroid c/a: 1 spheres, >1 needles, <1 platelets"
        )
        matrix: Phase = Field(description="The matrix phase (E, nu or K, G)")
        inclusions: Phase = Field(description="The inclusion phase (E, nu or K, G)")
        table_points: int = Field(
            101, ge=3, le=2001, description="Fractions tabulated in [0, 1] (self_consistent)"
        )
        fields: FieldNames = Field(default_factory=FieldNames, description="Field names")

        @model_validator(mode="after")
        def _distinct_names(self) -> "Homogenisation.Parameters":
            names = list(self.fields.model_dump().values())
            if len(set(names)) < len(names) or self.fraction in names:
                raise ValueError("fields: name the four moduli and the fraction differently")
            return self

    @property
    def provides(self) -> list[FieldSpec]:
        names = self.params.fields
        specs = [
            (names.bulk_modulus, "Pa", "Effective bulk modulus K"),
            (names.shear_modulus, "Pa", "Effective shear modulus G"),
            (names.youngs_modulus, "Pa", "Effective Young's modulus E"),
            (names.poisson_ratio, "dimensionless", "Effective Poisson ratio nu"),
        ]
        return [
            FieldSpec(name, "scalar", units, ("DG", 0), derived=True, description=what)
            for name, units, what in specs
        ]

    @property
    def requires(self) -> list[FieldSpec]:
        what = "Volume fraction of the inclusions"
        return [FieldSpec(self.params.fraction, "scalar", "dimensionless", description=what)]

    # Moduli -----------------------------------------------------------------------------------
    def _phases(self) -> tuple[tuple[float, float], tuple[float, float]]:
        return self.params.matrix.moduli(), self.params.inclusions.moduli()

    def _fraction(self, ctx: Context) -> Any:
        return ufl.min_value(ufl.max_value(ctx.field(self.params.fraction), 0.0), 1.0)

    def table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fractions and the self-consistent (K, G) there, checked against the bounds."""
        p = self.params
        if not hasattr(self, "_table"):
            matrix, inclusions = self._phases()
            nodes = np.linspace(0.0, 1.0, p.table_points)
            try:
                K, G = moduli(nodes, p.scheme, matrix, inclusions, p.aspect_ratio)
            except ValueError as exc:
                raise BadValue(str(exc), token="self_consistent") from None
            self._check_bounds(nodes, K, G)
            self._table = nodes, K, G
        return self._table

    def _check_bounds(self, f: np.ndarray, K: np.ndarray, G: np.ndarray) -> None:
        matrix, inclusions = self._phases()
        lower = hashin_shtrikman(f, matrix, inclusions, upper=False)
        upper = hashin_shtrikman(f, matrix, inclusions, upper=True)
        for name, value, low, high in zip("KG", (K, G), lower, upper, strict=True):
            slack = 1e-9 * high
            outside = (value < low - slack) | (value > high + slack)
            if outside.any():
                at = f[np.argmax(outside)]
                raise BadValue(
                    f"the {self.params.scheme} {name} leaves the Hashin-Shtrikman bounds at "
                    f"f = {at:.4g}",
                    token=self.params.scheme,
                    fix="check the phase moduli and the aspect ratio",
                )

    def _moduli(self, ctx: Context) -> tuple[Any, Any]:
        p, f = self.params, self._fraction(ctx)
        matrix, inclusions = self._phases()
        if p.scheme != "self_consistent":
            if p.scheme == "mori_tanaka":  # the same check as the table's, at its fractions
                nodes = np.linspace(0.0, 1.0, p.table_points)
                self._check_bounds(nodes, *mori_tanaka(nodes, matrix, inclusions, p.aspect_ratio))
            return moduli(f, p.scheme, matrix, inclusions, p.aspect_ratio)
        # Between table points the chord may cross a bound the estimate runs along (near
        # f = 1, by 3e-6 of K with 101 points): clipped to the bounds, it lies within them.
        nodes, K, G = self.table()
        lower = hashin_shtrikman(f, matrix, inclusions, upper=False)
        upper = hashin_shtrikman(f, matrix, inclusions, upper=True)
        return tuple(
            ufl.min_value(ufl.max_value(piecewise_linear(f, nodes, values), low), high)
            for values, low, high in zip((K, G), lower, upper, strict=True)
        )

    def derived(self, ctx: Context) -> dict[str, Any]:
        K, G = self._moduli(ctx)
        names = self.params.fields
        return {
            names.bulk_modulus: K,
            names.shear_modulus: G,
            names.youngs_modulus: youngs(K, G),
            names.poisson_ratio: poisson(K, G),
        }

    def quantities(self, ctx: Context) -> dict[str, Quantity]:
        """The bound violation (volume average of the relative distance of K and G outside the
        Hashin-Shtrikman bounds: 0 within them) and the extremes of E."""
        f, (K, G) = self._fraction(ctx), self._moduli(ctx)
        matrix, inclusions = self._phases()
        lower = hashin_shtrikman(f, matrix, inclusions, upper=False)
        upper = hashin_shtrikman(f, matrix, inclusions, upper=True)
        outside = sum(
            ufl.max_value(low - value, 0.0) / low + ufl.max_value(value - high, 0.0) / high
            for value, low, high in zip((K, G), lower, upper, strict=True)
        )
        E = self.params.fields.youngs_modulus
        return {
            "bound_violation": Quantity.ratio(
                outside * ctx.dx(),
                ctx.coefficient(1.0) * ctx.dx(),
                "dimensionless",
                "Mean relative distance of K and G outside the Hashin-Shtrikman bounds",
            ),
            "max_youngs_modulus": Quantity.maximum(E, "Pa", "Largest effective E"),
            "min_youngs_modulus": Quantity.minimum(E, "Pa", "Smallest effective E"),
        }
