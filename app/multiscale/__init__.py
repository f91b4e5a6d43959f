"""Two-scale constitutive laws: unit-cell (RVE) homogenisation served to macro models through a
physics-constrained surrogate that refreshes itself where it is unsure.

Where things live:

* ``spec``: the ``[surrogates.<name>]`` case section (schema, phases);
* ``cells``: helpers for the gmsh scripts of periodic cells (meshes/rve_*.py);
* ``microstructure``: a section's script, meshing cells on a communicator;
* ``periodic``, ``materials``, ``rve``: the cell problems (periodic prolongation, conductivity
  and elasticity, minimal/periodic/kinematic conditions);
* ``laws``, ``backbones``, ``surrogate``: closed forms, the bounded maps between properties and
  what is learned, and the Gaussian-process surrogate;
* ``batch``, ``database``: RVE solves on sub-communicators, and their JSON-lines records;
* ``plastic_cell``, ``ensemble``: nonlinear cells with a J2 history (strain increment in, average
  stress and consistent tangent out), one per macro point on sub-communicators;
* ``rve_spec``, ``fe2``: the ``[rves.<name>]`` section and FE2, a cell per quadrature point of
  a macro problem as the law of ``constitutive = { rve = ... }`` (app/pointwise_law.py);
* ``properties``, ``served``, ``manager``: what a ``{ surrogate = ... }`` parameter receives, one
  surrogate during a run, and the hooks the simulation calls around each step;
* ``plot``: the PNG of a surrogate against its training points.

Nothing here imports the simulation; :mod:`app.simulation` creates a
:class:`~app.multiscale.manager.Multiscale` and calls it.
"""
