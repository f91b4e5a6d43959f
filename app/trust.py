"""Which files a case may make ScaleBridge execute.

A case file is data that people exchange, but two kinds of file it may name are programs: a
``.py`` geometry or microstructure script (its ``build()`` runs, and so does anything else in
it), and a gmsh ``.geo`` file, whose language can run shell commands (``System``,
``SystemCall``, ``NonBlockingSystemCall``, ``OnelabRun``) and read further files (``Include``,
``Merge``). So a case alone never runs code from an arbitrary place:

* ``.py`` scripts run when they lie in ScaleBridge's own ``meshes/`` folder or in a folder listed
  in ``SCALEBRIDGE_TRUSTED_SCRIPTS`` (separated like ``PATH``), or when the user trusts every
  script of the run (``scalebridge run --trust-scripts``, ``SCALEBRIDGE_TRUST_SCRIPTS=1``);
* ``.geo`` files from anywhere are read unless they use one of the commands above; trusted ones
  (same rule as scripts) may use them.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from app.errors import CaseError

TRUSTED_FOLDERS = "SCALEBRIDGE_TRUSTED_SCRIPTS"
TRUST_ALL = "SCALEBRIDGE_TRUST_SCRIPTS"
SHIPPED = Path(__file__).resolve().parent.parent / "meshes"

# gmsh .geo commands that run programs or read other files (the language is case-sensitive).
_GEO_COMMANDS = re.compile(r"\b(System|SystemCall|NonBlockingSystemCall|OnelabRun|Include|Merge)\b")
_GEO_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)
_FIX = (
    "read the file first; if you trust it, run with --trust-scripts (or add its folder to "
    f"{TRUSTED_FOLDERS})"
)


def add_trust_flag(command: argparse.ArgumentParser) -> None:
    """The command-line flag that trusts every script a case names."""
    command.add_argument(
        "--trust-scripts",
        action="store_true",
        help="run the .py mesh/microstructure scripts (and .geo system commands) the case "
        f"names wherever they are (by default: ScaleBridge's meshes/ and {TRUSTED_FOLDERS})",
    )


def trust_all() -> None:
    """Trust every script of this process (the CLI's ``--trust-scripts``)."""
    os.environ[TRUST_ALL] = "1"


def trusted(path: Path) -> bool:
    """Whether the file may run code: shipped with ScaleBridge, in a trusted folder, or all
    scripts trusted."""
    if os.environ.get(TRUST_ALL) == "1":
        return True
    listed = os.environ.get(TRUSTED_FOLDERS, "").split(os.pathsep)
    folders = [SHIPPED, *(Path(folder) for folder in listed if folder)]  # "" is not the cwd
    path = path.resolve()
    return any(folder.is_dir() and path.is_relative_to(folder.resolve()) for folder in folders)


def check_script(path: Path, where: str) -> None:
    """Refuse to run a Python script a case names from outside the trusted folders.

    Raises:
        CaseError: At ``where``.
    """
    if not trusted(path):
        raise CaseError(
            where,
            f"'{path}' is a Python script, and running it runs whatever it contains; a case file "
            "does not make ScaleBridge run code from outside its own meshes/ folder and the "
            "folders you trust",
            _FIX,
        )


def check_geo(path: Path, where: str) -> None:
    """Refuse an untrusted ``.geo`` file that runs programs or reads other files.

    Raises:
        CaseError: At ``where``, naming the command and its line.
    """
    if trusted(path):
        return
    text = _GEO_COMMENTS.sub(lambda m: "\n" * m.group().count("\n"), path.read_text("latin-1"))
    found = _GEO_COMMANDS.search(text)
    if found is not None:
        line = text.count("\n", 0, found.start()) + 1
        raise CaseError(
            where,
            f"'{path.name}' uses '{found.group()}' (line {line}), which runs a program or reads "
            "another file; ScaleBridge reads such .geo files only from trusted folders",
            _FIX,
        )
