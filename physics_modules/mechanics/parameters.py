"""What a case writes under ``[physics.mechanics]``: boundary conditions and material laws."""

from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from app.contracts import (
    FieldName,
    FieldNames,
    Parameters,
    PerRegion,
    Property,
    RVESource,
    Value,
    one_of,
    quantity,
)


# Boundary conditions ----------------------------------------------------------------------------
class DisplacementBoundary(Parameters):
    """Prescribed displacement components; the others are free (symmetry: the normal one)."""

    type: Literal["displacement"]
    x: Property | None = quantity("m", None, "Displacement along x (r in axisymmetric)")
    y: Property | None = quantity("m", None, "Displacement along y (z in axisymmetric)")
    z: Property | None = quantity("m", None, "Displacement along z (3D only)")

    @model_validator(mode="after")
    def _some_component(self) -> "DisplacementBoundary":
        if self.x is None and self.y is None and self.z is None:
            raise ValueError('give at least one of x, y, z (or use type = "fixed")')
        return self

    def components(self) -> dict[int, Property]:
        values = (self.x, self.y, self.z)
        return {i: value for i, value in enumerate(values) if value is not None}


class FixedBoundary(Parameters):
    """Clamped: every displacement component is zero."""

    type: Literal["fixed"]


class TractionBoundary(Parameters):
    """Prescribed traction vector (force per area; nominal in large deformation)."""

    type: Literal["traction"]
    value: list[Property] = quantity("Pa", ..., "Traction components [t_x, t_y(, t_z)]")


class PressureBoundary(Parameters):
    """Normal pressure, pushing into the body (follows the surface in large deformation)."""

    type: Literal["pressure"]
    value: Property = quantity("Pa", ..., "Pressure p; the traction is -p n")


class SpringBoundary(Parameters):
    """Elastic foundation: the traction -k u (or -k (u.n) n, resisting normal motion only)."""

    type: Literal["spring"]
    stiffness: Property = quantity("Pa/m", ..., "Foundation stiffness k", ge=0)
    normal_only: bool = Field(False, description="Resist only the normal displacement")


Boundary = one_of(
    DisplacementBoundary, FixedBoundary, TractionBoundary, PressureBoundary, SpringBoundary
)


# Elastic materials ------------------------------------------------------------------------------
class Orthotropic(Parameters):
    """Orthotropic elastic constants; material axes 1, 2, 3 are the global x, y, z."""

    E: list[float] = quantity("Pa", ..., "Young's moduli [E1, E2, E3]", gt=0)
    nu: list[float] = quantity("dimensionless", ..., "Poisson ratios [nu12, nu13, nu23]")
    G: list[float] = quantity("Pa", ..., "Shear moduli [G12, G13, G23]", gt=0)

    @model_validator(mode="after")
    def _stable(self) -> "Orthotropic":
        if not len(self.E) == len(self.nu) == len(self.G) == 3:
            raise ValueError("E, nu and G need three values each")
        if np.linalg.eigvalsh(self.compliance()).min() <= 0:
            raise ValueError(
                "these constants give a compliance that is not positive definite (an unstable "
                "material); check that nu_ij^2 < E_i/E_j"
            )
        return self

    def compliance(self) -> np.ndarray:
        """The normal block of the compliance matrix (strain per stress)."""
        (e1, e2, e3), (n12, n13, n23) = self.E, self.nu
        return np.array(
            [
                [1 / e1, -n12 / e1, -n13 / e1],
                [-n12 / e1, 1 / e2, -n23 / e2],
                [-n13 / e1, -n23 / e2, 1 / e3],
            ]
        )


class Swelling(Parameters):
    """Volumetric eigenstrain of a concentration: eps* = Omega (c - c_ref)/3 per direction."""

    field: str = Field(description="Name of the concentration field (mol/m^3)")
    partial_molar_volume: Property = quantity("m^3/mol", ..., "Partial molar volume Omega")
    reference: Property = quantity("mol/m^3", 0.0, "Stress-free concentration c_ref")


class PorePressure(Parameters):
    """Terzaghi-Biot effective stress: the pore pressure p of a field carries part of the load,
    sigma = sigma' - alpha p I, sigma' the stress of the material law."""

    field: FieldName = Field("pressure", description="Name of the pore pressure field (Pa)")
    biot_coefficient: Property = quantity(
        "dimensionless", 1.0, "Biot coefficient alpha = 1 - K/K_s (at most 1)", ge=0
    )

    @field_validator("biot_coefficient")
    @classmethod
    def _at_most_one(cls, value: Property) -> Property:
        if isinstance(value, Value) and value.value > 1:
            raise ValueError(f"a Biot coefficient is at most 1, got {value.value:g}")
        return value


