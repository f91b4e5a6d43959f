"""Backbones: the maps between an effective property and what a surrogate learns of it.

A surrogate never predicts a property directly. It predicts the correction ``h`` of a
Halpin-Tsai / Mori-Tanaka shape parameter (:mod:`app.multiscale.laws`) at volume fraction f::

    log xi = log xi_dilute + f h

so every prediction, whatever ``h`` is, lies between the Voigt and Reuss bounds, and the dilute
limit (f -> 0, first order) is that of the inclusion's shape exactly.

* :class:`TensorBackbone` (conductivity): xi is a symmetric positive-definite matrix
  Xi = expm(Lambda_dilute + f H) and the tensor is the Halpin-Tsai law applied to it as a matrix
  function (same eigenvectors, each eigenvalue through the scalar law): symmetric, positive
  definite and with every directional value n.K.n between the bounds, for any symmetric H. The
  learned outputs are H in Mandel order (off-diagonal terms times sqrt 2).
* :class:`ModuliBackbone` (elasticity): the isotropic projection of the stiffness, bulk and
  shear moduli (the in-plane bulk modulus k = K + G/3 for a plane-strain 2D cell), each through
  the scalar law with the Hashin-Shtrikman constraint; positive for any prediction.

``encode`` turns computed properties into learned outputs, ``decode`` goes back (vectorised
over states), ``relative_error`` is the measure a surrogate's tolerance is stated in.
"""

from __future__ import annotations

import math

import numpy as np

from app.multiscale import laws
from app.multiscale.materials import isotropic_moduli, isotropic_stiffness


def mandel_vector(matrices: np.ndarray) -> np.ndarray:
    """Symmetric (n, d, d) matrices as (n, d(d+1)/2) Mandel vectors."""
    d = matrices.shape[-1]
    rows, cols = np.triu_indices(d)
    weights = np.where(rows == cols, 1.0, math.sqrt(2))
    order = np.argsort(rows != cols, kind="stable")  # diagonal first, as in Mandel's order
    return (matrices[:, rows, cols] * weights)[:, order]


def mandel_matrix(vectors: np.ndarray, d: int) -> np.ndarray:
    """The inverse of :func:`mandel_vector`."""
    rows, cols = np.triu_indices(d)
    weights = np.where(rows == cols, 1.0, math.sqrt(2))
    order = np.argsort(rows != cols, kind="stable")
    matrices = np.zeros((len(vectors), d, d))
    values = np.empty_like(vectors)
    values[:, order] = vectors
    matrices[:, rows, cols] = values / weights
    matrices[:, cols, rows] = values / weights
    return matrices


