"""A two-layer wall as a gmsh Python script: the ``.py`` route of ScaleBridge meshes.

A case file points at this script and may set its parameters::

    [mesh]
    type = "gmsh"
    file = "meshes/two_layer.py"
    size = "5 mm"                 # optional: largest cell size
    parameters = { brick_thickness = 0.2 }

ScaleBridge loads the file, calls ``build(model, **parameters)`` with ``model = gmsh.model`` and
then does the rest itself: it applies ``size``, meshes in the model's dimension, raises the
geometry order if asked and hands the mesh to DOLFINx. So a script only describes

* the geometry (here with the OpenCASCADE kernel, ``model.occ``), synchronised into the model;
* physical groups: those of the top dimension become the regions of the case, those one
  dimension lower the boundaries, named by their physical names. Every cell must lie in exactly
  one region; facets need a group only if the case refers to them.

It must not call ``gmsh.initialize``/``gmsh.finalize`` or generate the mesh. It may set meshing
defaults through ``gmsh.option``; the case's ``size`` overrides ``Mesh.CharacteristicLengthMax``.

The same geometry is available as ``meshes/two_layer.geo``.
"""

import gmsh


def build(model, insulation_thickness=0.05, brick_thickness=0.10, height=0.05):
    """Insulation x in [0, L1] against brick x in [L1, L1 + L2], height H (metres).

    Regions: "insulation", "brick". Boundaries: "left" (x = 0), "right" (x = L1 + L2),
    "bottom" (y = 0), "top" (y = H) across the whole width, and "interface" (x = L1).
    """
    l1, l2, h = insulation_thickness, brick_thickness, height
    gmsh.option.setNumber("Mesh.CharacteristicLengthMax", 0.01)

    insulation = model.occ.addRectangle(0, 0, 0, l1, h)
    brick = model.occ.addRectangle(l1, 0, 0, l2, h)
    # Fragmenting makes the layers share the interface curve, so the mesh is conforming there.
    model.occ.fragment([(2, insulation)], [(2, brick)])
    model.occ.synchronize()

    # Fragmenting may renumber entities, so find them by position.
    eps = 1e-6 * (l1 + l2)

    def inside(dim, x0, y0, x1, y1):
        box = (x0 - eps, y0 - eps, -eps, x1 + eps, y1 + eps, eps)
        return [tag for _, tag in model.getEntitiesInBoundingBox(*box, dim)]

    model.addPhysicalGroup(2, inside(2, 0, 0, l1, h), tag=1, name="insulation")
    model.addPhysicalGroup(2, inside(2, l1, 0, l1 + l2, h), tag=2, name="brick")
    model.addPhysicalGroup(1, inside(1, 0, 0, 0, h), tag=1, name="left")
    model.addPhysicalGroup(1, inside(1, l1 + l2, 0, l1 + l2, h), tag=2, name="right")
    model.addPhysicalGroup(1, inside(1, 0, 0, l1 + l2, 0), tag=3, name="bottom")
    model.addPhysicalGroup(1, inside(1, 0, h, l1 + l2, h), tag=4, name="top")
    model.addPhysicalGroup(1, inside(1, l1, 0, l1, h), tag=5, name="interface")
