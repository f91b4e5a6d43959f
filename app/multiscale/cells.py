"""Helpers for gmsh scripts of periodic unit cells (meshes/rve_*.py); gmsh only, no DOLFINx."""


def make_periodic(model, dim: int, tolerance: float = 1e-6) -> None:
    """Mesh each face of the unit cell [0, 1]^dim on a high side of an axis as the translated
    copy of its opposite face (``gmsh.model.mesh.setPeriodic``), so opposite nodes match.

    Call it after ``occ.synchronize()`` and before meshing. A face inside an opposite face's
    bounding box (the end of a fibre inside a cell face) is told apart by its own box.

    Raises:
        RuntimeError: A face has no single partner (the geometry is not periodic).
    """
    for axis in range(dim):
        shift = [0.0, 0.0, 0.0]
        shift[axis] = 1.0
        affine = [1, 0, 0, shift[0], 0, 1, 0, shift[1], 0, 0, 1, shift[2], 0, 0, 0, 1]
        box_low, box_high = [-tolerance] * 3, [1 + tolerance] * 3
        box_low[axis], box_high[axis] = 1 - tolerance, 1 + tolerance
        for _, face in model.getEntitiesInBoundingBox(*box_low, *box_high, dim - 1):
            box = model.getBoundingBox(dim - 1, face)
            image = [value - shift[i % 3] for i, value in enumerate(box)]
            candidates = model.getEntitiesInBoundingBox(
                *(v - tolerance for v in image[:3]), *(v + tolerance for v in image[3:]), dim - 1
            )
            partners = [
                tag
                for _, tag in candidates
                if _same_box(model.getBoundingBox(dim - 1, tag), image, tolerance)
            ]
            if len(partners) != 1:
                raise RuntimeError(f"no single face opposite face {face} along axis {axis}")
            model.mesh.setPeriodic(dim - 1, [face], partners, affine)


def _same_box(box, other, tolerance: float) -> bool:
    return max(abs(a - b) for a, b in zip(box, other, strict=True)) < tolerance
