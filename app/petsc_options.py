"""The PETSc options a case file may set: solver settings, never files or programs.

A case file is data that people exchange, and PETSc options can write files anywhere (every
viewer: ``ksp_view = "ascii:/any/path"``; ``binary`` alone writes ``binaryoutput`` in the
current folder; the monitors and ``*_converged_reason`` take viewers too; MUMPS' ``ICNTL(1-3)``
output streams write ``fort.N`` files; ``ICNTL(22)`` writes out-of-core scratch files), read
them (``options_file``) or run programs (``on_error_attach_debugger``). A deny-list would miss
the next such option, so ``[solver.petsc]`` takes only the options of an allow-list below: the
settings of Krylov methods, preconditioners, Newton and line search, and the direct solvers'
numerical parameters, under any prefix of inner solvers (``sub_``, ``mg_levels_``,
``fieldsplit_T_0_``, ``pc_gamg_esteig_``). Their values are plain: booleans, finite numbers,
words and comma-separated lists of them (``gmres``, ``mumps``, ``0,1``), never a path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from app.errors import CaseError, shown

_OPTIONS = {
    "ksp": "type rtol atol divtol max_it min_it norm_type pc_side initial_guess_nonzero "
    "error_if_not_converged reuse_preconditioner converged_maxits check_norm_iteration lag_norm "
    "converged_use_initial_residual_norm converged_use_min_initial_residual_norm "
    "gmres_restart gmres_haptol gmres_preallocate gmres_modifiedgramschmidt "
    "gmres_classicalgramschmidt gmres_cgs_refinement_type gmres_breakdown_tolerance "
    "lgmres_augment lgmres_constant bcgsl_ell richardson_scale richardson_self_scale "
    "chebyshev_eigenvalues chebyshev_esteig chebyshev_esteig_steps chebyshev_esteig_noisy "
    "chebyshev_kind cg_type cg_single_reduction",
    "pc": "type use_amat factor_mat_solver_type factor_mat_ordering_type factor_levels "
    "factor_fill factor_shift_type factor_shift_amount factor_zeropivot "
    "factor_nonzeros_along_diagonal factor_reuse_ordering factor_reuse_fill factor_in_place "
    "factor_pivot_in_blocks factor_diagonal_fill factor_column_pivot "
    "gamg_type gamg_agg_nsmooths gamg_threshold gamg_threshold_scale gamg_coarse_eq_limit "
    "gamg_process_eq_limit gamg_repartition gamg_reuse_interpolation gamg_square_graph "
    "gamg_aggressive_coarsening gamg_aggressive_square_graph gamg_aggressive_mis_k "
    "gamg_sym_graph gamg_graph_symmetrize gamg_use_parallel_coarse_grid_solver "
    "gamg_cpu_pin_coarse_grids gamg_coarse_grid_layout_type gamg_recompute_esteig "
    "gamg_use_sa_esteig gamg_mis_k_minimum_degree_ordering gamg_low_memory_threshold_filter "
    "gamg_asm_use_agg gamg_injection_index "
    "mg_levels mg_cycle_type mg_type mg_smoothup mg_smoothdown mg_galerkin "
    "mg_distinct_smoothup mg_multiplicative_cycles "
    "fieldsplit_type fieldsplit_schur_fact_type fieldsplit_schur_precondition "
    "fieldsplit_schur_scale fieldsplit_detect_saddle_point fieldsplit_block_size "
    "fieldsplit_default fieldsplit_diag_use_amat fieldsplit_off_diag_use_amat "
    "fieldsplit_gkb_tol fieldsplit_gkb_delay fieldsplit_gkb_nu fieldsplit_gkb_maxit "
    "asm_overlap asm_type asm_local_type asm_blocks gasm_overlap bjacobi_blocks "
    "bjacobi_local_blocks jacobi_type jacobi_abs jacobi_fixdiagonal sor_omega sor_its sor_lits "
    "sor_symmetric sor_backward sor_forward sor_local_symmetric sor_local_backward "
    "sor_local_forward eisenstat_omega composite_type composite_pcs redundant_number "
    "hypre_type hypre_boomeramg_strong_threshold hypre_boomeramg_max_iter hypre_boomeramg_tol "
    "hypre_boomeramg_coarsen_type hypre_boomeramg_interp_type hypre_boomeramg_relax_type_all "
    "hypre_boomeramg_agg_nl hypre_boomeramg_agg_num_paths hypre_boomeramg_max_levels "
    "hypre_boomeramg_truncfactor hypre_boomeramg_p_max hypre_boomeramg_nodal_coarsen "
    "hypre_boomeramg_vec_interp_variant hypre_boomeramg_numfunctions",
    "snes": "type rtol atol stol max_it max_funcs max_fail max_linear_solve_fail "
    "divergence_tolerance lag_jacobian lag_preconditioner lag_jacobian_persists "
    "lag_preconditioner_persists error_if_not_converged force_iteration norm_schedule "
    "function_type ksp_ew ksp_ew_version ksp_ew_rtol0 ksp_ew_rtolmax ksp_ew_gamma "
    "ksp_ew_alpha ksp_ew_alpha2 ksp_ew_threshold "
    "linesearch_type linesearch_damping linesearch_max_it linesearch_order linesearch_maxstep "
    "linesearch_maxlambda linesearch_minlambda linesearch_rtol linesearch_atol "
    "linesearch_ltol linesearch_norms linesearch_keeplambda linesearch_alpha",
    "mat": "mumps_cntl_\\d+ mumps_use_omp_threads superlu_dist_rowperm superlu_dist_colperm "
    "superlu_dist_replacetinypivot superlu_dist_iterrefine superlu_dist_equil "
    "superlu_dist_fact",
}
# MUMPS' ICNTL(1-3) are output streams (Fortran units: fort.N files) and ICNTL(22) switches
# to out-of-core factorisation (scratch files); ICNTL(4) is only the level of printing.
_MUMPS_ICNTL = r"mat_mumps_icntl_(?!(?:1|2|3|22)$)\d+"
# The fields of a named split ("pc_fieldsplit_<split>_fields = '0,1'").
_SPLIT_FIELDS = r"pc_fieldsplit_[a-z0-9_]+_fields"
_ALLOWED = re.compile(
    r"(?:[a-z0-9]+_)*?(?:"
    + "|".join(f"{solver}_(?:{'|'.join(names.split())})" for solver, names in _OPTIONS.items())
    + f"|{_MUMPS_ICNTL}|{_SPLIT_FIELDS})"
)
_WORD = r"[A-Za-z0-9_.+-]+"
_PLAIN = re.compile(rf"{_WORD}(?:,{_WORD})*")
_MAX_VALUE_LENGTH = 64
_INT32 = 2**31


def check_petsc_options(options: Mapping[str, Any], path: str) -> dict[str, Any]:
    """The case's PETSc options, each checked against the allow-list; a leading '-' is dropped.

    Args:
        options: Option name (without the solver's prefix) -> value, as in the case file.
        path: Case-file path of the table (``solver.petsc``).

    Raises:
        CaseError: An option outside the allow-list, or a value that is not plain.
    """
    checked = {}
    for given, value in options.items():
        name = given.removeprefix("-")
        where = f"{path}.{given}"
        if not _ALLOWED.fullmatch(name.lower()):
            raise CaseError(
                where,
                f"the PETSc option {shown(name)} is not one a case file may set: only solver "
                "settings are allowed (KSP, PC, SNES and line search, MUMPS numerical "
                "controls), never viewers, monitors, logs or files",
                "remove it; see 'PETSc options' in README.md for the rule",
            )
        _check_value(value, where)
        checked[name] = value
    return checked


def _check_value(value: Any, where: str) -> None:
    if isinstance(value, bool | float):
        return  # finite: the case loader refuses nan and inf everywhere
    if isinstance(value, int):
        if not -_INT32 < value < _INT32:
            raise CaseError(where, f"{value} is beyond PETSc's 32-bit integers")
        return
    if not isinstance(value, str) or len(value) > _MAX_VALUE_LENGTH or not _PLAIN.fullmatch(value):
        raise CaseError(
            where,
            f"expected a number, true/false or a word such as 'gmres' (letters, digits, "
            f"'_', '.', '+', '-'; lists separated by ','), got {shown(value)}",
            "PETSc option values in a case file never name files or viewers",
        )
