"""`afi run compare A B ...` (also `afi runs compare`): configs side by side, metrics, curves."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from afi.cli.app import JsonOption, command, console, format_cell, print_json, print_table, state
from afi.leaderboard import COLUMNS, DEFAULT_SPLIT, rows_as_dicts
from afi.paths import afi_home
from afi.report.compare import Comparison, compare_runs, comparison_png


def config_table(comparison: Comparison, diff_only: bool) -> Table:
    table = Table(title="config (differences in yellow)", header_style="bold")
    table.add_column("setting")
    for run in comparison.runs:
        table.add_column(run.name, overflow="fold")
    for row in comparison.rows:
        if diff_only and not row.differs:
            continue
        style = "bold yellow" if row.differs else None
        table.add_row(row.key, *(Text(format_cell(v)) for v in row.values), style=style)
    return table


def metrics_table(comparison: Comparison) -> Table:
    table = Table(title="metrics: last (best)", header_style="bold")
    table.add_column("metric")
    for run in comparison.runs:
        table.add_column(run.name)
    for key, summaries in comparison.metrics.items():
        cells = [
            "-" if s is None else f"{format_cell(s['last'])} ({format_cell(s['best'])})"
            for s in summaries
        ]
        table.add_row(key, *cells)
    return table


@command
def compare(
    runs: Annotated[list[str], typer.Argument(help="Two or more run ids or names.")],
    plot: Annotated[
        Optional[Path], typer.Option(help="Where to write the validation-curve PNG.")
    ] = None,
    diff_only: Annotated[bool, typer.Option("--diff-only", help="Only settings that differ.")] = False,
    split: Annotated[str, typer.Option(metavar="SPLIT", help="The split whose scores are ranked, "
                                       "beside its baselines.")] = DEFAULT_SPLIT,
    as_json: JsonOption = False,
) -> None:
    """Compare runs: configs, metrics, curves, and scores beside the baselines of one split.

    Configs side by side (differences highlighted), metrics, a PNG of validation curves, and
    the runs' scores ranked beside the baselines of the same split."""
    comparison = compare_runs(state.engine(), runs, split)
    target = plot or afi_home() / "reports" / f"compare-{'-'.join(str(r.id) for r in comparison.runs)}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(comparison_png(comparison))
    if as_json:
        print_json({**comparison.to_dict(), "plot": str(target)})
        return
    console.print(config_table(comparison, diff_only))
    console.print(metrics_table(comparison))
    board = comparison.board
    if any(not row.is_baseline for row in board.rows):
        print_table(COLUMNS, ([row.get(c) for c in COLUMNS] for row in rows_as_dicts(board.rows)),
                    title=f"scores beside the baselines, {board.label}")
    else:
        console.print(f"no run here scored on split {split} yet: `afi eval RUN --baselines` scores it")
    console.print(f"validation curves: {target}")
