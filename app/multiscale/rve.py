"""Homogenisation of a unit cell: effective conductivity or stiffness tensors.

For a macroscopic gradient (or strain) E the cell problem seeks a fluctuation w with

    int_Y  flux(E + grad w) . grad v  dx = 0       for all admissible v,

and the effective tensor maps E to the average flux (1/|Y|) int_Y flux(E + grad w) dx. Three
boundary conditions, in the order of the effective tensors they give (Hill's bounds):

* ``minimal`` (SUBC, uniform flux or traction Sigma n on the faces; the average gradient
  (1/|Y|) int_dY u n ds answers, and the tensor is the inverse of that compliance);
* ``periodic`` (w periodic: the periodic prolongation of :mod:`app.multiscale.periodic`);
* ``kinematic`` (KUBC, w = 0 on the faces: an affine boundary value).

minimal <= periodic <= kinematic in the order of symmetric matrices. Each condition factorises
its operator once (MUMPS) and solves all load cases with it: d for conductivity, 3 (2D) or 6
(3D) Mandel strains for elasticity. Pores are cells that are not meshed: the volume |Y| is the
cell's box, and averages of gradients are taken on its faces.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import ufl
from basix.ufl import element
from dolfinx import fem, mesh
from dolfinx.fem import petsc as fem_petsc
from mpi4py import MPI
from petsc4py import PETSc

from app.multiscale.periodic import cell_box, pinned_nodes, prolongation, reduced_operator

_prefixes = itertools.count()
CONDITIONS = ("minimal", "periodic", "kinematic")
FACES = 1  # facet tag of the cell's faces


@dataclass
class _Forms:
    """The cell problem's forms, compiled once per process for a kind of cell and material:
    JIT look-ups cost more than a small cell's whole solve (each scans the form cache)."""

    symbols: dict[str, Any]
    compiled: dict[str, Any]


_COMPILED: dict[tuple, _Forms] = {}


def _forms(domain: mesh.Mesh, material: Any, degree: int) -> _Forms:
    coordinates = domain.ufl_domain().ufl_coordinate_element()
    dim = domain.geometry.dim
    key = (material.kind, tuple(material.moduli("matrix")), dim, degree, repr(coordinates))
    if key not in _COMPILED:
        template = ufl.Mesh(coordinates)
        cell = template.ufl_cell().cellname
        space = ufl.FunctionSpace(
            template, element("Lagrange", cell, degree, shape=material.shape(dim))
        )
        piecewise = ufl.FunctionSpace(template, element("DG", cell, 0))
        moduli = {name: ufl.Coefficient(piecewise) for name in material.moduli("matrix")}
        load = ufl.Constant(
            template, shape=(dim,) if material.kind == "conductivity" else (dim, dim)
        )
        fluctuation = ufl.Coefficient(space)
        u, v = ufl.TrialFunction(space), ufl.TestFunction(space)
        grad, flux = material.gradient, material.flux
        dx, ds = ufl.Measure("dx", template), ufl.Measure("ds", template)(FACES)
        n = ufl.FacetNormal(template)
        traction = load * n if material.kind == "elasticity" else ufl.dot(load, n)
        total = flux(load + grad(fluctuation), moduli)
        average = material.boundary_average(fluctuation, n)
        basis = material.load_cases(dim)
        forms = {
            "operator": ufl.inner(flux(grad(u), moduli), grad(v)) * dx,
            "rhs": -ufl.inner(flux(load, moduli), grad(v)) * dx,
            "traction": ufl.inner(traction, v) * ds,
        }
        forms |= {f"flux{i}": ufl.inner(total, _constant(b)) * dx for i, b in enumerate(basis)}
        forms |= {
            f"gradient{i}": ufl.inner(average, _constant(b)) * ds for i, b in enumerate(basis)
        }
        compiled = {name: fem.compile_form(domain.comm, form) for name, form in forms.items()}
        symbols = {"moduli": moduli, "load": load, "fluctuation": fluctuation}
        _COMPILED[key] = _Forms(symbols, compiled)
    return _COMPILED[key]


