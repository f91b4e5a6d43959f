"""``scalebridge new-module NAME``: a new plug-in package, ready to install, test and edit.

The package is generated from the templates in ``app/templates/plugin``: a ``pyproject.toml``
with the ``scalebridge.physics`` entry point, the plug-in module (a worked reaction-diffusion
example written like ``physics_modules/heat.py``, importing only ``app.contracts``), a small
case, tests that use the conformance kit (:mod:`app.testing`) and a closed form, and a README.
Everything passes as generated; the author then edits the physics.
"""

from __future__ import annotations

import importlib.util
import keyword
import re
from importlib.resources import files
from pathlib import Path

from app.errors import ScaleBridgeError

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
MAX_LENGTH = 40  # the templates keep generated lines within 100 characters up to this

#: Generated file (relative to the package folder, with {{name}}) -> template.
FILES = {
    "pyproject.toml": "pyproject.toml.tmpl",
    "README.md": "README.md.tmpl",
    "{{name}}.py": "plugin.py.tmpl",
    "cases/{{name}}_demo.toml": "demo.toml.tmpl",
    "tests/test_{{name}}.py": "test_plugin.py.tmpl",
}


class ScaffoldError(ScaleBridgeError):
    """A name or folder the scaffold cannot use (the CLI exits with code 2)."""

    exit_code = 2


def class_name(name: str) -> str:
    """The plug-in class for a module name: ``reaction_front`` -> ``ReactionFront``."""
    return "".join(part.capitalize() for part in name.split("_") if part)


def check_name(name: str) -> None:
    """Refuse names that cannot be (or would shadow) a module or an installed plug-in.

    Raises:
        ScaffoldError: With the reason and a suggestion.
    """
    from app.registry import discover

    if not _NAME.match(name) or keyword.iskeyword(name) or len(name) > MAX_LENGTH:
        raise ScaffoldError(
            f"'{name}' is not a valid plug-in name: use lowercase letters, digits and "
            f"underscores, starting with a letter, at most {MAX_LENGTH} characters (it names a "
            "Python module and the case's `type`), e.g. 'reaction_front'"
        )
    from app.expressions import FUNCTIONS
    from app.registry import COORDINATES, TIME

    if name in {*COORDINATES, TIME, "pi", *FUNCTIONS}:
        raise ScaffoldError(
            f"'{name}' is a name case expressions use already (coordinates, time, functions); "
            "the plug-in's field would be named so too: choose another name"
        )
    plugins = discover()
    if name in plugins.classes or name in plugins.broken:
        raise ScaffoldError(
            f"a plug-in named '{name}' is already installed (see `scalebridge modules`); "
            "choose another name"
        )
    if importlib.util.find_spec(name) is not None:
        raise ScaffoldError(
            f"a Python module named '{name}' already exists here; a plug-in of that name "
            "would shadow it (or be shadowed): choose another name"
        )


def create(name: str, directory: Path | str = ".") -> Path:
    """Write the package ``<directory>/<name>``.

    Args:
        name: Plug-in name: module name, entry-point name and the case's ``type``.
        directory: Where to create the package folder.

    Returns:
        The package folder.

    Raises:
        ScaffoldError: A bad name, or the folder exists already.
    """
    check_name(name)
    target = Path(directory) / name
    if target.exists():
        raise ScaffoldError(f"'{target}' exists already; remove it or choose another --dir")
    templates = files("app") / "templates" / "plugin"
    for relative, template in FILES.items():
        path = target / render(relative, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render((templates / template).read_text(), name))
    return target


def render(text: str, name: str) -> str:
    """Fill a template's placeholders: ``{{name}}`` and ``{{Class}}``."""
    return text.replace("{{name}}", name).replace("{{Class}}", class_name(name))


def summary(target: Path, name: str) -> str:
    """What ``scalebridge new-module`` prints: the files and the next steps."""
    lines = [f"Created the plug-in package '{name}' in {target}:"]
    lines += [f"  {render(relative, name)}" for relative in FILES]
    shown = target if target.is_absolute() else f"./{target}"  # pip wants a path-like name
    site = target.parent / "plugins"

    def absolute(path: Path) -> str:
        return str(path) if path.is_absolute() else f"$PWD/{path}"

    lines += [
        "",
        "Next (the plug-in authoring guide, docs/plugin_guide.md, walks through them):",
        f"  pip install --no-deps --target {site} {shown}   # not into ScaleBridge's venv",
        f"  export PYTHONPATH={absolute(target)}:{absolute(site)}",
        f"  scalebridge modules {name}",
        f"  pytest {target / 'tests'}",
        f"  scalebridge run {target / 'cases' / f'{name}_demo.toml'}",
    ]
    return "\n".join(lines)
