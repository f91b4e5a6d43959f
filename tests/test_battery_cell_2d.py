"""cases/battery_cell_2d.toml: the DFN on the (x, y, r) mesh of a 2D cell with tabs.

- With tabs over the whole collector edges the cell is uniform in y and its voltage is the 1D
  cell's (battery_discharge.toml on the same x and r cells) within 2 mV RMS (0.1 mV measured);
  the reaction at the two ends of the strip is the same.
- Narrow tabs: the current crowds toward the tabs, so the reaction current density differs
  along y and the voltage drops below the uniform cell's.
- The same answers on 1 and 2 ranks; lithium and salt conserved to 1e-10.
"""

import tomllib
from pathlib import Path

import numpy as np
import pytest

from tests.battery import CASE, SMALL_MESH, discharge, every_step
from tests.conftest import ROOT, assert_same_by_units, runs_on_ranks, scalebridge
from tests.test_battery_cycling import _thermal_free, header_commands

CELL_2D = ROOT / "cases" / "battery_cell_2d.toml"
SCRIPT = ROOT / "meshes" / "battery_cell_2d.py"
HEIGHT = 172.8e-6  # the case's strip: as thick as the cell (L)
STEPS = 'protocol.steps=["Discharge at 1C for 10 minutes"]'
# SMALL_MESH's x and r cells, 2 cells along y
CELLS = "negative_cells = 8, separator_cells = 4, positive_cells = 8, radial_cells = 6"
# the reaction current density of the positive electrode at its middle, at both ends of y
PROBES = [
    f"output.probes.{name}={{ at = [{x}, {y}, 1], fields = ['j_p'] }}"
    for name, x, y in (("lower", 1.35e-4, 0), ("upper", 1.35e-4, HEIGHT))
]


def settings(**tabs: float) -> list[str]:
    """--set values of a short discharge of the 2D cell with small meshes (and tab widths)."""
    parameters = ", ".join(
        [CELLS, "height_cells = 2", "radial_grading = 1.5", f"height = {HEIGHT}"]
        + [f"{name}_tab_width = {width}" for name, width in tabs.items()]
    )
    return [f"mesh.file={SCRIPT}", f"mesh.parameters={{ {parameters} }}", STEPS, *PROBES]


def as_arrays(columns: dict) -> dict[str, np.ndarray]:
    return {name: np.array(values) for name, values in columns.items()}


@pytest.fixture(scope="module")
def cells(tmp_path_factory) -> dict[str, dict[str, np.ndarray]]:
    folder = tmp_path_factory.mktemp("cell_2d")
    one_d = discharge(folder / "1d", *SMALL_MESH, "mesh.radial_grading=1.5", STEPS)
    narrow = discharge(
        folder / "narrow",
        *settings(negative=HEIGHT / 4, positive=HEIGHT / 4),
        case=CELL_2D,
    )
    args = [a for setting in settings() for a in ("--set", setting)]
    serial, parallel = runs_on_ranks(_every_step(folder), folder, *args)
    return {"1d": one_d, "2d": as_arrays(serial), "2d_np2": as_arrays(parallel), "narrow": narrow}


def _every_step(folder: Path) -> Path:
    return every_step(folder / "every_step", CELL_2D)


def test_uniform_2d_cell_has_the_1d_voltage(cells):
    one_d, two_d = cells["1d"], cells["2d"]
    voltage = np.interp(one_d["time_s"], two_d["time_s"], two_d["voltage_V"])
    rms = np.sqrt(np.mean((voltage - one_d["voltage_V"]) ** 2))
    assert rms < 2e-3
    assert two_d["current_A"] == pytest.approx(5.0, rel=1e-12)  # 1C of the 5 A h cell
    assert two_d["voltage_V"][-1] < two_d["voltage_V"][0] - 0.05  # it did discharge
    # uniform along y: the same reaction at both ends of the strip
    lower, upper = two_d["lower_j_p_A_per_m2"], two_d["upper_j_p_A_per_m2"]
    assert upper == pytest.approx(lower, rel=1e-8)


def test_lithium_and_salt_are_conserved_and_match_the_1d_cell(cells):
    for name in ("2d", "narrow"):
        for column in ("cyclable_lithium_mol", "electrolyte_salt_mol"):
            amount = cells[name][column]
            assert np.abs(amount / amount[0] - 1).max() < 1e-10, (name, column)
    for column in ("cyclable_lithium_mol", "electrolyte_salt_mol"):
        assert cells["2d"][column][0] == pytest.approx(cells["1d"][column][0], rel=1e-9)


def test_narrow_tabs_make_the_reaction_non_uniform(cells):
    """Tabs over the lower quarter: the positive electrode (0.18 S/m) carries the current along
    y to its tab, so the reaction crowds toward it and the voltage falls below the uniform
    cell's by the extra ohmic drop."""
    narrow, uniform = cells["narrow"], cells["2d"]
    lower, upper = narrow["lower_j_p_A_per_m2"][1:], narrow["upper_j_p_A_per_m2"][1:]
    crowding = lower / upper  # j_p < 0 on discharge, larger near the tab
    assert np.all(crowding > 1.005)
    assert crowding.max() > 2  # at first; the tab's side then depletes and the reaction spreads
    voltage = np.interp(uniform["time_s"], narrow["time_s"], narrow["voltage_V"])
    assert np.all(voltage[1:] < uniform["voltage_V"][1:] - 1e-4)
    assert narrow["current_A"] == pytest.approx(5.0, rel=1e-12)


