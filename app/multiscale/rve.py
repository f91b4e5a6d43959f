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
from typing import Any

import numpy as np
import ufl
from dolfinx import fem, mesh
from dolfinx.fem import petsc as fem_petsc
from mpi4py import MPI
from petsc4py import PETSc

from app.multiscale.periodic import cell_box, pinned_nodes, prolongation, reduced_operator

_prefixes = itertools.count()
CONDITIONS = ("minimal", "periodic", "kinematic")
FACES = 1  # facet tag of the cell's faces


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
        moduli = self._moduli(cell_tags, regions)
        u, v = ufl.TrialFunction(self.space), ufl.TestFunction(self.space)
        grad = material.gradient
        dx = ufl.dx(domain=domain)
        self.load = fem.Constant(
            domain, np.zeros((dim,) if material.kind == "conductivity" else (dim, dim))
        )
        self.fluctuation = fem.Function(self.space)
        self._operator = fem.form(ufl.inner(material.flux(grad(u), moduli), grad(v)) * dx)
        self._rhs = fem.form(-ufl.inner(material.flux(self.load, moduli), grad(v)) * dx)
        total = self.load + grad(self.fluctuation)
        flux = material.flux(total, moduli)
        self._flux = [fem.form(ufl.inner(flux, _constant(b)) * dx) for b in self._basis()]
        faces = mesh.locate_entities_boundary(domain, dim - 1, self._on_faces)
        tags = mesh.meshtags(domain, dim - 1, np.sort(faces), np.full(len(faces), FACES, np.int32))
        ds = ufl.Measure("ds", domain=domain, subdomain_data=tags)(FACES)
        n = ufl.FacetNormal(domain)
        self._traction = fem.form(ufl.inner(self._flux_of_load(n), v) * ds)
        average = material.boundary_average(self.fluctuation, n)
        self._gradient = [fem.form(ufl.inner(average, _constant(b)) * ds) for b in self._basis()]
        self._faces = faces

    # Set-up ---------------------------------------------------------------------------------
    def _moduli(self, cell_tags: Any, regions: dict) -> dict[str, fem.Function]:
        """Cellwise-constant phase properties."""
        space = fem.functionspace(self.mesh, ("DG", 0))
        names = self.material.moduli(next(iter(regions)))
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

    def _flux_of_load(self, n: Any) -> Any:
        """Sigma n for the load constant taken as a stress (minimal conditions)."""
        return self.load * n if self.material.kind == "elasticity" else ufl.dot(self.load, n)

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
        solver = _lu(reduced_operator(A, P))
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
        solver = _lu(A)
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
        A = fem_petsc.assemble_matrix(self._operator)
        A.assemble()
        rows = self._gauge_rows()
        A.zeroRowsColumns(rows, diag=1.0)
        solver = _lu(A)
        b = fem_petsc.create_vector(self.space)
        columns = []
        for load in self._basis():
            self.load.value = load
            self._assemble(b, self._traction)
            b.setValues(rows, np.zeros(len(rows)))
            b.assemble()
            solver.solve(b, self.fluctuation.x.petsc_vec)
            self.fluctuation.x.scatter_forward()
            columns.append(self._average(self._gradient))
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


def _lu(A: PETSc.Mat) -> PETSc.KSP:
    solver = PETSc.KSP().create(A.getComm())
    solver.setOptionsPrefix(f"rve_{next(_prefixes)}_")
    solver.setOperators(A)
    solver.setType("preonly")
    solver.getPC().setType("lu")
    solver.getPC().setFactorSolverType("mumps")
    solver.setFromOptions()
    return solver
