"""Bad [surrogates] sections and { surrogate = ... } properties: one message at the case path,
exit code 2, before anything is solved."""

import pytest

from app.cli import main
from tests.conftest import ROOT, scalebridge

CASE = """
title = "A surrogate-served diffusivity"

[mesh]
type = "interval"
cells = [8]

[physics.transport]
type = "mass_transport"
effective_diffusivity = "none"
species.A.diffusivity = {diffusivity}
species.A.boundaries.left = {{ type = "concentration", value = 1 }}

[physics.chemistry]
type = "reaction_kinetics"
species.A = {{ transported = true }}
species.B = {{ initial = 2.0 }}
species.mineral = {{ initial = 0.0, molar_volume = 0.15 }}
reactions.growth = {{ equation = "A + B -> mineral", rate_constant = 1e3 }}

[surrogates.mineral]
microstructure = "{root}/meshes/rve_inclusion.py"
parameters = {{ shape = "circle" }}
descriptors = {{ volume_fraction = "mineral" }}
property = "conductivity"
matrix = "1 m^2/s"
inclusion = "0.1 m^2/s"

[time]
scheme = "bdf1"
end = 0.02
dt = 0.01
"""


DESCRIBED = 'descriptors = { volume_fraction = "mineral" }'
SHAPE = 'parameters = { shape = "circle" }'


