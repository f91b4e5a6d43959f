"""Solid mechanics: quasi-static elasticity, small strain or large deformation (Neo-Hookean).

Equilibrium without inertia; loads may depend on t, and each time step is a steady solve::

    -div sigma = f                                 in the domain
    u_i = g_i  (some or all components)            "displacement" and "fixed" boundaries
    sigma n = t                                    "traction"
    sigma n = -p n                                 "pressure" (p > 0 pushes on the surface)
    sigma n = -k u   or   -k (u.n) n               "spring" (elastic foundation)

Boundaries the case does not list are traction free.

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
loads, strain energy and the largest von Mises stress as quantities.

The rigid-body motions are the near-nullspace of CG + GAMG; with no support and no spring they
are the exact nullspace (a free body under balanced loads). A body held only partly, e.g. by
one symmetry plane, must be held against its remaining rigid motions by the case.
"""

import math
from typing import Any, Literal

import numpy as np
import ufl
from pydantic import Field, field_validator, model_validator

from app.contracts import (
    BadValue,
    Context,
    Dirichlet,
    FieldNames,
    FieldSpec,
    Modes,
    Parameters,
    PerRegion,
    Physics,
    Property,
    Quantity,
    Value,
    one_of,
    quantity,
)

AXES = "xyz"


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


def _in_3d(tensor: Any, zz: Any = 0) -> Any:
    """A tensor of the mesh's dimension as 3x3: a 2D one gets ``zz`` out of plane."""
    if tensor.ufl_shape == (3, 3):
        return tensor
    t = tensor
    return ufl.as_matrix([[t[0, 0], t[0, 1], 0], [t[1, 0], t[1, 1], 0], [0, 0, zz]])


