"""`afi leaderboard`: runs and baselines ranked by their best evaluation."""

from __future__ import annotations

import csv
import sys
from dataclasses import asdict
from typing import Annotated, Optional

import typer

from afi.cli.app import JsonOption, command, console, print_json, print_table, state
from afi.leaderboard import COLUMNS, group, rank, rows_as_dicts
from registry.leaderboard import LeaderboardQuery
from registry.records import LeaderboardRow


def print_leaderboard(rows: list[LeaderboardRow], metric: str) -> None:
    if not rows:
        console.print("no evaluated runs yet: train a run, or `afi eval RUN --dataset NAME`")
        return
    print_table(
        COLUMNS,
        ([row.get(c) for c in COLUMNS] for row in rows_as_dicts(rows)),
        title=f"leaderboard by best {metric}",
    )


@command
def leaderboard(
    dataset: Annotated[Optional[str], typer.Option(help="Only evaluations on this dataset.")] = None,
    split: Annotated[Optional[str], typer.Option(help="Only this split (val, test).")] = None,
    metric: Annotated[str, typer.Option(help="Rank by psnr, ssim, ms_ssim, lineart or lpips.")] = "psnr",
    arch: Annotated[Optional[str], typer.Option(help="Only this architecture.")] = None,
    res: Annotated[Optional[str], typer.Option(help="Only this resolution (256, 512x256).")] = None,
    experiment: Annotated[Optional[str], typer.Option(help="Only runs of this experiment.")] = None,
    group_by: Annotated[
        Optional[str], typer.Option(help="Summarise by fields, e.g. arch,disc (count, best, mean).")
    ] = None,
    all_runs: Annotated[bool, typer.Option("--all", help="Every run, not the best per variant.")] = False,
    baselines: Annotated[bool, typer.Option(help="Include classical baselines (nearest, blend, dis, flow).")] = True,
    limit: Annotated[Optional[int], typer.Option(help="At most this many rows.")] = None,
    as_json: JsonOption = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
) -> None:
    """Rank runs by their BEST value of a metric over all evaluations (not the last one)."""
    query = LeaderboardQuery(
        dataset=dataset, split=split, metric=metric, arch=arch, resolution=res,
        experiment=experiment, best_per_variant=not all_runs and group_by is None,
        include_baselines=baselines, limit=limit,
    )
    rows = rank(state.engine(), query)
    if group_by is not None:
        groups = group(rows, [f.strip() for f in group_by.split(",") if f.strip()], metric)
        if as_json:
            print_json([asdict(g) for g in groups])
            return
        fields = list(groups[0].group) if groups else []
        print_table(
            [*fields, "runs", f"best {metric}", f"mean {metric}", "best run"],
            ([*g.group.values(), g.runs, g.best, g.mean, g.best_run] for g in groups),
            title=f"leaderboard grouped by {group_by}",
        )
        return
    if as_json:
        print_json(rows_as_dicts(rows))
        return
    if as_csv:
        dicts = rows_as_dicts(rows)
        if dicts:
            writer = csv.DictWriter(sys.stdout, fieldnames=list(dicts[0]))
            writer.writeheader()
            writer.writerows(dicts)
        return
    print_leaderboard(rows, metric)