def test_same_2d_discharge_on_two_ranks(cells):
    serial, parallel = cells["2d"], cells["2d_np2"]
    assert np.array_equal(serial["time_s"], parallel["time_s"])
    assert np.abs(serial["voltage_V"] - parallel["voltage_V"]).max() < 1e-8
    assert_same_by_units(
        {k: list(v) for k, v in serial.items()}, {k: list(v) for k, v in parallel.items()}, 1e-8
    )


def test_the_mesh_names_the_tabs_apart_from_the_collector_edges():
    import gmsh

    gmsh.initialize(readConfigFiles=False)
    try:
        namespace: dict = {}
        exec(compile(SCRIPT.read_text(), str(SCRIPT), "exec"), namespace)
        namespace["build"](
            gmsh.model, height=1e-4, positive_tab_start=2e-5, positive_tab_width=3e-5
        )
        names = {
            gmsh.model.getPhysicalName(dim, tag): (dim, tag)
            for dim, tag in gmsh.model.getPhysicalGroups()
        }
        assert "negative_edge" not in names  # the negative tab spans its whole edge
        lengths = {}
        for name in ("negative_tab", "positive_tab", "positive_edge", "top"):
            dim, tag = names[name]
            boxes = [
                gmsh.model.getBoundingBox(dim, entity)
                for entity in gmsh.model.getEntitiesForPhysicalGroup(dim, tag)
            ]
            lengths[name] = sum(box[4] - box[1] for box in boxes)
        assert lengths["negative_tab"] == pytest.approx(1e-4)
        assert lengths["positive_tab"] == pytest.approx(3e-5)
        assert lengths["positive_edge"] == pytest.approx(7e-5)
        assert lengths["top"] == pytest.approx(1e-4 * 3)  # a patch per layer
    finally:
        gmsh.finalize()


def test_a_terminal_area_on_a_boundary_line_is_read_as_an_area(tmp_path):
    """The 1D cell's terminal sits on the r = 1 line of the (x, r) mesh: a 1D mesh in a 2D
    space, so its cross-section is an area (m^2), as its amounts are per m^2. It was read as a
    depth (m) from the space's dimension, which refused '0.1027 m^2'."""
    short = [*SMALL_MESH, 'protocol.steps=["Discharge at 1C for 1 minute"]']
    as_area = discharge(
        tmp_path / "area", *short, 'physics.solid.boundaries.right.cross_section="0.1027 m^2"'
    )
    from_set = discharge(tmp_path / "set", *short)  # n_parallel*A_cc = 0.1027 m^2 of Chen2020
    assert np.array_equal(as_area["voltage_V"], from_set["voltage_V"])


def test_the_2d_case_is_battery_discharge_on_another_mesh():
    """No include mechanism for cases: the copy is kept equal here. Only the mesh, the
    particles' radial axis, the collectors' names (the tabs) and the terminal's cross-section
    (the strip's depth instead of the electrode area) differ."""
    one_d = CASE.read_text().replace("radial_axis = 1", "radial_axis = 2")
    one_d = one_d.replace("boundaries.left", "boundaries.negative_tab")
    one_d = one_d.replace("boundaries.right", "boundaries.positive_tab")
    one_d = tomllib.loads(one_d.replace('"n_parallel*A_cc" }', '"n_parallel*A_cc/L" }'))
    two_d = tomllib.loads(CELL_2D.read_text())
    for name in ("parameters", "time", "solver", "physics", "protocol", "events"):
        assert two_d[name] == one_d[name], name
    assert two_d["output"]["fields"] == one_d["output"]["fields"]
    assert two_d["mesh"]["parameters"]["height"] == pytest.approx(172.8e-6)  # L of Chen2020


def test_the_thermal_case_adds_heat_to_the_2d_case():
    """The electrochemistry on the plane and the particles below it (through the extension
    of the plane's temperature along r) read the temperature field where the isothermal case
    reads T_amb."""
    plain = tomllib.loads(CELL_2D.read_text())
    warm = tomllib.loads(CELL_2D.read_text().replace("T_amb", "temperature"))
    thermal = tomllib.loads((ROOT / "cases" / "battery_cell_2d_thermal.toml").read_text())
    for name in ("parameters", "mesh", "time", "solver", "protocol", "output", "events"):
        assert thermal[name] == plain[name], name
    for name, section in warm["physics"].items():
        assert _thermal_free(thermal["physics"][name]) == _thermal_free(section), name
    assert set(thermal["physics"]) - set(plain["physics"]) == {"heat"}


@pytest.mark.parametrize("case", ["battery_cell_2d", "battery_cell_2d_thermal"])
def test_header_commands_are_valid_cases(case):
    commands = header_commands(ROOT / "cases" / f"{case}.toml")
    assert commands
    for command in commands:
        assert command[:3] == ["scalebridge", "run", f"cases/{case}.toml"]
        process = scalebridge("check", *command[2:])
        assert process.returncode == 0, (command, process.stderr[-2000:])