class TensorBackbone:
    """Conductivity tensors (d x d) of a matrix k_m with inclusions k_i (0 for pores).

    Args:
        matrix: k_m > 0.
        inclusion: k_i >= 0, not equal to k_m.
        dilute: Lambda_dilute = logm(Xi_dilute), the symmetric d x d log shape parameter of the
            inclusion's dilute limit (diag(log(1/L - 1)) in its axes, turned into the cell's).
    """

    kind = "conductivity"

    def __init__(self, matrix: float, inclusion: float, dilute: np.ndarray):
        self.matrix, self.inclusion = matrix, inclusion
        self.dilute = np.asarray(dilute, float)
        self.dim = self.dilute.shape[0]
        self.outputs = self.dim * (self.dim + 1) // 2

    def decode(self, fraction: np.ndarray, learned: np.ndarray) -> np.ndarray:
        fraction = np.asarray(fraction, float)
        log_xi = self.dilute + fraction[:, None, None] * mandel_matrix(learned, self.dim)
        values, vectors = np.linalg.eigh(log_xi)
        xi = np.exp(np.clip(values, -laws.LOG_XI_LIMIT, laws.LOG_XI_LIMIT))
        principal = laws.halpin_tsai(self.matrix, self.inclusion, fraction[:, None], xi)
        return np.einsum("nij,nj,nkj->nik", vectors, principal, vectors)

    def encode(self, fraction: np.ndarray, tensors: np.ndarray) -> np.ndarray:
        fraction = np.asarray(fraction, float)
        symmetric = (tensors + np.swapaxes(tensors, 1, 2)) / 2
        values, vectors = np.linalg.eigh(symmetric)
        xi = laws.halpin_tsai_xi(self.matrix, self.inclusion, fraction[:, None], values)
        log_xi = np.einsum("nij,nj,nkj->nik", vectors, np.log(xi), vectors)
        return mandel_vector((log_xi - self.dilute) / fraction[:, None, None])

    def relative_error(self, predicted: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Frobenius norm of the difference over that of the reference, per state."""
        difference = np.linalg.norm(predicted - reference, axis=(1, 2))
        return difference / np.linalg.norm(reference, axis=(1, 2))

    def bounds(self, fraction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lowest, highest) value any directional property n.K.n may take."""
        low = laws.reuss(self.matrix, self.inclusion, fraction)
        high = laws.voigt(self.matrix, self.inclusion, fraction)
        return np.minimum(low, high), np.maximum(low, high)

    def components(self, properties: np.ndarray) -> dict[str, np.ndarray]:
        """Directional values along the cell's axes (monotonicity checks, plots)."""
        return {f"k_{'xyz'[a]}{'xyz'[a]}": properties[:, a, a] for a in range(self.dim)}

    def trends(self) -> dict[str, float]:
        """+1 for components that grow with the volume fraction, -1 for those that fall."""
        sign = float(np.sign(self.inclusion - self.matrix))
        return {f"k_{'xyz'[a]}{'xyz'[a]}": sign for a in range(self.dim)}


class ModuliBackbone:
    """Isotropic bulk and shear moduli of a matrix (K_m, G_m) with inclusions (K_i, G_i).

    Properties are (n, 2) arrays of the learned pair: (K, G) of a 3D cell, (k, G) of a 2D
    plane-strain cell with k = K + G/3; :meth:`moduli` gives the 3D (K, G) of either.

    Args:
        matrix: (K_m, G_m), positive.
        inclusion: (K_i, G_i), non-negative (0, 0 for pores).
        dim: Dimension of the cell.
        dilute: (xi_bulk, xi_shear) of the dilute limit (None: the Hashin-Shtrikman constraint,
            exact for spheres in 3D and aligned cylinders in 2D).
    """

    kind = "elasticity"
    outputs = 2

    def __init__(self, matrix, inclusion, dim: int, dilute=None):
        self.dim, self._shift = dim, 0.0 if dim == 3 else 1 / 3
        bulk_m, shear_m = matrix
        self.matrix = np.array([bulk_m + self._shift * shear_m, shear_m])
        self.inclusion = np.array([inclusion[0] + self._shift * inclusion[1], inclusion[1]])
        if dilute is None:
            dilute = np.array(laws.elastic_constraints(bulk_m, shear_m, dim)) / self.matrix
        self.dilute = np.log(np.asarray(dilute, float))

    def decode(self, fraction: np.ndarray, learned: np.ndarray) -> np.ndarray:
        fraction = np.asarray(fraction, float)[:, None]
        log_xi = np.clip(self.dilute + fraction * learned, -laws.LOG_XI_LIMIT, laws.LOG_XI_LIMIT)
        return laws.halpin_tsai(self.matrix, self.inclusion, fraction, np.exp(log_xi))

    def encode(self, fraction: np.ndarray, properties: np.ndarray) -> np.ndarray:
        fraction = np.asarray(fraction, float)[:, None]
        xi = laws.halpin_tsai_xi(self.matrix, self.inclusion, fraction, properties)
        return (np.log(xi) - self.dilute) / fraction

    def relative_error(self, predicted: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """The larger relative error of the two moduli, per state."""
        return np.max(np.abs(predicted - reference) / np.abs(reference), axis=1)

    def bounds(self, fraction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        fraction = np.asarray(fraction, float)[:, None]
        low = laws.reuss(self.matrix, self.inclusion, fraction)
        high = laws.voigt(self.matrix, self.inclusion, fraction)
        return np.minimum(low, high), np.maximum(low, high)

    def moduli(self, properties: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """3D bulk and shear moduli."""
        return properties[:, 0] - self._shift * properties[:, 1], properties[:, 1]

    def from_stiffness(self, stiffness: np.ndarray) -> np.ndarray:
        """The learned pair of a computed Mandel stiffness (its isotropic projection)."""
        bulk, shear = isotropic_moduli(stiffness)
        return np.array([bulk + self._shift * shear, shear])

    def stiffness(self, properties: np.ndarray) -> np.ndarray:
        """Mandel stiffness of each state (for positive-definiteness checks)."""
        bulk, shear = self.moduli(properties)
        return np.array(
            [isotropic_stiffness(k, g, self.dim) for k, g in zip(bulk, shear, strict=True)]
        )

    def components(self, properties: np.ndarray) -> dict[str, np.ndarray]:
        return {name: properties[:, i] for i, name in enumerate(self._names)}

    def trends(self) -> dict[str, float]:
        signs = np.sign(self.inclusion - self.matrix)
        return {name: float(signs[i]) for i, name in enumerate(self._names)}

    @property
    def _names(self) -> tuple[str, str]:
        return ("bulk_modulus", "shear_modulus") if self.dim == 3 else ("planar_bulk", "shear")