class Mechanics(Physics):
    """Quasi-static elasticity (isotropic or orthotropic) with eigenstrains, or Neo-Hookean.

    Small-strain linear elasticity, isotropic or orthotropic by region, with thermal and swelling
    eigenstrains; or compressible Neo-Hookean large deformation. Provides ``displacement`` (m)
    and derived ``strain``, ``stress``, ``von_mises``,
    ``strain_energy_density`` and the out-of-plane stress; requires ``temperature`` (K) with
    thermal expansion and the swelling concentration (mol/m^3) with swelling.
    """

    name = "mechanics"
    spd = True
    dimensions = (2, 3)  # plane strain/stress, axisymmetric, 3D: no 1D formulation

    class Parameters(Parameters):
        formulation: Literal["auto", "3d", "plane_strain", "plane_stress", "axisymmetric"] = Field(
            "auto", description="auto: 3d on 3D meshes, plane_strain on 2D meshes"
        )
        degree: int = Field(1, ge=1, le=2, description="Lagrange degree of the displacement")
        youngs_modulus: Property = quantity("Pa", ..., "Young's modulus E", gt=0)
        poisson_ratio: Property = quantity("dimensionless", ..., "Poisson ratio nu", gt=-1)
        orthotropic: dict[str, Orthotropic] = Field(
            default_factory=dict, description="Orthotropic constants by region (override E, nu)"
        )
        body_force: list[Property] = quantity(
            "N/m^3", [], "Body force per volume [f_x, f_y(, f_z)] (empty: none)"
        )
        thermal_expansion: Property | None = quantity(
            "1/K", None, "Linear thermal expansion coefficient alpha (None: no thermal strain)"
        )
        reference_temperature: Property = quantity("K", 293.15, "Stress-free temperature")
        swelling: Swelling | None = Field(None, description="Swelling by a concentration")
        eigenstrains: FieldNames = Field(
            [], description="Eigenstrain fields (dimensionless) others provide: scalar or tensor"
        )
        large_deformation: bool = Field(False, description="Neo-Hookean finite strain")
        boundaries: dict[str, Boundary] = Field(
            default_factory=dict,
            description="Condition per named boundary; boundaries not listed are traction free",
        )

        @field_validator("poisson_ratio")
        @classmethod
        def _below_half(cls, value: Property) -> Property:
            values = value.values.values() if isinstance(value, PerRegion) else [value]
            for item in values:
                if isinstance(item, Value) and item.value >= 0.5:
                    raise ValueError(f"must be < 0.5 (incompressible), got {item.value:g}")
            return value

    @property
    def _out_of_plane(self) -> str:
        """Name of the field of the third normal stress (sigma_zz, or the hoop stress)."""
        return "hoop_stress" if self.params.formulation == "axisymmetric" else "out_of_plane_stress"

    @property
    def provides(self) -> list[FieldSpec]:
        p = self.params
        space = ("DG", p.degree - 1)
        specs = [
            ("strain", "tensor", "dimensionless", "Strain (Green-Lagrange in large deformation)"),
            ("stress", "tensor", "Pa", "Stress (Cauchy in large deformation)"),
            ("von_mises", "scalar", "Pa", "Von Mises stress of the full 3D stress"),
            ("strain_energy_density", "scalar", "J/m^3", "Stored elastic energy per volume"),
            (self._out_of_plane, "scalar", "Pa", "sigma_theta_theta (axisymmetric), else sigma_zz"),
        ]
        return [
            FieldSpec("displacement", "vector", "m", ("Lagrange", p.degree), description="u"),
            *(FieldSpec(n, r, u, space, derived=True, description=d) for n, r, u, d in specs),
        ]

    @property
    def requires(self) -> list[FieldSpec]:
        p = self.params
        fields = []
        if p.thermal_expansion is not None:
            fields.append(FieldSpec("temperature", "scalar", "K", description="Thermal strain"))
        if p.swelling is not None:
            fields.append(
                FieldSpec(p.swelling.field, "scalar", "mol/m^3", description="Swelling strain")
            )
        return fields + [
            FieldSpec(name, ("scalar", "tensor"), "dimensionless", description="Eigenstrain")
            for name in p.eigenstrains
        ]

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
        return _in_3d(g, hoop)

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
        isotropic = ufl.Identity(3)
        return sum(
            (_in_3d(ufl.sym(e)) if e.ufl_shape else e * isotropic for e in parts), ufl.zero(3, 3)
        )

    # Constitutive laws ----------------------------------------------------------------------
    def _lame(self, ctx: Context) -> tuple[Any, Any]:
        E = ctx.coefficient(self.params.youngs_modulus)
        nu = ctx.coefficient(self.params.poisson_ratio)
        return E * nu / ((1 + nu) * (1 - 2 * nu)), E / (2 * (1 + nu))

    def _parts(self, ctx: Context) -> list[tuple[str | None, tuple[Any, Any]]]:
        """(region, law) pairs covering the domain once; region None is the whole domain. A law
        is (C, G): the 3x3 normal block of the stiffness and the shear moduli [G12, G13, G23]."""
        lam, mu = self._lame(ctx)
        isotropic = (
            [[lam + (2 * mu if i == j else 0) for j in range(3)] for i in range(3)],
            [mu] * 3,
        )
        orthotropic = self.params.orthotropic
        if not orthotropic:
            return [(None, isotropic)]
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
            law = isotropic
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

    def _small_strain_stress(self, ctx: Context, law: tuple[Any, Any], H: Any) -> tuple:
        """Stress and elastic strain (3x3) of the displacement gradient H for one law."""
        C, G = law
        e = ufl.sym(H) - self._eigenstrain(ctx)
        el = [[e[i, j] for j in range(3)] for i in range(3)]
        if self._formulation(ctx) == "plane_stress":  # sigma_zz = 0 fixes the elastic eps_zz
            el[2][2] = -(C[2][0] * el[0][0] + C[2][1] * el[1][1]) / C[2][2]
        normal = [sum(C[i][k] * el[k][k] for k in range(3)) for i in range(3)]
        sigma = [[normal[i] if i == j else 0 for j in range(3)] for i in range(3)]
        for (i, j), modulus in {(0, 1): G[0], (0, 2): G[1], (1, 2): G[2]}.items():
            sigma[i][j] = sigma[j][i] = 2 * modulus * el[i][j]  # shear
        return ufl.as_matrix(sigma), ufl.as_matrix(el)

    def _neo_hookean(self, ctx: Context, H: Any) -> tuple[Any, Any]:
        """First Piola stress and stored energy per reference volume of F = I + H = F_e F*."""
        lam, mu = self._lame(ctx)
        stretch = ufl.Identity(3) + self._eigenstrain(ctx)  # F*, J* = det F*
        Fe = (ufl.Identity(3) + H) * ufl.inv(stretch)
        Je, inv_t, volume = ufl.det(Fe), ufl.inv(Fe).T, ufl.det(stretch)
        P = volume * (mu * (Fe - inv_t) + lam * ufl.ln(Je) * inv_t) * ufl.inv(stretch).T
        psi = mu / 2 * (ufl.tr(Fe.T * Fe) - 3) - mu * ufl.ln(Je) + lam / 2 * ufl.ln(Je) ** 2
        return P, volume * psi

    def _response(self, ctx: Context, law: tuple[Any, Any]) -> dict[str, Any]:
        """Stress measures, strain and energy density (3x3 tensors) of the current displacement:
        ``piola`` (the stress of the weak form), ``cauchy``, ``strain`` and ``energy``."""
        H = self._gradient(ctx, ctx.field("displacement"))
        if self.params.large_deformation:
            P, energy = self._neo_hookean(ctx, H)
            F = ufl.Identity(3) + H
            strain = (F.T * F - ufl.Identity(3)) / 2
            return {"piola": P, "cauchy": P * F.T / ufl.det(F), "strain": strain, "energy": energy}
        sigma, elastic = self._small_strain_stress(ctx, law, H)
        energy = ufl.inner(sigma, elastic) / 2
        return {"piola": sigma, "cauchy": sigma, "strain": ufl.sym(H), "energy": energy}

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
        form = sum(
            ufl.inner(self._response(ctx, law)["piola"], grad_v) * w * ctx.dx(region)
            for region, law in self._parts(ctx)
        )
        if self.params.body_force:
            f = self._vector(ctx, self.params.body_force, "body_force", "body_force")
            form -= ufl.inner(f, v) * w * ctx.dx()
        for name, traction in self._loads(ctx).items():
            form -= ufl.inner(traction, v) * w * ctx.ds(name)
        return form

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

    def derived(self, ctx: Context) -> dict[str, Any]:
        d = ctx.gdim
        fields = {key: 0 for key in ("strain", "stress", "von_mises", "energy", "out_of_plane")}
        for region, law in self._parts(ctx):
            indicator, response = self._indicator(ctx, region), self._response(ctx, law)
            sigma = response["cauchy"]
            deviator = sigma - ufl.tr(sigma) / 3 * ufl.Identity(3)
            fields["strain"] += indicator * response["strain"]
            fields["stress"] += indicator * sigma
            fields["von_mises"] += indicator * ufl.sqrt(1.5 * ufl.inner(deviator, deviator))
            fields["energy"] += indicator * response["energy"]
            fields["out_of_plane"] += indicator * sigma[2, 2]

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
        """Support reactions and applied loads per boundary component, strain energy, and the
        largest von Mises stress.

        ``reaction_<boundary>_<axis>`` is the force a support exerts on the body (from the
        discrete residual, so it balances the loads to round-off); ``load_<boundary>_<axis>`` the
        resultant of a traction, pressure or spring. Per unit depth in plane formulations, for
        the full revolution in axisymmetric.
        """
        axisymmetric = self._formulation(ctx) == "axisymmetric"
        force = "N" if axisymmetric else ctx.per_depth("N")
        energy = "J" if axisymmetric else ctx.per_depth("J")
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
        stored = sum(
            self._response(ctx, law)["energy"] * w * ctx.dx(region)
            for region, law in self._parts(ctx)
        )
        return quantities | {
            "strain_energy": Quantity.integral(stored, energy, "Stored elastic energy"),
            "max_von_mises": Quantity.maximum("von_mises", "Pa", "Largest von Mises stress"),
        }

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
