"""The ``[rves.<name>]`` section of a case file: a nonlinear unit cell solved at every quadrature
point of a macro problem (FE2), read by ``constitutive = { rve = "name" }`` of mechanics.

::

    [rves.matrix_cell]
    microstructure = "../meshes/rve_inclusion.py"   # gmsh script, or "homogeneous"
    parameters = { shape = "circle", volume_fraction = 0.2 }   # arguments of its build()
    mesh_size = 0.1                                  # cell edge 1
    ranks_per_rve = 1                                # ranks of the groups that solve cells
    phases.inclusion = { youngs_modulus = "400 GPa", poisson_ratio = 0.2 }

    [rves.matrix_cell.phases.matrix]
    youngs_modulus = "70 GPa"
    poisson_ratio = 0.33
    yield_stress = "80 MPa"                          # a von Mises phase
    isotropic_modulus = "2 GPa"

A phase with ``yield_stress`` is von Mises plastic (linear and Voce isotropic, linear kinematic
hardening: :class:`~app.multiscale.plastic_cell.J2Phase`), else elastic. A ``homogeneous`` cell
is one phase, ``matrix``, on a periodic grid of the macro mesh's dimension: the material point
itself, for checking FE2 against the plug-in's own law.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator, model_validator

from app.contracts import Parameters
from app.multiscale.spec import ELASTIC_PAIRS, elastic_phase, si_value

if TYPE_CHECKING:
    from app.multiscale.plastic_cell import Elastic, J2Phase

HOMOGENEOUS = "homogeneous"
HARDENING = ("isotropic_modulus", "kinematic_modulus", "saturation_stress", "saturation_rate")


class PhaseSpec(Parameters):
    """One phase of a cell: two isotropic elastic constants, and a yield stress if plastic."""

    youngs_modulus: float | str | None = Field(None, description="E (Pa)")
    poisson_ratio: float | str | None = Field(None, description="nu")
    bulk_modulus: float | str | None = Field(None, description="K (Pa), with shear_modulus")
    shear_modulus: float | str | None = Field(None, description="G (Pa), with bulk_modulus")
    yield_stress: float | str | None = Field(None, description="Von Mises yield stress (Pa)")
    isotropic_modulus: float | str = Field(0.0, description="Linear isotropic hardening H (Pa)")
    kinematic_modulus: float | str = Field(0.0, description="Linear kinematic hardening (Pa)")
    saturation_stress: float | str = Field(0.0, description="Voce saturation Q (Pa)")
    saturation_rate: float = Field(0.0, ge=0, description="Voce rate b")

    @field_validator(
        "youngs_modulus",
        "bulk_modulus",
        "shear_modulus",
        "yield_stress",
        "isotropic_modulus",
        "kinematic_modulus",
        "saturation_stress",
    )
    @classmethod
    def _pascal(cls, raw: Any) -> float | None:
        return None if raw is None else si_value(raw, "Pa")

    @field_validator("poisson_ratio")
    @classmethod
    def _ratio(cls, raw: Any) -> float | None:
        return None if raw is None else si_value(raw, "dimensionless")

    @model_validator(mode="after")
    def _complete(self) -> PhaseSpec:
        elastic_phase(self._elastic())  # exactly one pair, in range
        hardening = [key for key in HARDENING if getattr(self, key)]
        if hardening and self.yield_stress is None:
            raise ValueError(
                f"{hardening[0]} is a plastic phase's hardening, but the phase has no "
                "yield_stress: give yield_stress (a von Mises phase) or remove the hardening"
            )
        if self.yield_stress is not None and self.yield_stress <= 0:
            raise ValueError(f"yield_stress must be > 0, got {self.yield_stress:g} Pa")
        for key in HARDENING:
            if getattr(self, key) < 0:
                raise ValueError(f"{key} must be >= 0, got {getattr(self, key):g}")
        return self

    def _elastic(self) -> dict[str, float]:
        """The elastic constants given, zeros included: a Poisson ratio of 0 (cork, foams)
        left out made a complete pair look incomplete."""
        return {
            key: getattr(self, key)
            for pair in ELASTIC_PAIRS
            for key in pair
            if getattr(self, key) is not None
        }

    def law(self) -> Elastic | J2Phase:
        """(K, G) of an elastic phase, or the :class:`J2Phase`."""
        # the cell solvers load only when a run uses them, not with every case file
        from app.multiscale.plastic_cell import J2Phase

        bulk, shear = elastic_phase(self._elastic())
        if self.yield_stress is None:
            return bulk, shear
        return J2Phase(
            bulk, shear, self.yield_stress, *(float(getattr(self, key)) for key in HARDENING)
        )


class RVESpec(Parameters):
    """A nonlinear unit cell per macro quadrature point (see the module)."""

    microstructure: str = Field(
        description="gmsh .py script with build(model, ...) meshing a periodic unit cell with "
        'regions "matrix" (and "inclusion"), relative to the case file; or "homogeneous"'
    )
    parameters: dict[str, float | int | str | bool] = Field(
        default_factory=dict, description="Arguments of the script's build()"
    )
    phases: dict[str, PhaseSpec] = Field(description="The material of each region of the cell")
    mesh_size: float = Field(0.1, gt=0, le=0.5, description="Cell size (cell edge = 1)")
    degree: int = Field(1, ge=1, le=2, description="Lagrange degree of the cell's fluctuation")
    tolerance: float = Field(
        1e-10, gt=0, lt=1e-3, description="Relative residual at which a cell's Newton stops"
    )
    max_iterations: int = Field(25, ge=1, le=200, description="Newton iterations of a cell")
    ranks_per_rve: int = Field(
        1, ge=1, description="MPI ranks of each group that solves cells (points share out)"
    )

    @field_validator("phases")
    @classmethod
    def _known_regions(cls, phases: dict[str, PhaseSpec]) -> dict[str, PhaseSpec]:
        unknown = sorted(set(phases) - {"matrix", "inclusion"})
        if unknown:
            raise ValueError(f"a cell's regions are 'matrix' and 'inclusion', got {unknown[0]!r}")
        if "matrix" not in phases:
            raise ValueError("give the matrix phase (phases.matrix)")
        return phases

    @model_validator(mode="after")
    def _homogeneous_has_one_phase(self) -> RVESpec:
        if self.microstructure == HOMOGENEOUS and set(self.phases) != {"matrix"}:
            raise ValueError("a homogeneous cell has one phase: give phases.matrix only")
        if self.microstructure == HOMOGENEOUS and self.parameters:
            raise ValueError("a homogeneous cell takes no parameters")
        return self

    def laws(self) -> dict[str, Elastic | J2Phase]:
        return {region: phase.law() for region, phase in self.phases.items()}
