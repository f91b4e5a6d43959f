"""The example studies in cases/studies/ are valid, and the two-layer wall grid matches the
layered closed form member by member (the other examples run in test_studies.py and
test_study_calibration.py)."""

import numpy as np
import pytest

from app.studies.runner import Study
from tests.conftest import CASES, ROOT

EXAMPLES = sorted((CASES / "studies").glob("*.toml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_study_is_valid(path, tmp_path):
    study = Study.from_file(path, tmp_path / "out")
    assert study.quantities and study.names
    assert not (tmp_path / "out").exists()  # checked, nothing run


def test_two_layer_wall_grid_matches_the_layered_closed_form(tmp_path):
    study = Study.from_file(CASES / "studies" / "two_layer_wall_grid.toml", tmp_path / "out")
    table = study.run()
    insulation = table.parameters["physics.heat.conductivity.insulation"]
    insulation = np.array([float(text.split()[0]) for text in insulation])  # "0.03 W/(m*K)"
    brick = table.parameters["physics.heat.conductivity.brick"]
    assert len(table) == 6 and table.completed.all()
    height, difference = 0.05, 25.0  # m, K (meshes/two_layer.geo; 20 degC inside, -5 outside)
    flow = height * difference / (0.05 / insulation + 0.10 / brick)
    assert np.allclose(table.quantities["heat_loss"], flow, rtol=1e-8)


def test_readme_study_example_is_valid(tmp_path):
    """The annotated study file in README.md checks against its case as written."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index('```toml\ntitle = "Heated rod')
    text = readme[start + len("```toml\n") : readme.index("```", start + 7)]
    studies = tmp_path / "cases" / "studies"
    studies.mkdir(parents=True)
    (tmp_path / "cases" / "heated_rod.toml").write_text((CASES / "heated_rod.toml").read_text())
    (studies / "readme.toml").write_text(text)
    study = Study.from_file(studies / "readme.toml", tmp_path / "out")
    assert study.names == ["physics.heat.conductivity", "k"]
    assert len(study.design.values) == 256 * (2 + 2)