def message(tmp_path, capsys, diffusivity='{ surrogate = "mineral" }', replace=None):
    text = CASE.format(diffusivity=diffusivity, root=ROOT)
    for old, new in (replace or {}).items():
        assert old in text
        text = text.replace(old, new)
    case = tmp_path / "case.toml"
    case.write_text(text)
    assert main(["check", str(case)]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines  # one message, no traceback
    return lines[0]


def test_the_valid_case_checks(tmp_path, capsys):
    case = tmp_path / "case.toml"
    case.write_text(CASE.format(diffusivity='{ surrogate = "mineral" }', root=ROOT))
    assert main(["check", str(case)]) == 0


def test_an_unknown_surrogate_is_named_at_the_property(tmp_path, capsys):
    error = message(tmp_path, capsys, diffusivity='{ surrogate = "minerl" }')
    assert (
        "physics.transport.species.A.diffusivity: unknown surrogate 'minerl' (did you mean "
        "'mineral'?); surrogates: mineral. Fix: define it in a [surrogates.minerl] section"
    ) in error


@pytest.mark.parametrize(
    ("diffusivity", "expected"),
    [
        ('{ surrogate = "mineral", component = "bulk" }', "unknown component 'bulk'"),
        ('{ surrogate = "mineral", part = "xx" }', "unknown key 'part' next to 'surrogate'"),
        ("{ surrogate = 3 }", "surrogate must be a name, got 3"),
        (
            '{ domain = { surrogate = "mineral", component = "bulk" } }',
            "diffusivity.domain: unknown component 'bulk'",
        ),
    ],
)
def test_bad_surrogate_properties(tmp_path, capsys, diffusivity, expected):
    error = message(tmp_path, capsys, diffusivity=diffusivity)
    assert "physics.transport.species.A.diffusivity" in error
    assert expected in error


def test_a_surrogate_in_a_table_by_region_checks(tmp_path):
    case = tmp_path / "case.toml"
    case.write_text(CASE.format(diffusivity='{ domain = { surrogate = "mineral" } }', root=ROOT))
    assert main(["check", str(case)]) == 0


@pytest.mark.parametrize(
    ("diffusivity", "where", "expected"),
    [
        (
            '{ domain = { surrogate = "minerl" } }',
            "species.A.diffusivity.domain",
            "unknown surrogate 'minerl' (did you mean 'mineral'?)",
        ),
        (
            '{ domian = { surrogate = "mineral" } }',
            "species.A.diffusivity.domian",
            "unknown region 'domian' (did you mean 'domain'?); regions: domain",
        ),
    ],
)
def test_bad_surrogates_in_tables_by_region(tmp_path, capsys, diffusivity, where, expected):
    error = message(tmp_path, capsys, diffusivity=diffusivity)
    assert f"case.toml: physics.transport.{where}: {expected}" in error


@pytest.mark.parametrize(
    "factor",
    [
        '{ surrogate = "mineral", component = "tensor" }',
        '{ domain = { surrogate = "mineral", component = "tensor" } }',
    ],
)
def test_a_tensor_for_a_transport_factor_is_refused(tmp_path, capsys, factor):
    """The factor multiplies D(c): a scalar; the tensor of a conductivity surrogate is refused
    at the factor's path (of a table's entry: its region named)."""
    error = message(
        tmp_path, capsys, replace={'effective_diffusivity = "none"': f"transport_factor = {factor}"}
    )
    assert "physics.transport.transport_factor" in error
    assert "this parameter takes a scalar, not a tensor" in error


def test_a_tensor_for_a_scalar_parameter_is_refused(tmp_path, capsys):
    porosity = (
        'effective_diffusivity = "none"\nporosity = { surrogate = "mineral", component = "tensor" }'
    )
    error = message(tmp_path, capsys, replace={'effective_diffusivity = "none"': porosity})
    assert "physics.transport.porosity: this parameter takes a scalar, not a tensor" in error


def test_phases_in_a_unit_the_parameter_cannot_take(tmp_path, capsys):
    error = message(tmp_path, capsys, replace={'matrix = "1 m^2/s"': 'matrix = "1 W/(m*K)"'})
    assert (
        "physics.transport.species.A.diffusivity: the surrogate's phases are in W / K / m" in error
    )
    assert "this parameter is in m^2/s" in error


@pytest.mark.parametrize(
    ("replace", "where", "expected"),
    [
        (
            {DESCRIBED: DESCRIBED.replace('"mineral"', '"minral"')},
            "surrogates.mineral.descriptors.volume_fraction",
            "unknown name 'minral'",
        ),
        (
            {DESCRIBED: DESCRIBED.replace("volume_fraction", "aspect_ratio")},
            "surrogates.mineral",
            "the surrogate's backbone needs the volume_fraction",
        ),
        (
            {DESCRIBED: DESCRIBED.replace('" }', '", size = "1" }')},
            "surrogates.mineral.descriptors",
            "build() of the script does not take these parameters",
        ),
        (
            {"rve_inclusion.py": "rve_missing.py"},
            "surrogates.mineral.microstructure",
            "file '",
        ),
        (
            {'matrix = "1 m^2/s"': "matrix = 0"},
            "surrogates.mineral",
            "the matrix must have a positive",
        ),
        (
            {'inclusion = "0.1 m^2/s"': 'inclusion = "1 m^2/s"'},
            "surrogates.mineral",
            "matrix and inclusion have the same property",
        ),
        (
            {'property = "conductivity"': 'property = "elasticity"'},
            "surrogates.mineral.matrix",
            "expected a table of moduli",
        ),
        (
            {'property = "conductivity"': 'property = "elastic"'},
            "surrogates.mineral.property",
            "got 'elastic'",
        ),
        (
            {SHAPE: f"{SHAPE}\ntolerence = 0.1"},
            "surrogates.mineral.tolerence",
            "unknown key 'tolerence' (did you mean 'tolerance'?)",
        ),
        (
            {SHAPE: f"{SHAPE}\ndesign = {{ range = {{ aspect = [1, 2] }} }}"},
            "surrogates.mineral",
            "aspect in design.range or limits is not a descriptor",
        ),
        (
            {SHAPE: f"{SHAPE}\nlimits = {{ volume_fraction = [0.5, 0.1] }}"},
            "surrogates.mineral.limits",
            "give [low, high] with low <= high",
        ),
        (
            {SHAPE: f"{SHAPE}\ndesign = {{ range = {{ volume_fraction = [0.1, 0.9] }} }}"},
            "surrogates.mineral.design.range.volume_fraction",
            "[0.1, 0.9] goes beyond the admissible range [0, 0.694] of volume_fraction",
        ),
        (
            {SHAPE: f"{SHAPE}\ndesign = {{ points = 0 }}\nrefresh = false"},
            "surrogates.mineral.design.points",
            "no initial RVE solves, refresh = false and no database",
        ),
        (
            {"[surrogates.mineral]": '[surrogates."min eral"]'},
            "surrogates",
            "surrogate names are letters, digits and underscores",
        ),
    ],
)
def test_bad_surrogate_sections(tmp_path, capsys, replace, where, expected):
    error = message(tmp_path, capsys, replace=replace)
    assert f"case.toml: {where}: " in error
    assert expected in error


def test_a_surrogate_without_initial_solves_may_refresh(tmp_path):
    """design.points = 0 is an empty start the refresh fills."""
    text = CASE.format(diffusivity='{ surrogate = "mineral" }', root=ROOT)
    case = tmp_path / "case.toml"
    case.write_text(text.replace(SHAPE, f"{SHAPE}\ndesign = {{ points = 0 }}"))
    assert main(["check", str(case)]) == 0


def test_an_elastic_surrogate_needs_a_component_for_other_parameters(tmp_path, capsys):
    elastic = (
        'property = "elasticity"\nmatrix = { youngs_modulus = 1e9, poisson_ratio = 0.3 }\n'
        "inclusion = 0"
    )
    conductivity = 'property = "conductivity"\nmatrix = "1 m^2/s"\ninclusion = "0.1 m^2/s"'
    error = message(tmp_path, capsys, replace={conductivity: elastic})
    assert "physics.transport.species.A.diffusivity: name the elastic constant" in error


def test_a_solid_inclusion_where_the_script_leaves_pores_fails_cleanly(tmp_path):
    """Found at the first RVE solve (the initial design): exit code 2, no traceback."""
    text = CASE.format(diffusivity='{ surrogate = "mineral" }', root=ROOT)
    text = text.replace(
        'parameters = { shape = "circle" }', 'parameters = { shape = "circle", porous = true }'
    )
    case = tmp_path / "case.toml"
    case.write_text(text)
    process = scalebridge("run", case, "-o", tmp_path / "run")
    assert process.returncode == 2
    assert "Traceback" not in process.stderr
    assert "surrogates.mineral.inclusion: the cell has no inclusion region" in process.stderr
    assert "give inclusion = 0 for pores" in process.stderr


def test_an_rve_mesh_size_no_memory_can_hold_is_refused_on_two_ranks(tmp_path):
    """mesh_size = 1e-5 asks gmsh, on rank 0 alone, for ~4.5e15 tetrahedra of the unit cell:
    it meshed on past a minute (3 GB cap, killed by the timeout); rank 0 now refuses it and
    every rank exits with its message."""
    case = ROOT / "cases" / "biomineral_strut_surrogate.toml"
    fine = "surrogates.composite.mesh_size=1e-5"
    process = scalebridge("run", case, "-o", tmp_path / "out", "-q", "--set", fine, ranks=2,
                          timeout=300)  # fmt: skip
    assert process.returncode == 2, process.stderr
    lines = [line for line in process.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, process.stderr
    assert "surrogates.composite.mesh_size: mesh_size = 1e-05 makes about 4.5e+15 cells" in lines[0]
