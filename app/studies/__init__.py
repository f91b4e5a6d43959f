"""Studies: sweeps, sensitivity analysis, uncertainty propagation and Bayesian calibration over
a case file, run in parallel on groups of MPI ranks.

- :mod:`~app.studies.spec`: the study file's schema;
- :mod:`~app.studies.checks`: the study against its case, before anything runs;
- :mod:`~app.studies.design`: the members (parameter values) each method asks for;
- :mod:`~app.studies.members`: running one member on a group's communicator;
- :mod:`~app.studies.table`: the study folder and its results table (resume);
- :mod:`~app.studies.runner`: the MPI layout, :class:`Study`;
- :mod:`~app.studies.analysis`, :mod:`~app.studies.calibration`, :mod:`~app.studies.plots`:
  statistics (SALib, chaospy, emcee, scikit-learn) and figures.

Example::

    from app.studies import Study
    table = Study.from_file("cases/studies/heated_rod_sobol.toml").run()
"""


def __getattr__(name: str):
    # The runner pulls in DOLFINx; `app.studies.spec` alone stays light.
    if name == "Study":
        from app.studies.runner import Study

        return Study
    if name == "StudyTable":
        from app.studies.table import StudyTable

        return StudyTable
    raise AttributeError(name)
