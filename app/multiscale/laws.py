"""Closed-form laws of two-phase composites: bounds, Halpin-Tsai / Mori-Tanaka, dilute limits.

A matrix property P_m holds inclusions of property P_i at volume fraction f. Every law here is
a special case of the Halpin-Tsai form with a constraint value c = xi P_m::

    P(xi) = P_m + f (P_i - P_m)(P_m + c) / ((1 - f) P_i + f P_m + c)

which is the Reuss bound (series) at xi -> 0, the Voigt bound (parallel) at xi -> infinity and
increases monotonically in between, for any contrast (pores: P_i = 0). With the constraint of
Hashin and Shtrikman it is their lower bound, which is also Mori-Tanaka's estimate for spheres
(3D) or aligned cylinders (2D); with the matrix and inclusion swapped it is their upper bound:

    conductivity   c = (d - 1) k_m, or (1/L - 1) k_m along an ellipsoid's axis of
                   depolarisation factor L (the dilute limit of that inclusion, exact)
    bulk (3D)      c = 4 G_m / 3
    shear (3D)     c = G_m (9 K_m + 8 G_m) / (6 (K_m + 2 G_m))
    bulk (2D)      c = G_m          (in-plane bulk k = K + G/3 of a plane-strain cell)
    shear (2D)     c = G_m k_m / (k_m + 2 G_m)

So a positive shape parameter xi is all a surrogate needs to learn: whatever it predicts lies
within the bounds, and at xi = xi_dilute the first order in f is exact.
"""

from __future__ import annotations

import math

import numpy as np

LOG_XI_LIMIT = 25.0  # |log xi| beyond this is the bound itself (a laminate's Voigt or Reuss value)


def halpin_tsai(matrix, inclusion, fraction, xi):
    """P(xi) of the module docstring (arrays broadcast)."""
    matrix, inclusion = np.asarray(matrix, float), np.asarray(inclusion, float)
    constraint = np.asarray(xi, float) * matrix
    excess = fraction * (inclusion - matrix) * (matrix + constraint)
    return matrix + excess / ((1 - fraction) * inclusion + fraction * matrix + constraint)


def halpin_tsai_xi(matrix, inclusion, fraction, value):
    """The xi with P(xi) = ``value``; values at or beyond a bound give xi at LOG_XI_LIMIT."""
    matrix, inclusion = np.asarray(matrix, float), np.asarray(inclusion, float)
    fraction = np.asarray(fraction, float)
    low, high = reuss(matrix, inclusion, fraction), voigt(matrix, inclusion, fraction)
    lower, upper = np.minimum(low, high), np.maximum(low, high)
    span = upper - lower
    inner = np.clip(value, lower + 1e-11 * span, upper - 1e-11 * span)
    excess = inner - matrix
    step = fraction * (inclusion - matrix)
    numerator = step * matrix - excess * ((1 - fraction) * inclusion + fraction * matrix)
    with np.errstate(divide="ignore", invalid="ignore"):
        xi = numerator / (matrix * (excess - step))
    limit = math.exp(LOG_XI_LIMIT)
    return np.clip(np.nan_to_num(xi, nan=1.0, posinf=limit), 1 / limit, limit)


def voigt(matrix, inclusion, fraction):
    """Arithmetic mean (parallel layers): the upper Wiener/Voigt bound."""
    return (1 - fraction) * np.asarray(matrix, float) + fraction * np.asarray(inclusion, float)


def reuss(matrix, inclusion, fraction):
    """Harmonic mean (series layers): the lower Wiener/Reuss bound; 0 with pores."""
    matrix, inclusion = np.asarray(matrix, float), np.asarray(inclusion, float)
    product = matrix * inclusion
    denominator = (1 - fraction) * inclusion + fraction * matrix
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(product == 0, 0.0, product / np.where(denominator == 0, 1, denominator))


def conductivity_xi(depolarisation) -> np.ndarray:
    """Dilute shape parameters xi = 1/L - 1 along an inclusion's axes of depolarisation
    factors L (sum 1 in 3D; circle 1/2 each, sphere 1/3 each; L = 0 along a fibre)."""
    factors = np.asarray(depolarisation, float)
    limit = math.exp(LOG_XI_LIMIT)
    with np.errstate(divide="ignore"):
        return np.clip(1 / factors - 1, 1 / limit, limit)


def hashin_shtrikman_conductivity(matrix, inclusion, fraction, dim):
    """(lower, upper) Hashin-Shtrikman bounds of an isotropic d-dimensional mixture."""
    one = halpin_tsai(matrix, inclusion, fraction, dim - 1)
    other = halpin_tsai(inclusion, matrix, 1 - fraction, dim - 1)  # the phases swapped
    return np.minimum(one, other), np.maximum(one, other)


def elastic_constraints(bulk, shear, dim) -> tuple:
    """Hashin-Shtrikman constraint values (c_bulk, c_shear) of a matrix; in 2D for the
    in-plane bulk modulus k = K + G/3 of a plane-strain cell."""
    if dim == 3:
        return 4 * shear / 3, shear * (9 * bulk + 8 * shear) / (6 * (bulk + 2 * shear))
    planar = bulk + shear / 3
    return shear, shear * planar / (planar + 2 * shear)


def mori_tanaka(matrix, inclusion, fraction, dim) -> tuple:
    """Mori-Tanaka (= Hashin-Shtrikman lower for a stiffer inclusion) bulk and shear moduli of
    spheres (3D) or aligned cylinders in plane strain (2D; returned as 3D K = k - G/3, G).
    ``matrix`` and ``inclusion`` are (K, G) pairs."""
    (bulk_m, shear_m), (bulk_i, shear_i) = matrix, inclusion
    c_bulk, c_shear = elastic_constraints(bulk_m, shear_m, dim)
    shift = 0 if dim == 3 else 1 / 3
    planar_m, planar_i = bulk_m + shift * shear_m, bulk_i + shift * shear_i
    bulk = halpin_tsai(planar_m, planar_i, fraction, c_bulk / planar_m)
    shear = halpin_tsai(shear_m, shear_i, fraction, c_shear / shear_m)
    return bulk - shift * shear, shear


def rotation(angle_degrees: float, dim: int) -> np.ndarray:
    """Rotation by an angle about z (the in-plane axis of a 2D cell)."""
    turn = math.radians(angle_degrees)
    c, s = math.cos(turn), math.sin(turn)
    matrix = np.eye(dim)
    matrix[:2, :2] = [[c, -s], [s, c]]
    return matrix
