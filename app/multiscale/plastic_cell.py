"""Nonlinear unit cells: elastic-plastic phases with a history, driven by macroscopic strain.

Small strain. A cell of elastic phases (bulk K, shear G) and von Mises phases
(:class:`J2Phase`, the return mapping of :mod:`app.return_mapping`) takes a macro strain
increment dE (Mandel, as :mod:`app.multiscale.materials`) from its accepted state E_n and seeks
the periodic fluctuation w with

    R(w) = int_Y sigma(E_n + dE + sym grad w; history) : sym grad v dx = 0      for all periodic v

by Newton's method on the periodic prolongation of :mod:`app.multiscale.periodic` (w = P x,
solve P^T J P dx = -P^T R). Its answers are the average stress and the homogenised consistent
tangent. 2D cells are in plane strain (the 3x3 strain has no zz part).

Averages come from the assembled vectors: the affine field a_k = B_k x (B_k the k-th Mandel
basis tensor, x from the cell's lowest corner) has the strain B_k exactly, so

    <sigma> : B_k = a_k^T R / |Y|,    C_kj = a_k^T J (a_j + w_j) / |Y|,    P^T J P w_j = -P^T J a_j

with J the Jacobian at the converged state: one factorisation serves every load case of the
tangent, as in the linear cells of :mod:`app.multiscale.rve`. |Y| is the cell's box, so pores
(unmeshed) count as stress-free.

The internal variables live at the quadrature points of the plastic phases. A solve always
starts from the accepted history; :meth:`PlasticCell.commit` makes the last converged solve the
new history, :meth:`PlasticCell.rollback` discards it (a rejected macro step).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np
import ufl
from dolfinx import fem, mesh
from dolfinx.fem import petsc as fem_petsc
from mpi4py import MPI
from petsc4py import PETSc

from app.errors import SolverError
from app.multiscale.materials import mandel_basis
from app.multiscale.periodic import cell_box, prolongation, reduced_operator
from app.multiscale.rve import lu_solver
from app.pointwise import quadrature_space
from app.return_mapping import J2History, J2Material, j2_return_mapping

# Newton's backtracking: halvings of a correction; the forces' norm of a stress-free cell
_HALVINGS = 8
_TINY = 1e-300

Elastic = tuple[float, float]  # (bulk K, shear G) in Pa, as app.multiscale.materials.Elasticity


@dataclass(frozen=True)
class J2Phase:
    """A von Mises phase: elastic moduli, yield stress and hardening (SI units).

    R(p) = H p + Q (1 - exp(-b p)) isotropic, H_kin kinematic (see :mod:`app.return_mapping`).
    """

    bulk: float
    shear: float
    yield_stress: float
    isotropic_modulus: float = 0.0
    kinematic_modulus: float = 0.0
    saturation_stress: float = 0.0
    saturation_rate: float = 0.0

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            positive = field.name in ("bulk", "shear", "yield_stress")
            if not math.isfinite(value) or value < 0 or (positive and value == 0):
                bound = "> 0" if positive else ">= 0"
                raise ValueError(f"J2Phase.{field.name} must be finite and {bound}, got {value}")


@dataclass(frozen=True)
class CellResponse:
    """A converged cell solve: Mandel average stress and consistent tangent, Newton's relative
    residual |P^T R| / max(|R|, |R_0|) per iteration, the wall time and, for a 2D cell, the
    average out-of-plane stress sigma_zz of plane strain (0 for a 3D cell)."""

    stress: np.ndarray
    tangent: np.ndarray
    residuals: tuple[float, ...]
    seconds: float
    out_of_plane: float = 0.0

    @property
    def iterations(self) -> int:
        """Newton corrections taken."""
        return len(self.residuals) - 1


def _in_3d(tensor: ufl.core.expr.Expr) -> ufl.core.expr.Expr:
    """A 2D strain as the 3x3 strain of plane strain (3D ones unchanged)."""
    if ufl.shape(tensor) == (3, 3):
        return tensor
    t = tensor
    return ufl.as_matrix([[t[0, 0], t[0, 1], 0], [t[1, 0], t[1, 1], 0], [0, 0, 0]])


class _Phase:
    """One region's law in UFL: its stress, and for a J2 phase the new internal variables."""

    def __init__(self, domain: mesh.Mesh, law: Elastic | J2Phase, history: dict):
        def constant(value: float) -> fem.Constant:
            return fem.Constant(domain, PETSc.ScalarType(value))

        bulk, shear = (law.bulk, law.shear) if isinstance(law, J2Phase) else law
        if min(bulk, shear) <= 0 or not math.isfinite(bulk + shear):
            raise ValueError(f"an elastic phase needs finite K, G > 0, got ({bulk}, {shear})")
        self.lame = (constant(bulk - 2 * shear / 3), constant(shear))
        self.plastic = isinstance(law, J2Phase)
        if self.plastic:
            saturation = None
            if law.saturation_stress > 0 and law.saturation_rate > 0:
                saturation = (constant(law.saturation_stress), constant(law.saturation_rate))
            kinematic = law.kinematic_modulus > 0
            self.material = J2Material(
                lame=self.lame,
                yield_stress=constant(law.yield_stress),
                isotropic_modulus=constant(law.isotropic_modulus),
                saturation=saturation,
                kinematic_modulus=constant(law.kinematic_modulus) if kinematic else None,
            )
            self.history = J2History(
                history["plastic_strain"],
                history["equivalent_plastic_strain"],
                history["back_stress"] if kinematic else None,
            )

    def stress(self, strain: ufl.core.expr.Expr) -> ufl.core.expr.Expr:
        if self.plastic:
            return j2_return_mapping(self.material, strain, self.history).stress
        lam, mu = self.lame
        return lam * ufl.tr(strain) * ufl.Identity(3) + 2 * mu * strain

    def updates(self, strain: ufl.core.expr.Expr) -> dict[str, ufl.core.expr.Expr]:
        step = j2_return_mapping(self.material, strain, self.history)
        new = {
            "plastic_strain": step.plastic_strain,
            "equivalent_plastic_strain": step.equivalent_plastic_strain,
        }
        if step.back_stress is not None:
            new["back_stress"] = step.back_stress
        return new


