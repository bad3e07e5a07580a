"""`afi report EXPERIMENT -o report.html`: a self-contained page to read or send."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from afi.cli.app import command, console, state
from afi.report.html import write_report


@command
def report(
    experiment: Annotated[str, typer.Argument(help="Experiment name (see `afi experiment list`).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="HTML file to write.")] = Path("report.html"),
    samples: Annotated[int, typer.Option(help="Sample interpolations per run.")] = 3,
    split: Annotated[
        str, typer.Option(metavar="SPLIT", help="The split ranked, beside its baselines.")
    ] = "test",
) -> None:
    """Write one self-contained HTML page: the runs ranked beside the baselines of one split,
    training validation on its own board, metric curves, sample interpolations."""
    path = write_report(state.engine(), experiment, output, samples=samples, split=split)
    console.print(f"report written to {path.resolve()}")
