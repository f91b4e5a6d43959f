"""[output.plots]: figures a case asks for, drawn into the run folder when the run ends.

- A run writes plots/<name>.png on rank 0: one panel per list of columns (the figure's height
  follows the panels), the lines the columns hold;
- a misspelt column is one case error at its place in the case, with the closest column, before
  anything runs (``scalebridge check`` exits 2).
"""

import matplotlib.image

from app.cli import main
from app.simulation import Simulation
from tests.conftest import CASES
from tests.test_protocol_ramps import body_in_air


def test_a_run_draws_the_figures_of_its_case(tmp_path):
    case = body_in_air(["Ramp to 310 K at 2 K/min"], dt=30.0)
    case["output"] = {"xdmf": False, "plots": {"warming": {"panels": [["temperature_K"]] * 3}}}
    Simulation.from_case(case).run(tmp_path / "run")
    image = matplotlib.image.imread(tmp_path / "run" / "plots" / "warming.png")
    assert image.shape[:2] == (round((2.6 * 3 + 0.8) * 100), 800)  # three panels, 8 in wide


def test_an_unknown_column_is_one_case_error(capsys):
    code = main(
        [
            "check",
            str(CASES / "laminate_cure.toml"),
            "--set",
            'output.plots.cure_cycle.panels=[["centre_temperature_K", "surface_temprature_K"]]',
        ]
    )
    assert code == 2
    message = capsys.readouterr().err
    assert "output.plots.cure_cycle.panels[0][1]: unknown column 'surface_temprature_K'" in message
    assert "(did you mean 'surface_temperature_K'?)" in message
    assert "Traceback" not in message
