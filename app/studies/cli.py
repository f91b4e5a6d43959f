"""``scalebridge study STUDY.toml``: the command line of studies (app/cli.py dispatches here).

Under ``mpirun -n N`` the ranks split into groups of the study's ``ranks_per_member``. A bad
study file stops every rank with one message and exit code 2 before any member runs; a study
whose every member failed exits with code 1; a study killed mid-way resumes when run again.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.errors import ScaleBridgeError
from app.trust import add_trust_flag


def add_parser(commands: Any) -> None:
    text = (
        "Run a study: members of a case with varied parameters on groups of MPI ranks, "
        "then sensitivity indices, statistics or a posterior (resumes an interrupted study)."
    )
    study = commands.add_parser("study", help=text, description=text)
    study.add_argument("study", type=Path, help="study file (TOML)")
    study.add_argument(
        "-o",
        "--output",
        type=Path,
        help="study folder (default: the file's output, else results/<study name>)",
    )
    study.add_argument(
        "--overwrite", action="store_true", help="start again instead of resuming the folder"
    )
    study.add_argument("-q", "--quiet", action="store_true", help="no progress or log on screen")
    add_trust_flag(study)


def command(args: argparse.Namespace, comm: Any) -> str:
    """Run the study; returns the summary rank 0 prints."""
    from app.studies.runner import Study

    study = Study.from_file(args.study, args.output, args.overwrite, comm)
    table = study.run(progress=not args.quiet)
    failed = [error for error in table.error if error]
    if failed and len(failed) == len(table):
        raise ScaleBridgeError(f"all {len(table)} members failed; the first: {failed[0]}")
    lines = [
        f"{len(table)} members, {len(failed)} failed; results in {study.output}",
        *_indices(study.names, study.analysis),
    ]
    if failed:
        lines.append(f"first failure: {failed[0]}")
    return "\n".join(lines)


def _indices(names: list[str], analysis: dict[str, Any]) -> list[str]:
    lines = []
    for kind, keys in (("sobol", ("S1", "ST")), ("chaos", ("S1", "ST")), ("morris", ("mu_star",))):
        for quantity, result in analysis.get(kind, {}).items():
            lines.append(f"{kind} indices of {quantity}:")
            for i, name in enumerate(names):
                values = ", ".join(f"{key} {result[key][i]:.4g}" for key in keys)
                lines.append(f"  {name}: {values}")
    for quantity, reason in analysis.get("skipped", {}).items():
        lines.append(f"{quantity}: no indices: {reason}")
    posterior = analysis.get("posterior")
    if posterior:
        lines.append(
            f"posterior ({posterior['sampler']}, {posterior['runs']} runs, acceptance "
            f"{posterior['acceptance_fraction']:.2f}):"
        )
        for name, row in posterior["parameters"].items():
            lines.append(
                f"  {name}: mean {row['mean']:.5g}, std {row['std']:.3g}, 95 % "
                f"[{row['ci95_low']:.5g}, {row['ci95_high']:.5g}]"
            )
    return lines
