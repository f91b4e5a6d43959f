"""Elastic laws and the tensor pieces every law of the package is written with.

Every tensor is 3x3, also on 2D meshes: the out-of-plane row holds eps_zz (zero in plane
strain, the hoop strain u_r/r in axisymmetric), so one law serves every formulation.
"""

from typing import Any

import ufl

from app.contracts import deviatoric

#: A law as the plug-in holds it per region: the 3x3 normal block of the stiffness and the shear
#: moduli [G12, G13, G23].
Law = tuple[list[list[Any]], list[Any]]


def in_3d(tensor: Any, zz: Any = 0) -> Any:
    """A tensor of the mesh's dimension as 3x3: a 2D one gets ``zz`` out of plane."""
    if tensor.ufl_shape == (3, 3):
        return tensor
    t = tensor
    return ufl.as_matrix([[t[0, 0], t[0, 1], 0], [t[1, 0], t[1, 1], 0], [0, 0, zz]])


def von_mises(stress: Any) -> Any:
    """The von Mises stress of a 3x3 stress, sqrt(3/2 s:s)."""
    s = deviatoric(stress)
    return ufl.sqrt(1.5 * ufl.inner(s, s))


def isotropic(lam: Any, mu: Any) -> Law:
    """The law of an isotropic material with Lamé constants lambda and mu."""
    normal = [[lam + (2 * mu if i == j else 0) for j in range(3)] for i in range(3)]
    return normal, [mu] * 3


def linear_stress(law: Law, elastic: Any, plane_stress: bool = False) -> tuple[Any, Any]:
    """Stress and elastic strain (3x3) of an elastic strain for one law; in plane stress
    sigma_zz = 0 fixes the elastic eps_zz."""
    C, G = law
    el = [[elastic[i, j] for j in range(3)] for i in range(3)]
    if plane_stress:
        el[2][2] = -(C[2][0] * el[0][0] + C[2][1] * el[1][1]) / C[2][2]
    normal = [sum(C[i][k] * el[k][k] for k in range(3)) for i in range(3)]
    sigma = [[normal[i] if i == j else 0 for j in range(3)] for i in range(3)]
    for (i, j), modulus in {(0, 1): G[0], (0, 2): G[1], (1, 2): G[2]}.items():
        sigma[i][j] = sigma[j][i] = 2 * modulus * el[i][j]  # shear
    return ufl.as_matrix(sigma), ufl.as_matrix(el)


def neo_hookean(lam: Any, mu: Any, H: Any, eigenstrain: Any) -> tuple[Any, Any]:
    """First Piola stress and stored energy per reference volume of F = I + H = F_e F*, with
    F* = I + eps* (compressible Neo-Hookean)."""
    stretch = ufl.Identity(3) + eigenstrain  # F*, J* = det F*
    Fe = (ufl.Identity(3) + H) * ufl.inv(stretch)
    Je, inv_t, volume = ufl.det(Fe), ufl.inv(Fe).T, ufl.det(stretch)
    P = volume * (mu * (Fe - inv_t) + lam * ufl.ln(Je) * inv_t) * ufl.inv(stretch).T
    psi = mu / 2 * (ufl.tr(Fe.T * Fe) - 3) - mu * ufl.ln(Je) + lam / 2 * ufl.ln(Je) ** 2
    return P, volume * psi