# Plasticity -------------------------------------------------------------------------------------
class Plasticity(Parameters):
    """Von Mises plasticity: isotropic hardening H p + Q (1 - exp(-b p)), kinematic H_kin.

    Associative J2 flow; linear and Voce isotropic hardening R(p) = H p + Q (1 - exp(-b p)) and
    linear kinematic (Prager) hardening: in uniaxial stress the back stress is H_kin times the
    plastic strain.
    """

    yield_stress: Property = quantity("Pa", ..., "Initial yield stress sigma_y", gt=0)
    isotropic_modulus: Property = quantity(
        "Pa", 0.0, "Linear isotropic hardening modulus H (R = H p)", ge=0
    )
    saturation_stress: Property = quantity(
        "Pa", 0.0, "Voce hardening: the saturation Q of R = Q (1 - exp(-b p))", ge=0
    )
    saturation_rate: Property = quantity(
        "dimensionless", 0.0, "Voce hardening: the rate b of R = Q (1 - exp(-b p))", ge=0
    )
    kinematic_modulus: Property = quantity(
        "Pa", 0.0, "Linear kinematic hardening modulus H_kin (back stress rate 2/3 H_kin)", ge=0
    )
    local_iterations: int = Field(
        6,
        ge=1,
        le=12,
        description="Newton iterations of the Voce return mapping (unrolled; each doubles the "
        "correct digits)",
    )


# Viscoelasticity --------------------------------------------------------------------------------
class PronyTerm(Parameters):
    """One Maxwell branch: a spring in series with a dashpot."""

    modulus: Property = quantity("Pa", ..., "Branch modulus (G_i in shear, K_i in bulk)", gt=0)
    relaxation_time: Property = quantity("s", ..., "tau_i at the reference temperature", gt=0)


class WLFShift(Parameters):
    """Williams-Landel-Ferry: log10 a_T = -C1 (T - T_ref) / (C2 + T - T_ref)."""

    type: Literal["wlf"]
    reference_temperature: Property = quantity("K", ..., "T_ref, where a_T = 1", ge=0)
    c1: Property = quantity("dimensionless", ..., "C1", gt=0)
    c2: Property = quantity("K", ..., "C2 (T - T_ref must stay above -C2)", gt=0, difference=True)


class ArrheniusShift(Parameters):
    """Arrhenius: ln a_T = E_a / R (1/T - 1/T_ref)."""

    type: Literal["arrhenius"]
    reference_temperature: Property = quantity("K", ..., "T_ref, where a_T = 1", gt=0)
    activation_energy: Property = quantity("J/mol", ..., "Activation energy E_a", gt=0)


Shift = one_of(WLFShift, ArrheniusShift)


class Viscoelasticity(Parameters):
    """Generalised Maxwell solid: Prony series in shear and bulk, time-temperature shift.

    ``youngs_modulus`` and ``poisson_ratio`` are the long-term (fully relaxed) spring; each
    branch adds a modulus that relaxes with its time. Temperature shifts every time by a_T(T)
    (time-temperature superposition; needs a ``temperature`` field).
    """

    shear: list[PronyTerm] = Field(default_factory=list, description="Shear branches G_i, tau_i")
    bulk: list[PronyTerm] = Field(default_factory=list, description="Bulk branches K_i, tau_i")
    shift: Shift | None = Field(None, description="Time-temperature shift (None: a_T = 1)")
    integrator: Literal["exponential", "scheme"] = Field(
        "exponential",
        description="exponential: exact for a strain linear in each step (O(1) memory); scheme: "
        "the case's time scheme (BDF1/BDF2) on each branch",
    )

    @model_validator(mode="after")
    def _some_branch(self) -> "Viscoelasticity":
        if not self.shear and not self.bulk:
            raise ValueError("give at least one shear or bulk branch (Prony term)")
        return self


