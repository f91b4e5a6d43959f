"""Third-party plug-ins that fail: an installed package whose entry point exits, raises or
holds no usable plug-in class is named when a case uses it (exit code 2) and breaks nothing
else: cases that do not use it run, and ``scalebridge modules`` lists the others.

The plug-ins here are real entry points: a distribution's metadata on ``sys.path``, found by
the same ``importlib.metadata`` discovery as an installed package.
"""

import sys
import textwrap

import pytest

from app import registry
from app.cli import main
from tests.test_bad_input import VALID, error_of

PLUGINS = {
    "exiter": "import sys\n\nsys.exit('this plug-in ends any process importing it')\n",
    "plain_parameters": """
        from app.contracts import Physics

        class Plugin(Physics):
            name = "plain_parameters"

            class Parameters:  # not a pydantic model
                pass
        """,
    "strict": """
        from pydantic import field_validator

        from app.contracts import Parameters, Physics

        class Plugin(Physics):
            name = "strict"

            class Parameters(Parameters):
                gain: float = 1.0

                @field_validator("gain")
                @classmethod
                def refuse(cls, value):
                    raise TypeError("the validator itself is broken")
        """,
}


@pytest.fixture
def broken_plugins(tmp_path, monkeypatch):
    """Install the plug-ins of PLUGINS as one distribution (its modules and entry points)."""
    info = tmp_path / "broken_plugins-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugins\nVersion: 1.0\n")
    points = [f"{name} = broken_{name}:Plugin" for name in PLUGINS]
    (info / "entry_points.txt").write_text("[scalebridge.physics]\n" + "\n".join(points) + "\n")
    for name, source in PLUGINS.items():
        (tmp_path / f"broken_{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.discover.cache_clear()
    yield
    registry.discover.cache_clear()
    for name in PLUGINS:
        sys.modules.pop(f"broken_{name}", None)


def check(tmp_path, text: str) -> int:
    case = tmp_path / "case.toml"
    case.write_text(text)
    return main(["check", str(case)])


def test_cases_that_do_not_use_a_broken_plugin_still_run(broken_plugins, tmp_path, capsys):
    assert check(tmp_path, VALID) == 0
    assert "OK: the case is valid." in capsys.readouterr().out


@pytest.mark.parametrize(
    ("plugin", "problem"),
    [
        ("exiter", "failed to load: broken_exiter:Plugin: SystemExit: this plug-in ends any"),
        (
            "plain_parameters",
            "failed to load: broken_plain_parameters:Plugin.Parameters is <class "
            "'broken_plain_parameters.Plugin.Parameters'>, not a pydantic model",
        ),
    ],
)
def test_a_plugin_that_cannot_load_is_named_when_used(
    broken_plugins, tmp_path, capsys, plugin, problem
):
    text = VALID.replace("[physics.heat]", f'[physics.heat]\ntype = "{plugin}"')
    assert check(tmp_path, text) == 2
    message = error_of(capsys)
    assert f"physics.heat.type: plug-in '{plugin}' {problem}" in message


def test_a_validator_that_fails_otherwise_than_with_value_error_names_the_plugin(
    broken_plugins, tmp_path, capsys
):
    assert (
        check(tmp_path, '[mesh]\ntype = "interval"\ncells = [2]\n[physics.strict]\ngain = 2\n') == 2
    )
    message = error_of(capsys)
    assert "physics.strict: plug-in 'strict' (broken_strict) failed to read its parameters: " in (
        message
    )
    assert "TypeError: the validator itself is broken" in message
    assert "for the plug-in's author to correct" in message


def test_modules_lists_every_plugin_and_names_the_broken_ones(broken_plugins, capsys):
    assert main(["modules"]) == 0
    listing = capsys.readouterr().out
    assert "heat: " in listing and "mechanics: " in listing
    assert "exiter: FAILED TO LOAD: broken_exiter:Plugin: SystemExit:" in listing
    assert "plain_parameters: FAILED TO LOAD:" in listing
    assert "strict: " in listing