class CellProblem:
    """The cell problems of one meshed unit cell.

    Args:
        domain: The cell's mesh (on the communicator that solves it).
        cell_tags: Region tags of its cells.
        regions: Region names and their tags (each must be a phase of ``material``).
        material: :class:`~app.multiscale.materials.Conduction` or ``Elasticity``.
        degree: Lagrange degree of the fluctuation.
    """

    def __init__(self, domain: mesh.Mesh, cell_tags: Any, regions: dict, material, degree: int):
        self.mesh, self.material = domain, material
        self.dim = dim = domain.geometry.dim
        self.low, self.high = cell_box(domain)
        self.volume = float(np.prod(self.high - self.low))
        self.space = fem.functionspace(domain, ("Lagrange", degree, material.shape(dim)))
        forms = _forms(domain, material, degree)
        symbols = forms.symbols
        self.load = fem.Constant(domain, np.zeros(symbols["load"].ufl_shape))
        self.fluctuation = fem.Function(self.space)
        coefficients = {symbols["fluctuation"]: self.fluctuation}
        coefficients |= {
            symbols["moduli"][name]: function
            for name, function in self._moduli(cell_tags, regions).items()
        }
        constants = {symbols["load"]: self.load}
        faces = mesh.locate_entities_boundary(domain, dim - 1, self._on_faces)
        domain.topology.create_connectivity(dim - 1, dim)
        domain.topology.create_connectivity(dim, dim - 1)
        exterior = fem.IntegralType.exterior_facet
        on_faces = {
            exterior: [(FACES, fem.compute_integration_domains(exterior, domain.topology, faces))]
        }

        def create(name: str) -> fem.Form:
            compiled = forms.compiled[name]
            spaces = [self.space] * len(compiled.ufl_form.arguments())
            subdomains = on_faces if compiled.ufl_form.integrals_by_type("exterior_facet") else {}
            return fem.create_form(compiled, spaces, domain, subdomains, coefficients, constants)

        self._create, self._faces = create, faces
        self._operator, self._rhs = create("operator"), create("rhs")
        count = len(material.load_cases(dim))
        self._flux = [create(f"flux{i}") for i in range(count)]
        self._gradient_names = [f"gradient{i}" for i in range(count)]

    # Set-up ---------------------------------------------------------------------------------
    def _moduli(self, cell_tags: Any, regions: dict) -> dict[str, fem.Function]:
        """Cellwise-constant phase properties."""
        space = fem.functionspace(self.mesh, ("DG", 0))
        names = self.material.moduli("matrix")
        moduli = {name: fem.Function(space) for name in names}
        for region, tag in regions.items():
            cells = cell_tags.find(tag)
            for name, value in self.material.moduli(region).items():
                moduli[name].x.array[space.dofmap.list[cells, 0]] = value
        for function in moduli.values():
            function.x.scatter_forward()
        return moduli

    def _basis(self) -> list[np.ndarray]:
        return self.material.load_cases(self.dim)

    def _on_faces(self, x: np.ndarray) -> np.ndarray:
        tolerance = 1e-8 * float(np.max(self.high - self.low))
        low = np.abs(x[: self.dim].T - self.low) < tolerance
        high = np.abs(x[: self.dim].T - self.high) < tolerance
        return (low | high).any(axis=1)

    # Solves ----------------------------------------------------------------------------------
    def solve(self, condition: str = "periodic") -> np.ndarray:
        """The effective tensor (d x d, or Mandel) under ``condition``."""
        if condition == "periodic":
            return self._periodic()
        if condition == "kinematic":
            return self._kinematic()
        if condition == "minimal":
            return self._minimal()
        raise ValueError(f"unknown boundary condition {condition!r}; use one of {CONDITIONS}")

    def _periodic(self) -> np.ndarray:
        A = fem_petsc.assemble_matrix(self._operator)
        A.assemble()
        P = prolongation(self.space)
        solver = lu_solver(reduced_operator(A, P))
        b = fem_petsc.create_vector(self.space)
        reduced, x = P.createVecRight(), P.createVecRight()
        columns = []
        for load in self._basis():
            self.load.value = load
            self._assemble(b, self._rhs)
            P.multTranspose(b, reduced)
            solver.solve(reduced, x)
            P.mult(x, self.fluctuation.x.petsc_vec)
            self.fluctuation.x.scatter_forward()
            columns.append(self._average(self._flux))
        return np.array(columns).T

    def _kinematic(self) -> np.ndarray:
        dofs = fem.locate_dofs_topological(self.space, self.dim - 1, self._faces)
        zero = np.zeros(self.material.shape(self.dim))
        bc = fem.dirichletbc(zero, dofs, self.space)
        A = fem_petsc.assemble_matrix(self._operator, bcs=[bc])
        A.assemble()
        solver = lu_solver(A)
        b = fem_petsc.create_vector(self.space)
        columns = []
        for load in self._basis():
            self.load.value = load
            self._assemble(b, self._rhs)
            fem_petsc.set_bc(b, [bc])
            solver.solve(b, self.fluctuation.x.petsc_vec)
            self.fluctuation.x.scatter_forward()
            columns.append(self._average(self._flux))
        return np.array(columns).T

    def _minimal(self) -> np.ndarray:
        """Uniform flux (traction) on the faces; the unknown is the whole field u."""
        traction = self._create("traction")
        gradient = [self._create(name) for name in self._gradient_names]
        A = fem_petsc.assemble_matrix(self._operator)
        A.assemble()
        rows = self._gauge_rows()
        A.zeroRowsColumns(rows, diag=1.0)
        solver = lu_solver(A)
        b = fem_petsc.create_vector(self.space)
        columns = []
        for load in self._basis():
            self.load.value = load
            self._assemble(b, traction)
            b.setValues(rows, np.zeros(len(rows)))
            b.assemble()
            solver.solve(b, self.fluctuation.x.petsc_vec)
            self.fluctuation.x.scatter_forward()
            columns.append(self._average(gradient))
        compliance = np.array(columns).T
        return np.linalg.inv(compliance)

    def _gauge_rows(self) -> np.ndarray:
        """Global rows of the dofs that remove the rigid motions (or the constant)."""
        gauge = self.material.gauge(self.dim)
        corners = [self.low + np.array(at) * (self.high - self.low) for at, _ in gauge]
        nodes = pinned_nodes(self.space, corners)
        index_map, bs = self.space.dofmap.index_map, self.space.dofmap.index_map_bs
        start = index_map.local_range[0]
        rows = [
            (start + int(node)) * bs + component
            for (_, component), found in zip(gauge, nodes, strict=True)
            for node in found
        ]
        return np.array(rows, dtype=PETSc.IntType)

    def _assemble(self, b: PETSc.Vec, form: Any) -> None:
        with b.localForm() as local:
            local.set(0.0)
        fem_petsc.assemble_vector(b, form)
        b.ghostUpdate(PETSc.InsertMode.ADD, PETSc.ScatterMode.REVERSE)

    def _average(self, forms: list) -> list[float]:
        local = [fem.assemble_scalar(form) for form in forms]
        return list(self.mesh.comm.allreduce(np.array(local), op=MPI.SUM) / self.volume)


def _constant(tensor: np.ndarray) -> Any:
    return ufl.as_tensor(tensor.tolist()) if tensor.ndim else float(tensor)


def lu_solver(A: PETSc.Mat) -> PETSc.KSP:
    solver = PETSc.KSP().create(A.getComm())
    solver.setOptionsPrefix(f"rve_{next(_prefixes)}_")
    solver.setOperators(A)
    solver.setType("preonly")
    solver.getPC().setType("lu")
    solver.getPC().setFactorSolverType("mumps")
    solver.setFromOptions()
    return solver