# The plug-in's parameters -----------------------------------------------------------------------
class MechanicsParameters(Parameters):
    formulation: Literal["auto", "3d", "plane_strain", "plane_stress", "axisymmetric"] = Field(
        "auto", description="auto: 3d on 3D meshes, plane_strain on 2D meshes"
    )
    degree: int = Field(1, ge=1, le=2, description="Lagrange degree of the displacement")
    youngs_modulus: Property | None = quantity(
        "Pa", None, "Young's modulus E (the long-term one with viscoelasticity)", gt=0
    )
    poisson_ratio: Property | None = quantity("dimensionless", None, "Poisson ratio nu", gt=-1)
    constitutive: RVESource | None = Field(
        None,
        description="Stress from a nonlinear unit cell at every quadrature point (FE2): { rve "
        '= "name" } with an [rves.<name>] section, instead of youngs_modulus and poisson_ratio',
    )
    orthotropic: dict[str, Orthotropic] = Field(
        default_factory=dict, description="Orthotropic constants by region (override E, nu)"
    )
    body_force: list[Property] = quantity(
        "N/m^3", [], "Body force per volume [f_x, f_y(, f_z)] (empty: none)"
    )
    thermal_expansion: Property | None = quantity(
        "1/K", None, "Linear thermal expansion coefficient alpha (None: no thermal strain)"
    )
    reference_temperature: Property = quantity("K", 293.15, "Stress-free temperature", ge=0)
    swelling: Swelling | None = Field(None, description="Swelling by a concentration")
    eigenstrains: FieldNames = Field(
        [], description="Eigenstrain fields (dimensionless) others provide: scalar or tensor"
    )
    pore_pressure: PorePressure | None = Field(
        None, description="Effective stress of a porous solid: sigma = sigma' - alpha p I"
    )
    large_deformation: bool = Field(False, description="Neo-Hookean finite strain")
    stress_form: Literal["total", "incremental"] = Field(
        "total",
        description="total: sigma = C : (eps - eps*); incremental: sigma built by increments "
        "with the current C (stress carried when C changes stays locked in)",
    )
    plasticity: Plasticity | None = Field(None, description="Von Mises plasticity")
    viscoelasticity: Viscoelasticity | None = Field(
        None, description="Generalised Maxwell viscoelasticity (Prony series)"
    )
    boundaries: dict[str, Boundary] = Field(
        default_factory=dict,
        description="Condition per named boundary; boundaries not listed are traction free",
    )
    angles: dict[str, tuple[str, str]] = Field(
        default_factory=dict,
        description="Angle changes (rad) between two straight boundaries, name = [first, "
        "second]: the rotation about z of the second minus that of the first (spring-in)",
    )

    @field_validator("poisson_ratio")
    @classmethod
    def _below_half(cls, value: Property | None) -> Property | None:
        if value is None:
            return value
        values = value.values.values() if isinstance(value, PerRegion) else [value]
        for item in values:
            if isinstance(item, Value) and item.value >= 0.5:
                raise ValueError(f"must be < 0.5 (incompressible), got {item.value:g}")
        return value

    @property
    def memory(self) -> str | None:
        """The material law with internal variables, if any (its parameter name)."""
        laws = self._memories()
        return laws[0] if laws else None

    def _memories(self) -> list[str]:
        laws = [
            name
            for name in ("constitutive", "plasticity", "viscoelasticity")
            if getattr(self, name)
        ]
        return laws + ["stress_form"] * (self.stress_form == "incremental")

    @model_validator(mode="after")
    def _one_stiffness(self) -> "MechanicsParameters":
        given = [name for name in ("youngs_modulus", "poisson_ratio") if getattr(self, name)]
        if self.constitutive is not None and given:
            raise ValueError(
                f"{given[0]} and constitutive both give the stiffness: the cells of "
                f"constitutive have their own phases; remove {given[0]}"
            )
        missing = [name for name in ("youngs_modulus", "poisson_ratio") if not getattr(self, name)]
        if self.constitutive is None and missing:
            raise ValueError(
                f'give {" and ".join(missing)} (or constitutive = {{ rve = "name" }}, a '
                "stress from unit cells)"
            )
        return self

    @model_validator(mode="after")
    def _one_memory(self) -> "MechanicsParameters":
        laws = self._memories()
        if len(laws) > 1:
            raise ValueError(f"choose one of {' and '.join(laws)}: they do not combine")
        return self

    @model_validator(mode="after")
    def _memory_is_small_strain(self) -> "MechanicsParameters":
        if self.memory and self.large_deformation:
            raise ValueError(f"{self.memory} is small strain only; set large_deformation = false")
        return self

    @model_validator(mode="after")
    def _memory_has_a_3d_stress(self) -> "MechanicsParameters":
        if self.memory and self.formulation == "plane_stress":
            raise ValueError(
                f"{self.memory} needs the full 3D stress (3d, plane_strain or axisymmetric); in "
                "plane stress sigma_zz = 0 would make eps_zz an unknown of the material law"
            )
        return self

    @model_validator(mode="after")
    def _pore_pressure_in_small_strain(self) -> "MechanicsParameters":
        if self.pore_pressure is None:
            return self
        if self.large_deformation:
            raise ValueError(
                "pore_pressure is small strain only (sigma' - alpha p I is a Cauchy stress); "
                "set large_deformation = false"
            )
        if self.formulation == "plane_stress":
            raise ValueError(
                "pore_pressure needs the out-of-plane strain of plane strain, 3d or "
                "axisymmetric: in plane stress the pore pressure would change sigma_zz = 0"
            )
        return self

    @model_validator(mode="after")
    def _isotropic_memory(self) -> "MechanicsParameters":
        if self.orthotropic and self.memory in ("constitutive", "plasticity", "viscoelasticity"):
            raise ValueError(f"{self.memory} is isotropic; orthotropic regions are elastic only")
        return self
