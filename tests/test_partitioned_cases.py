"""Built-in plug-ins split into groups: the Joule-heating case solved monolithically and as two
groups coupled by fixed-point iteration, on 1 and 2 ranks; the heat-cycling protocol on 2 ranks.
"""

import pytest

from tests.conftest import read_quantities, scalebridge

SPLIT = [
    "--set",
    "coupling.method=fixed_point",
    "--set",
    'coupling.groups=[{name="electric", physics=["electrostatics"]}, '
    '{name="thermal", physics=["heat"]}]',
    "--set",
    "coupling.iterations.tolerance=1e-12",
]


def relative_difference(a: dict, b: dict, skip: tuple = ()) -> float:
    worst = 0.0
    for column, values in a.items():
        if column in skip or column not in b:
            continue
        scale = max(max(map(abs, values)), 1e-300)
        for x, y in zip(values, b[column], strict=True):
            worst = max(worst, abs(x - y) / max(abs(x), abs(y), 1e-9 * scale))
    return worst


@pytest.fixture(scope="module")
def monolithic(tmp_path_factory):
    out = tmp_path_factory.mktemp("joule") / "monolithic"
    process = scalebridge("run", "cases/joule_heating.toml", "-o", out, "-q")
    assert process.returncode == 0, process.stderr
    return read_quantities(out)


def test_fixed_point_groups_reproduce_the_monolithic_joule_case(tmp_path, monolithic):
    out = tmp_path / "split"
    process = scalebridge("run", "cases/joule_heating.toml", "-o", out, "-q", *SPLIT)
    assert process.returncode == 0, process.stderr
    split = read_quantities(out)
    assert max(split["coupling_iterations"]) > 1  # really iterated
    iterations = ("newton_iterations", "linear_iterations")
    assert relative_difference(monolithic, split, iterations) < 1e-8


@pytest.mark.mpi
@pytest.mark.parametrize(
    ("case", "extra"), [("joule_heating", SPLIT), ("heat_cycling", [])], ids=["split", "protocol"]
)
def test_coupled_cases_agree_on_two_ranks(tmp_path, case, extra):
    results = []
    for ranks in (1, 2):
        out = tmp_path / f"np{ranks}"
        process = scalebridge("run", f"cases/{case}.toml", "-o", out, "-q", *extra, ranks=ranks)
        assert process.returncode == 0, process.stderr
        results.append(read_quantities(out))
    assert len(results[0]["time_s"]) == len(results[1]["time_s"])
    assert relative_difference(*results, ("linear_iterations",)) < 1e-8
