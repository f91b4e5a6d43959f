"""What a unit cell is made of, and the tensor algebra of the two property kinds.

Two kinds of effective property are homogenised:

* ``conductivity``: any second-order transport tensor (heat conductivity, diffusivity, electric
  conductivity, permeability); the flux of a gradient g is ``k g``; the effective tensor is
  d x d.
* ``elasticity``: small-strain isotropic phases given by bulk and shear moduli (K, G); 2D cells
  are in plane strain (fibres or prisms along z); the effective stiffness is written in Mandel
  notation (a symmetric 3 x 3 matrix in 2D, 6 x 6 in 3D, whose eigenvalues are those of the
  fourth-order tensor), with strains [e11, e22, sqrt2 e12] in 2D and
  [e11, e22, e33, sqrt2 e23, sqrt2 e13, sqrt2 e12] in 3D.

Each kind gives the load cases of a cell problem (unit gradients or unit Mandel strains), the
flux of a gradient in UFL, and the isotropic projection of an effective tensor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import ufl

SQRT2 = math.sqrt(2.0)
# Mandel order of the symmetric index pairs
PAIRS = {2: [(0, 0), (1, 1), (0, 1)], 3: [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]}


def mandel_basis(dim: int) -> list[np.ndarray]:
    """The orthonormal basis of symmetric d x d tensors in Mandel order."""
    basis = []
    for i, j in PAIRS[dim]:
        tensor = np.zeros((dim, dim))
        if i == j:
            tensor[i, i] = 1.0
        else:
            tensor[i, j] = tensor[j, i] = 1 / SQRT2
        basis.append(tensor)
    return basis


@dataclass(frozen=True)
class Conduction:
    """Phases by region name: conductivity (any transport coefficient) in SI units."""

    values: Mapping[str, float]

    kind = "conductivity"

    def shape(self, dim: int) -> tuple[int, ...]:
        return ()

    def load_cases(self, dim: int) -> list[np.ndarray]:
        return list(np.eye(dim))

    def gradient(self, u: ufl.core.expr.Expr) -> ufl.core.expr.Expr:
        return ufl.grad(u)

    def flux(self, gradient: ufl.core.expr.Expr, moduli: dict) -> ufl.core.expr.Expr:
        return moduli["k"] * gradient

    def moduli(self, region: str) -> dict[str, float]:
        return {"k": self.values[region]}

    def boundary_average(self, u: ufl.core.expr.Expr, n: ufl.core.expr.Expr) -> ufl.core.expr.Expr:
        """The integrand over the cell's faces whose integral is the volume integral of the
        gradient (so it counts pores, which have no cells)."""
        return u * n

    def gauge(self, dim: int) -> list[tuple[tuple[int, ...], int]]:
        """(corner as 0/1 per axis, component) pinned against the constant of a pure Neumann
        problem."""
        return [((0,) * dim, 0)]

    def positive(self, region: str) -> bool:
        return self.values[region] > 0


@dataclass(frozen=True)
class Elasticity:
    """Phases by region name: (bulk modulus K, shear modulus G) in Pa; 2D is plane strain."""

    values: Mapping[str, tuple[float, float]]

    kind = "elasticity"

    def shape(self, dim: int) -> tuple[int, ...]:
        return (dim,)

    def load_cases(self, dim: int) -> list[np.ndarray]:
        return mandel_basis(dim)

    def gradient(self, u: ufl.core.expr.Expr) -> ufl.core.expr.Expr:
        return ufl.sym(ufl.grad(u))

    def flux(self, strain: ufl.core.expr.Expr, moduli: dict) -> ufl.core.expr.Expr:
        # plane strain on 2D cells: the trace of the 3D strain is that of the 2D one
        dim = ufl.shape(strain)[0]
        lame = moduli["K"] - 2 * moduli["G"] / 3
        return lame * ufl.tr(strain) * ufl.Identity(dim) + 2 * moduli["G"] * strain

    def moduli(self, region: str) -> dict[str, float]:
        bulk, shear = self.values[region]
        return {"K": bulk, "G": shear}

    def boundary_average(self, u: ufl.core.expr.Expr, n: ufl.core.expr.Expr) -> ufl.core.expr.Expr:
        return ufl.sym(ufl.outer(u, n))

    def gauge(self, dim: int) -> list[tuple[tuple[int, ...], int]]:
        """Dofs that hold a body under self-equilibrated tractions, statically determinate: a
        corner fixed, the next corner along x held across x (and along z in 3D), and in 3D the
        corner along y held along z."""
        if dim == 2:
            return [((0, 0), 0), ((0, 0), 1), ((1, 0), 1)]
        return [
            ((0, 0, 0), 0),
            ((0, 0, 0), 1),
            ((0, 0, 0), 2),
            ((1, 0, 0), 1),
            ((1, 0, 0), 2),
            ((0, 1, 0), 2),
        ]

    def positive(self, region: str) -> bool:
        return min(self.values[region]) > 0


def isotropic_moduli(stiffness: np.ndarray) -> tuple[float, float]:
    """Bulk and shear modulus of the isotropic projection of a Mandel stiffness.

    In 3D the bulk K = (1 : C : 1)/9 and G = (C :: deviatoric projector)/10; for a 2D
    plane-strain cell the in-plane bulk modulus k = (1 : C : 1)/4 and G = (C :: dev)/4, which
    return the 3D moduli K = k - G/3 and G (plane strain: k = K + G/3).
    """
    dim = {3: 2, 6: 3}[stiffness.shape[0]]
    ones = np.array([1.0] * dim + [0.0] * (stiffness.shape[0] - dim))
    volumetric = np.outer(ones, ones) / dim
    deviatoric = np.eye(stiffness.shape[0]) - volumetric
    bulk = ones @ stiffness @ ones / dim**2
    shear = float(np.sum(stiffness * deviatoric)) / (2 * (stiffness.shape[0] - 1))
    if dim == 2:
        bulk -= shear / 3
    return float(bulk), shear


def isotropic_stiffness(bulk: float, shear: float, dim: int) -> np.ndarray:
    """Mandel stiffness of an isotropic material (plane strain in 2D)."""
    size = 3 if dim == 2 else 6
    ones = np.array([1.0] * dim + [0.0] * (size - dim))
    lame = bulk - 2 * shear / 3
    return lame * np.outer(ones, ones) + 2 * shear * np.eye(size)
