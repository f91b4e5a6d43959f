"""The mechanics plug-in: kinematics, loads, supports and outputs around the material laws."""

import math
from typing import Any

import numpy as np
import ufl

from app.contracts import (
    QUADRATURE,
    BadValue,
    Context,
    Dirichlet,
    FieldSpec,
    InternalVariable,
    Modes,
    PerRegion,
    Physics,
    Property,
    Quantity,
    Value,
)

from .elastic import Law, in_3d, isotropic, linear_stress, neo_hookean, von_mises
from .homogenised import CellStress
from .incremental import IncrementalElasticity
from .parameters import (
    DisplacementBoundary,
    FixedBoundary,
    MechanicsParameters,
    PressureBoundary,
    SpringBoundary,
    TractionBoundary,
)
from .plasticity import J2Plasticity
from .viscoelasticity import GeneralisedMaxwell

AXES = "xyz"


class Mechanics(Physics):
    """Quasi-static solids: elasticity, Neo-Hookean, von Mises plasticity, viscoelasticity.

    Small-strain elasticity (isotropic or orthotropic by region, with eigenstrains; total or
    incremental form), Neo-Hookean large deformation, von Mises plasticity and generalised
    Maxwell viscoelasticity.

    Provides ``displacement`` (m) and derived ``strain``, ``stress``, ``von_mises``,
    ``strain_energy_density`` and the out-of-plane stress, and the internal variables of its
    material law; requires ``temperature`` (K) with thermal expansion or a time-temperature
    shift, the swelling concentration (mol/m^3) with swelling and the pore pressure (Pa) with
    ``pore_pressure``.
    """

    name = "mechanics"
    spd = True
    dimensions = (2, 3)  # plane strain/stress, axisymmetric, 3D: no 1D formulation
    Parameters = MechanicsParameters

    def __init__(
        self,
        params: MechanicsParameters,
        instance: str | None = None,
        domain: str | None = None,
        regions: tuple[str, ...] | None = None,
    ):
        super().__init__(params, instance, domain, regions)
        self.memory = self._memory_law()

    def _memory_law(
        self,
    ) -> J2Plasticity | GeneralisedMaxwell | IncrementalElasticity | CellStress | None:
        """The material law with a history the case chose (None: elastic)."""
        p = self.params
        if p.constitutive is not None:
            return CellStress(p.constitutive)
        if p.plasticity is not None:
            return J2Plasticity(p.plasticity, self._lame)
        if p.viscoelasticity is not None:
            return GeneralisedMaxwell(p.viscoelasticity, self._lame)
        if p.stress_form == "incremental":
            return IncrementalElasticity(self._stiffness)
        return None

    @property
    def _out_of_plane(self) -> str:
        """Name of the field of the third normal stress (sigma_zz, or the hoop stress)."""
        return "hoop_stress" if self.params.formulation == "axisymmetric" else "out_of_plane_stress"

    @property
    def provides(self) -> list[FieldSpec]:
        p = self.params
        strain_space = ("DG", p.degree - 1)
        # With memory the stress comes from values at quadrature points, and lives there too.
        space = QUADRATURE if self.memory else strain_space
        specs = [
            ("stress", "tensor", "Pa", "Stress (Cauchy in large deformation)"),
            ("von_mises", "scalar", "Pa", "Von Mises stress of the full 3D stress"),
            ("strain_energy_density", "scalar", "J/m^3", "Stored elastic energy per volume"),
            (self._out_of_plane, "scalar", "Pa", "sigma_theta_theta (axisymmetric), else sigma_zz"),
        ]
        return [
            FieldSpec("displacement", "vector", "m", ("Lagrange", p.degree), description="u"),
            FieldSpec(
                "strain",
                "tensor",
                "dimensionless",
                strain_space,
                derived=True,
                description="Strain (Green-Lagrange in large deformation)",
            ),
            *(FieldSpec(n, r, u, space, derived=True, description=d) for n, r, u, d in specs),
        ]

    @property
    def requires(self) -> list[FieldSpec]:
        p = self.params
        fields = []
        shifted = p.viscoelasticity is not None and p.viscoelasticity.shift is not None
        if p.thermal_expansion is not None or shifted:
            fields.append(
                FieldSpec("temperature", "scalar", "K", description="Thermal strain, a_T(T)")
            )
        if p.swelling is not None:
            fields.append(
                FieldSpec(p.swelling.field, "scalar", "mol/m^3", description="Swelling strain")
            )
        if p.pore_pressure is not None:
            fields.append(
                FieldSpec(p.pore_pressure.field, "scalar", "Pa", description="Pore pressure")
            )
        return fields + [
            FieldSpec(name, ("scalar", "tensor"), "dimensionless", description="Eigenstrain")
            for name in p.eigenstrains
        ]

    @property
    def internal_variables(self) -> list[InternalVariable]:
        return self.memory.internal_variables if self.memory else []

    # Kinematics -----------------------------------------------------------------------------
    def _formulation(self, ctx: Context) -> str:
        formulation = self.params.formulation
        if formulation == "auto":
            formulation = "3d" if ctx.gdim == 3 else "plane_strain"
        if (formulation == "3d") != (ctx.gdim == 3):
            raise BadValue(
                f"formulation '{formulation}' does not fit a {ctx.gdim}D mesh",
                token=formulation,
                fix="use 3d on 3D meshes; plane_strain, plane_stress or axisymmetric on 2D ones",
            )
        if self.params.large_deformation and formulation == "plane_stress":
            raise BadValue(
                "large deformation is not available in plane stress",
                token="large_deformation",
                fix="use plane_strain, axisymmetric or a 3D mesh",
            )
        return formulation

    def _weight(self, ctx: Context) -> Any:
        """Integration weight: 2 pi r in axisymmetric (the full revolution), else 1."""
        return 2 * math.pi * ctx.x[0] if self._formulation(ctx) == "axisymmetric" else 1

    def _gradient(self, ctx: Context, w: Any) -> Any:
        """The 3x3 gradient of a displacement-like field, hoop term included."""
        g, hoop = ufl.grad(w), 0
        if self._formulation(ctx) == "axisymmetric":
            # On the axis (derived fields are evaluated at vertices) u_r = 0, and u_r/r tends
            # to du_r/dr.
            # FFCx cannot factor a conditional between two test-function terms: weight them.
            r, tiny = ctx.x[0], 1e-12 * math.sqrt(ctx.size())
            off_axis = ufl.conditional(ufl.gt(r, tiny), 1, 0)
            hoop = off_axis * w[0] / ufl.max_value(r, tiny) + (1 - off_axis) * g[0, 0]
        return in_3d(g, hoop)

    def _eigenstrain(self, ctx: Context) -> Any:
        """The eigenstrain (3x3): thermal expansion, swelling and every provided eigenstrain
        field added up; a scalar is isotropic, a tensor of a 2D mesh has no eps*_zz."""
        p = self.params
        parts = [ctx.field(name) for name in p.eigenstrains]
        if p.thermal_expansion is not None:
            dT = ctx.field("temperature") - ctx.coefficient(p.reference_temperature)
            parts.append(ctx.coefficient(p.thermal_expansion) * dT)
        if p.swelling is not None:
            dc = ctx.field(p.swelling.field) - ctx.coefficient(p.swelling.reference)
            parts.append(ctx.coefficient(p.swelling.partial_molar_volume) * dc / 3)
        identity = ufl.Identity(3)
        return sum(
            (in_3d(ufl.sym(e)) if e.ufl_shape else e * identity for e in parts), ufl.zero(3, 3)
        )

    def _mechanical_strain(self, ctx: Context) -> Any:
        """The strain the material feels: sym(grad u) - eps* (3x3)."""
        if self.params.constitutive is not None:
            self._check_cells(ctx)
        H = self._gradient(ctx, ctx.field("displacement"))
        return ufl.sym(H) - self._eigenstrain(ctx)

    def _check_cells(self, ctx: Context) -> None:
        """Unit cells take the strain of plane strain (2D cells) or of 3D."""
        formulation = self._formulation(ctx)
        if formulation not in ("plane_strain", "3d"):
            raise BadValue(
                f"constitutive cells take plane strain or 3D strains, not {formulation} (its "
                "hoop strain is out of the cell's plane)",
                token="formulation",
                fix='use formulation = "plane_strain" on a 2D mesh, or a 3D mesh',
            )
        p = self.params
        if ctx.gdim == 2 and (p.thermal_expansion or p.swelling or p.eigenstrains):
            raise BadValue(
                "an eigenstrain has an out-of-plane part eps*_zz, which a 2D cell in plane "
                "strain cannot take",
                token="constitutive",
                fix="remove thermal_expansion, swelling and eigenstrains, or use a 3D mesh",
            )

    # Constitutive laws ----------------------------------------------------------------------
    def _lame(self, ctx: Context) -> tuple[Any, Any]:
        E = ctx.coefficient(self.params.youngs_modulus)
        nu = ctx.coefficient(self.params.poisson_ratio)
        return E * nu / ((1 + nu) * (1 - 2 * nu)), E / (2 * (1 + nu))

    def _parts(self, ctx: Context) -> list[tuple[str | None, Law]]:
        """(region, law) pairs covering the domain once; region None is the whole domain."""
        uniform = isotropic(*self._lame(ctx))
        orthotropic = self.params.orthotropic
        if not orthotropic:
            return [(None, uniform)]
        for region in orthotropic:
            if region not in ctx.regions:
                raise BadValue(
                    f"unknown region '{region}'; regions here: {', '.join(ctx.regions)}",
                    token=region,
                )
        if self.params.large_deformation:
            raise BadValue("orthotropic regions are linear elastic only", token="large_deformation")
        parts = []
        for region in ctx.regions:
            law = uniform
            if region in orthotropic:
                constants = orthotropic[region]
                law = (np.linalg.inv(constants.compliance()).tolist(), list(constants.G))
            parts.append((region, law))
        return parts

    def _indicator(self, ctx: Context, region: str | None) -> Any:
        """1 on a region and 0 elsewhere (cellwise), to assemble fields from per-region laws."""
        if region is None:
            return 1
        return ctx.coefficient(PerRegion({r: Value(float(r == region)) for r in ctx.regions}))

    def _stiffness(self, ctx: Context, strain: Any) -> Any:
        """C : strain (3x3) with each region's law (the increments of the incremental form)."""
        return sum(
            self._indicator(ctx, region) * linear_stress(law, strain)[0]
            for region, law in self._parts(ctx)
        )

    def _response(self, ctx: Context, law: Law) -> dict[str, Any]:
        """Stress measures, strain and energy density (3x3 tensors) of the current displacement
        for an elastic law: ``piola`` (the stress of the weak form), ``cauchy``, ``strain`` and
        ``energy``."""
        H = self._gradient(ctx, ctx.field("displacement"))
        if self.params.large_deformation:
            P, energy = neo_hookean(*self._lame(ctx), H, self._eigenstrain(ctx))
            F = ufl.Identity(3) + H
            strain = (F.T * F - ufl.Identity(3)) / 2
            return {"piola": P, "cauchy": P * F.T / ufl.det(F), "strain": strain, "energy": energy}
        plane_stress = self._formulation(ctx) == "plane_stress"
        sigma, elastic = linear_stress(law, ufl.sym(H) - self._eigenstrain(ctx), plane_stress)
        energy = ufl.inner(sigma, elastic) / 2
        return {"piola": sigma, "cauchy": sigma, "strain": ufl.sym(H), "energy": energy}

    def _pore_stress(self, ctx: Context) -> Any:
        """-alpha p I (3x3), the pore pressure's share of the total stress; zero without one."""
        pore = self.params.pore_pressure
        if pore is None:
            return ufl.zero(3, 3)
        alpha = ctx.coefficient(pore.biot_coefficient)
        return -alpha * ctx.field(pore.field) * ufl.Identity(3)

    # Loads ----------------------------------------------------------------------------------
    def _vector(self, ctx: Context, values: list[Property], what: str, token: str) -> Any:
        if len(values) != ctx.gdim:
            raise BadValue(
                f"{what} needs {ctx.gdim} components on a {ctx.gdim}D mesh, got {len(values)}",
                value=values[0] if values else None,
                token=token,
            )
        return ufl.as_vector([ctx.coefficient(value) for value in values])

    def _loads(self, ctx: Context) -> dict[str, Any]:
        """Traction on each natural boundary with a condition, per reference area."""
        u, n = ctx.field("displacement"), ctx.n
        loads = {}
        for name, bc in self.params.boundaries.items():
            match bc:
                case TractionBoundary():
                    loads[name] = self._vector(ctx, bc.value, f"the traction on '{name}'", name)
                case PressureBoundary():
                    p = ctx.coefficient(bc.value)
                    if self.params.large_deformation:  # J F^-T N: the deformed area vector
                        F = ufl.Identity(3) + self._gradient(ctx, u)
                        N = ufl.as_vector([n[i] if i < ctx.gdim else 0 for i in range(3)])
                        area = ufl.det(F) * ufl.inv(F).T * N
                        loads[name] = -p * ufl.as_vector([area[i] for i in range(ctx.gdim)])
                    else:
                        loads[name] = -p * n
                case SpringBoundary():
                    k = ctx.coefficient(bc.stiffness)
                    loads[name] = -k * (ufl.dot(u, n) * n if bc.normal_only else u)
        return loads

    # The plug-in interface ------------------------------------------------------------------
    def residual(self, ctx: Context) -> ufl.Form:
        v, w = ctx.test("displacement"), self._weight(ctx)
        grad_v = self._gradient(ctx, v)
        if self.memory:
            stress = self.memory.stress(ctx, self._mechanical_strain(ctx))
            form = ufl.inner(stress, grad_v) * w * ctx.dx()
        else:
            form = sum(
                ufl.inner(self._response(ctx, law)["piola"], grad_v) * w * ctx.dx(region)
                for region, law in self._parts(ctx)
            )
        if self.params.pore_pressure is not None:
            form += ufl.inner(self._pore_stress(ctx), grad_v) * w * ctx.dx()
        if self.params.body_force:
            f = self._vector(ctx, self.params.body_force, "body_force", "body_force")
            form -= ufl.inner(f, v) * w * ctx.dx()
        for name, traction in self._loads(ctx).items():
            form -= ufl.inner(traction, v) * w * ctx.ds(name)
        return form

    def update(self, ctx: Context) -> dict[str, Any]:
        return self.memory.update(ctx, self._mechanical_strain(ctx)) if self.memory else {}

    def dirichlet(self, ctx: Context) -> list[Dirichlet]:
        conditions = []
        for name, components in self._supports(ctx).items():
            if components is None:
                conditions.append(Dirichlet("displacement", name, 0.0))
                continue
            for i, value in components.items():
                conditions.append(Dirichlet("displacement", name, ctx.coefficient(value), i))
        return conditions

    def _supports(self, ctx: Context) -> dict[str, dict[int, Property] | None]:
        """Boundaries with prescribed displacements: their fixed components (None: all)."""
        supports = {}
        for name, bc in self.params.boundaries.items():
            if isinstance(bc, FixedBoundary):
                supports[name] = None
            elif isinstance(bc, DisplacementBoundary):
                components = bc.components()
                if max(components) >= ctx.gdim:
                    raise BadValue(
                        f"'{name}' fixes z, but the mesh is {ctx.gdim}D",
                        value=components[max(components)],
                    )
                supports[name] = components
        return supports

    def _states(self, ctx: Context) -> list[tuple[Any, dict[str, Any]]]:
        """(indicator, response) per region: strain, Cauchy stress and energy density (3x3);
        with memory one state, from the internal variables after the latest solve."""
        if self.memory:
            strain = self._mechanical_strain(ctx)
            stress, energy = self.memory.latest(ctx, strain)
            H = self._gradient(ctx, ctx.field("displacement"))
            return [(1, {"strain": ufl.sym(H), "cauchy": stress, "energy": energy})]
        return [
            (self._indicator(ctx, region), self._response(ctx, law))
            for region, law in self._parts(ctx)
        ]

    def derived(self, ctx: Context) -> dict[str, Any]:
        d = ctx.gdim
        fields = {key: 0 for key in ("strain", "stress", "von_mises", "energy", "out_of_plane")}
        for indicator, response in self._states(ctx):
            sigma = response["cauchy"]
            fields["strain"] += indicator * response["strain"]
            fields["stress"] += indicator * sigma
            fields["von_mises"] += indicator * von_mises(sigma)
            fields["energy"] += indicator * response["energy"]
            fields["out_of_plane"] += indicator * sigma[2, 2]
        # The pore pressure is part of the total stress (isotropic: no von Mises stress).
        fields["stress"] += self._pore_stress(ctx)
        fields["out_of_plane"] += self._pore_stress(ctx)[2, 2]

        def block(tensor: Any) -> Any:  # the in-plane part of a 3x3 tensor
            return ufl.as_matrix([[tensor[i, j] for j in range(d)] for i in range(d)])

        return {
            "strain": block(fields["strain"]),
            "stress": block(fields["stress"]),
            "von_mises": fields["von_mises"],
            "strain_energy_density": fields["energy"],
            self._out_of_plane: fields["out_of_plane"],
        }

    def quantities(self, ctx: Context) -> dict[str, Quantity]:
        """Support reactions, applied loads and mean displacements per boundary component,
        the angle changes the case asks for, strain energy, the largest von Mises stress, and
        what the material law reports.

        ``reaction_<boundary>_<axis>`` is the force a support exerts on the body (from the
        discrete residual, so it balances the loads to round-off); ``load_<boundary>_<axis>`` the
        resultant of a traction, pressure or spring; ``displacement_<boundary>_<axis>`` the mean
        displacement of a boundary with a condition (along its generating line in
        axisymmetric), so load-displacement curves read off the table. Per unit depth in plane
        formulations, for the full revolution in axisymmetric.
        """
        axisymmetric = self._formulation(ctx) == "axisymmetric"
        force = "N" if axisymmetric else ctx.per_depth("N")
        units = {
            "energy": "J" if axisymmetric else ctx.per_depth("J"),
            "volume": "m^3" if axisymmetric else ctx.per_depth("m^3"),
        }
        w, quantities = self._weight(ctx), {}
        for name, components in self._supports(ctx).items():
            for i in range(ctx.gdim) if components is None else components:
                quantities[f"reaction_{name}_{AXES[i]}"] = Quantity.reaction(
                    "displacement", name, force, f"Support force on '{name}'", component=i
                )
        for name, traction in self._loads(ctx).items():
            for i in range(ctx.gdim):
                quantities[f"load_{name}_{AXES[i]}"] = Quantity.integral(
                    traction[i] * w * ctx.ds(name), force, f"Load applied on '{name}'"
                )
        u = ctx.field("displacement")
        # A point or edge set has no area to average over (a probe reads the displacement there).
        for name in (name for name in self.params.boundaries if name in ctx.boundaries):
            for i in range(ctx.gdim):
                quantities[f"displacement_{name}_{AXES[i]}"] = Quantity.integral(
                    u[i] / ctx.size(name) * ctx.ds(name), "m", f"Mean displacement of '{name}'"
                )
        for name, (first, second) in self.params.angles.items():
            opening = self._rotation(ctx, second) - self._rotation(ctx, first)
            quantities[f"angle_{name}"] = Quantity.integral(
                opening, "rad", f"Rotation of '{second}' minus that of '{first}'"
            )
        if self.memory:
            quantities |= self.memory.quantities(ctx, w, units)
            stored = self._states(ctx)[0][1]["energy"] * w * ctx.dx()
        else:
            stored = sum(
                self._response(ctx, law)["energy"] * w * ctx.dx(region)
                for region, law in self._parts(ctx)
            )
        return quantities | {
            "strain_energy": Quantity.integral(stored, units["energy"], "Stored elastic energy"),
            "max_von_mises": Quantity.maximum("von_mises", "Pa", "Largest von Mises stress"),
        }

    def _rotation(self, ctx: Context, boundary: str) -> ufl.Form:
        """Mean rotation about z of a straight boundary whose normal lies in the x-y plane, as
        a form: the slope of the normal displacement along it, -n . (grad u) tau, tau = z x n
        (a rigid rotation omega gives omega)."""
        n, u = ctx.n, ctx.field("displacement")
        tangent = ufl.as_vector([-n[1], n[0]] + [0] * (ctx.gdim - 2))
        slope = -ufl.dot(n, ufl.dot(ufl.grad(u), tangent))
        return slope / ctx.size(boundary) * ctx.ds(boundary)

    def modes(self, ctx: Context) -> dict[str, Modes]:
        """Rigid-body motions: the near-nullspace for multigrid, and the exact nullspace when no
        support or spring holds the body."""
        x, one = ctx.x, ctx.coefficient(1.0)  # a constant with a mesh: a vector of the space
        formulation = self._formulation(ctx)
        d = ctx.gdim
        translations = [one * ufl.unit_vector(i, d) for i in range(d)]
        if formulation == "axisymmetric":  # only the axial translation keeps the symmetry
            vectors = translations[1:]
        elif d == 2:
            vectors = [*translations, ufl.as_vector([-x[1], x[0]])]
        else:
            rotations = [ufl.cross(ufl.unit_vector(i, 3), x) for i in range(3)]
            vectors = translations + rotations
        held = any(
            isinstance(bc, DisplacementBoundary | FixedBoundary | SpringBoundary)
            for bc in self.params.boundaries.values()
        )
        return {"displacement": Modes(vectors, exact=not held)}
