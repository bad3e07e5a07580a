"""`afi leaderboard`: runs and baselines ranked by their best evaluation."""

from __future__ import annotations

import csv
import sys
from dataclasses import asdict
from typing import Annotated, Optional

import typer

from afi.cli.app import (
    JsonOption, MetricOption, command, console, err_console, print_json, print_table, state,
)
from afi.errors import UsageError
from afi.leaderboard import COLUMNS, DEFAULT_SPLIT, TRAINING_SPLIT, group, rank, rows_as_dicts, split_label
from registry.leaderboard import LeaderboardQuery
from registry.records import LeaderboardRow


# Said once under a table whose lpips column is all "-" (the exact reason: `afi eval`).
LPIPS_NOTE = ("lpips -: not scored where these were evaluated; it needs pip install 'afi[lpips]' and "
              "AlexNet's weights from a local file (afi weights import FILE --name alexnet)")


def print_leaderboard(rows: list[LeaderboardRow], metric: str, split: str | None = DEFAULT_SPLIT) -> None:
    """`split`: the one split asked for, named in the title; None when rows may mix splits."""
    if not rows:
        where = "any split" if split is None else f"split {split}"
        console.print(f"no evaluations on {where} yet: `afi eval RUN --dataset NAME --baselines` "
                      f"scores a run and the baselines (training validation is --split {TRAINING_SPLIT})")
        return
    print_table(
        COLUMNS,
        ([row.get(c) for c in COLUMNS] for row in rows_as_dicts(rows)),
        title=f"leaderboard by best {metric}, {split_label([split] if split else [r.split for r in rows])}",
    )
    if all(row.lpips is None for row in rows):
        err_console.print(LPIPS_NOTE, highlight=False, soft_wrap=True)


@command
def leaderboard(
    dataset: Annotated[Optional[str], typer.Option(help="Only evaluations on this dataset.")] = None,
    split: Annotated[str, typer.Option(
        metavar="SPLIT", help=f"The split ranked: test, val (both scored by afi eval on full frames), or "
        f"{TRAINING_SPLIT} (validation during training, on centre crops).")] = DEFAULT_SPLIT,
    all_splits: Annotated[bool, typer.Option(
        "--all-splits", help="Rank every split together (labelled: scores of different splits "
        "and protocols do not compare).")] = False,
    metric: MetricOption = "psnr",
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
    """Rank runs and baselines of one split by their BEST value of a metric over all evaluations
    (not the last one)."""
    chosen = None if all_splits else split
    if all_splits and split != DEFAULT_SPLIT:
        raise UsageError("give --split or --all-splits, not both")
    query = LeaderboardQuery(
        dataset=dataset, split=chosen, metric=metric, arch=arch, resolution=res,
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
            title=f"leaderboard grouped by {group_by}, "
            f"{split_label([chosen] if chosen else [r.split for r in rows])}",
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
    print_leaderboard(rows, metric, chosen)