class PlasticCell:
    """A periodic unit cell with history (see the module).

    Args:
        domain: The cell's periodic mesh (on the communicator that solves it).
        cell_tags: Region tags of its cells.
        regions: Region names and their tags; each must have a phase.
        phases: The law of each region: (K, G) for an elastic phase, or a :class:`J2Phase`.
        degree: Lagrange degree of the fluctuation.
        tolerance: Newton stops when |P^T R| <= tolerance max(|R|, |R_0|) (R the
            unconstrained residual, the stress's boundary forces; R_0 that of the start).
        max_iterations: Newton corrections before the solve fails.
    """

    def __init__(
        self,
        domain: mesh.Mesh,
        cell_tags: mesh.MeshTags,
        regions: Mapping[str, int],
        phases: Mapping[str, Elastic | J2Phase],
        degree: int = 1,
        tolerance: float = 1e-12,
        max_iterations: int = 25,
    ):
        if not regions:
            raise ValueError("the cell has no regions: its mesh names no phase")
        missing = sorted(set(regions) - set(phases))
        if missing:
            raise ValueError(f"the cell's regions {missing} have no phase ({sorted(phases)})")
        self.mesh, self.dim = domain, domain.geometry.dim
        self.tolerance, self.max_iterations = tolerance, max_iterations
        low, high = cell_box(domain)
        self.volume = float(np.prod(high - low))
        self.basis = mandel_basis(self.dim)
        self.space = fem.functionspace(domain, ("Lagrange", degree, (self.dim,)))
        self.fluctuation = fem.Function(self.space)
        self.macro = fem.Constant(domain, np.zeros((self.dim, self.dim)))
        self._degree = max(1, 2 * (degree - 1))  # of the strain's square: exact for P1
        self.history = self._history_functions(phases)
        self._new = {name: fem.Function(f.function_space) for name, f in self.history.items()}
        dx = ufl.Measure(
            "dx", domain, subdomain_data=cell_tags, metadata={"quadrature_degree": self._degree}
        )
        strain = _in_3d(self.macro + ufl.sym(ufl.grad(self.fluctuation)))
        v, du = ufl.TestFunction(self.space), ufl.TrialFunction(self.space)
        test_strain = _in_3d(ufl.sym(ufl.grad(v)))
        laws = {name: _Phase(domain, phases[name], self.history) for name in regions}
        residual = sum(
            ufl.inner(laws[name].stress(strain), test_strain) * dx(tag)
            for name, tag in regions.items()
        )
        self._residual = fem.form(residual)
        # plane strain's sigma_zz, which the in-plane Mandel stress leaves out
        self._out_of_plane = None
        if self.dim == 2:
            zz = sum(laws[name].stress(strain)[2, 2] * dx(tag) for name, tag in regions.items())
            self._out_of_plane = fem.form(zz)
        self._jacobian = fem.form(ufl.derivative(residual, self.fluctuation, du))
        self._updates = self._update_expressions(laws, regions, cell_tags, strain)
        self._averages = self._average_forms(dx)
        self._prolongation = prolongation(self.space)
        # the functions own the vectors' memory: keep them
        self._affine_fields = [self._affine_field(tensor, low) for tensor in self.basis]
        self._affine = [field.x.petsc_vec for field in self._affine_fields]
        self.strain = np.zeros(len(self.basis))  # the accepted macro strain (Mandel)
        self._accepted = self.fluctuation.x.array.copy()
        self._trial: np.ndarray | None = None

    # Set-up ---------------------------------------------------------------------------------
    def _history_functions(self, phases: Mapping[str, Elastic | J2Phase]) -> dict:
        shapes = {"plastic_strain": (3, 3), "equivalent_plastic_strain": ()}
        if any(isinstance(p, J2Phase) and p.kinematic_modulus > 0 for p in phases.values()):
            shapes["back_stress"] = (3, 3)
        return {
            name: fem.Function(quadrature_space(self.mesh, shape, self._degree), name=name)
            for name, shape in shapes.items()
        }

    def _update_expressions(self, laws, regions, cell_tags, strain) -> list:
        """(cells, {variable: compiled expression}) per plastic region."""
        points = self.history["plastic_strain"].function_space.element.interpolation_points
        updates = []
        for name, tag in regions.items():
            if laws[name].plastic:
                expressions = laws[name].updates(strain)
                compiled = {key: fem.Expression(e, points) for key, e in expressions.items()}
                updates.append((cell_tags.find(tag), compiled))
        return updates

    def _average_forms(self, dx: ufl.Measure) -> dict:
        """Per internal variable: the form of int variable : T dx and its direction T."""
        forms = {}
        for name, function in self.history.items():
            direction = fem.Constant(self.mesh, np.zeros(function.ufl_shape))
            forms[name] = (fem.form(ufl.inner(function, direction) * dx), direction)
        return forms

    def _affine_field(self, tensor: np.ndarray, low: np.ndarray) -> fem.Function:
        """The displacement B (x - low) in the space (exact: it is linear)."""
        field = fem.Function(self.space)
        field.interpolate(lambda x: tensor @ (x[: self.dim] - low[:, None]))
        return field

    # Solves ---------------------------------------------------------------------------------
    def solve(self, increment: np.ndarray) -> CellResponse:
        """Average stress and consistent tangent at the accepted strain plus ``increment``
        (Mandel), from the accepted history.

        Raises:
            SolverError: Newton did not converge (the trial is discarded).
        """
        started = time.perf_counter()
        increment = np.asarray(increment, dtype=float)
        if increment.shape != self.strain.shape or not np.isfinite(increment).all():
            raise ValueError(
                f"a strain increment has {len(self.strain)} finite Mandel components, got "
                f"{increment.tolist()}"
            )
        strain = self.strain + increment
        self.macro.value = sum(
            value * tensor for value, tensor in zip(strain, self.basis, strict=True)
        )
        self._trial = None
        try:
            residual, jacobian, solver, history = self._newton()
        except SolverError:
            self._restore(self._accepted)
            raise
        stress = np.array([a.dot(residual) for a in self._affine]) / self.volume
        tangent = self._tangent(jacobian, solver)
        zz = 0.0
        if self._out_of_plane is not None:
            zz = self.mesh.comm.allreduce(fem.assemble_scalar(self._out_of_plane)) / self.volume
        self._trial = strain
        return CellResponse(stress, tangent, history, time.perf_counter() - started, zz)

    def _newton(self) -> tuple[PETSc.Vec, PETSc.Mat, PETSc.KSP, tuple[float, ...]]:
        """Newton from the latest converged fluctuation; returns the residual, the Jacobian and
        its factorisation at the converged state, and the relative residuals.

        A full step that does not lower |P^T R| is halved (backtracking): a piecewise-linear
        response (yielding layers of very different hardening) otherwise cycles between two
        guesses of which points yield.
        """
        P = self._prolongation
        residual = fem_petsc.create_vector(self.space)
        reduced, correction = P.createVecRight(), P.createVecRight()
        update = residual.duplicate()
        imbalance = self._imbalance(residual, reduced)
        # forces of the start too: a cell unloaded to zero strain has |R| at round-off
        start = max(residual.norm(), _TINY)
        solver, history = None, [imbalance / start]
        for iteration in range(self.max_iterations + 1):
            jacobian = fem_petsc.assemble_matrix(self._jacobian)
            jacobian.assemble()
            operator = reduced_operator(jacobian, P)
            if solver is None:
                solver = lu_solver(operator)
            else:
                solver.setOperators(operator)
            if history[-1] <= self.tolerance:
                return residual, jacobian, solver, tuple(history)
            if iteration == self.max_iterations:
                break
            reduced.scale(-1.0)
            solver.solve(reduced, correction)
            P.mult(correction, update)
            imbalance = self._line_search(update, residual, reduced, imbalance)
            history.append(imbalance / max(residual.norm(), start))
        listing = ", ".join(f"{r:.2e}" for r in history)
        raise SolverError(
            f"the cell's Newton did not converge in {self.max_iterations} iterations at the "
            f"macro strain {self.macro.value.tolist()} (relative residuals {listing}); take a "
            "smaller macro step"
        )

    def _line_search(
        self, update: PETSc.Vec, residual: PETSc.Vec, reduced: PETSc.Vec, before: float
    ) -> float:
        """Move the fluctuation by the longest of update, update/2, ... (at most 8 halvings)
        that lowers |P^T R| (Armijo); leaves R and P^T R of the new state, returns |P^T R|."""
        start = self.fluctuation.x.petsc_vec.copy()
        length = 1.0
        for _ in range(_HALVINGS + 1):
            self.fluctuation.x.petsc_vec.waxpy(length, update, start)
            self.fluctuation.x.scatter_forward()
            after = self._imbalance(residual, reduced)
            if after <= (1 - 1e-4 * length) * before:
                break
            length /= 2
        return after

    def _imbalance(self, residual: PETSc.Vec, reduced: PETSc.Vec) -> float:
        """Assemble R at the current fluctuation and P^T R; returns |P^T R|.

        Raises:
            SolverError: R is not finite.
        """
        self._assemble(residual)
        self._prolongation.multTranspose(residual, reduced)
        imbalance = reduced.norm()
        if not math.isfinite(imbalance):
            raise SolverError(
                f"the cell's residual is not finite at the macro strain {self.macro.value.tolist()}"
            )
        return imbalance

    def _tangent(self, jacobian: PETSc.Mat, solver: PETSc.KSP) -> np.ndarray:
        """C_kj = a_k^T J (a_j + w_j) / |Y| with P^T J P w_j = -P^T J a_j (see the module)."""
        P = self._prolongation
        load, reduced, x = jacobian.createVecLeft(), P.createVecRight(), P.createVecRight()
        direction, image = jacobian.createVecRight(), jacobian.createVecLeft()
        columns = []
        for affine in self._affine:
            jacobian.mult(affine, load)
            P.multTranspose(load, reduced)
            reduced.scale(-1.0)
            solver.solve(reduced, x)
            P.mult(x, direction)
            direction.axpy(1.0, affine)
            jacobian.mult(direction, image)
            columns.append([a.dot(image) for a in self._affine])
        return np.array(columns).T / self.volume

    def _assemble(self, vector: PETSc.Vec) -> None:
        with vector.localForm() as local:
            local.set(0.0)
        fem_petsc.assemble_vector(vector, self._residual)
        vector.ghostUpdate(PETSc.InsertMode.ADD, PETSc.ScatterMode.REVERSE)

    def _restore(self, values: np.ndarray) -> None:
        self.fluctuation.x.array[:] = values

    # History --------------------------------------------------------------------------------
    def commit(self) -> None:
        """Make the last converged solve the accepted state.

        Raises:
            RuntimeError: No converged solve since the last commit or rollback.
        """
        if self._trial is None:
            raise RuntimeError("nothing to commit: no converged cell solve since the last one")
        # every new value is computed from the old history before any is stored
        for name, function in self.history.items():
            self._new[name].x.array[:] = function.x.array
        for cells, expressions in self._updates:
            for name, expression in expressions.items():
                self._new[name].interpolate(expression, cells0=cells, cells1=cells)
        for name, function in self.history.items():
            function.x.array[:] = self._new[name].x.array
            function.x.scatter_forward()
        self.strain, self._trial = self._trial, None
        self._accepted = self.fluctuation.x.array.copy()

    def rollback(self) -> None:
        """Discard the solves since the last commit."""
        self._trial = None
        self._restore(self._accepted)

    def average(self, name: str) -> np.ndarray:
        """The mean over the cell's box of an accepted internal variable (``plastic_strain``
        3x3, ``equivalent_plastic_strain``, ``back_stress`` with kinematic hardening)."""
        form, direction = self._averages[name]
        shape = self.history[name].ufl_shape
        result = np.zeros(shape)
        for index in np.ndindex(*shape):
            unit = np.zeros(shape)
            unit[index] = 1.0
            direction.value = unit
            result[index] = fem.assemble_scalar(form)
        return self.mesh.comm.allreduce(result, op=MPI.SUM) / self.volume
