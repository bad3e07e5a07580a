"""Ranking runs (and baselines) by their best evaluation, for `afi leaderboard` and reports.

One protocol is ranked: `afi eval` scores every method on full frames at the dataset's native
size, on the same triplets of one split. Validation during training scores centre crops at the
stage's training size, which flatters a model by several dB; it is stored under its own split,
TRAINING_SPLIT, so it is never ranked beside `afi eval` scores unless asked for and labelled.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from afi.config import BEST_METRICS, best_score
from afi.errors import UsageError
from registry import leaderboard as registry_leaderboard
from registry import runs as registry_runs
from registry.db import session_scope
from registry.evaluations import HIGHER_IS_BETTER
from registry.records import LeaderboardRow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session  # for annotations only

METRICS = BEST_METRICS + ("ms_ssim",)
DEFAULT_SPLIT = "test"
TRAINING_SPLIT = "val-crop"  # the val split, scored during training on centre crops
EVAL_PROTOCOL = "full frames at native size (afi eval)"
TRAINING_PROTOCOL = "centre crops at the training size (validation during training)"
GROUP_FIELDS = ("arch", "flow", "disc", "variant", "resolution", "dataset", "split", "kind", "experiment")
# Columns shown by `afi leaderboard`, in order; `--json`/`--csv` carry every field.
COLUMNS = (
    "rank", "run", "variant", "resolution", "stage", "dataset", "split",
    "psnr", "ssim", "lineart", "lpips", "params", "train_time", "cost_usd",
)


def rank(engine: Any, query: registry_leaderboard.LeaderboardQuery) -> list[LeaderboardRow]:
    if query.metric not in METRICS:
        raise UsageError(f"unknown metric {query.metric!r}: choose one of {', '.join(METRICS)}")
    with session_scope(engine) as session:
        return registry_leaderboard.leaderboard(session, query)


def protocol(split: str | None) -> str:
    return TRAINING_PROTOCOL if split == TRAINING_SPLIT else EVAL_PROTOCOL


def split_label(splits: Iterable[str | None]) -> str:
    """'split test: full frames ...', or every split's protocol when rows mix them."""
    named = sorted({s for s in splits if s is not None})
    if len(named) == 1:
        return f"split {named[0]}: {protocol(named[0])}"
    parts = "; ".join(f"{s}: {protocol(s)}" for s in named)
    return f"MIXED splits, not comparable across them ({parts})"


def order(rows: list[LeaderboardRow], metric: str) -> list[LeaderboardRow]:
    """Best first by `metric`; rows without it last."""
    def key(row: LeaderboardRow) -> tuple[bool, float]:
        value = getattr(row, metric)
        return value is None, -(value or 0.0) if HIGHER_IS_BETTER[metric] else (value or 0.0)
    return sorted(rows, key=key)


def with_baselines(
    session: Session, rows: list[LeaderboardRow], datasets: Iterable[str], split: str, metric: str
) -> list[LeaderboardRow]:
    """`rows` plus the baselines scored on `split` of each of `datasets`, ranked together."""
    baselines = [
        row
        for name in sorted(set(datasets))
        for row in registry_leaderboard.leaderboard(session, registry_leaderboard.LeaderboardQuery(
            dataset=name, split=split, kind="baseline", metric=metric, best_per_variant=False))
    ]
    return order([r for r in rows if not r.is_baseline] + baselines, metric)


@dataclass(frozen=True)
class Board:
    """Rows of one split, so of one protocol, and what they are."""

    split: str
    rows: list[LeaderboardRow]

    @property
    def label(self) -> str:
        return split_label([self.split])


def experiment_boards(session: Session, experiment: str, split: str, metric: str) -> list[Board]:
    """The experiment's runs on `split` beside the baselines of that split and its datasets; then,
    while it has them, its training validation scores, on their own board and without baselines."""
    def runs_on(wanted: str) -> list[LeaderboardRow]:
        return registry_leaderboard.leaderboard(session, registry_leaderboard.LeaderboardQuery(
            experiment=experiment, split=wanted, metric=metric, best_per_variant=False,
            include_baselines=False))

    datasets = {r.dataset for r in registry_runs.list_runs(session, experiment=experiment) if r.dataset}
    boards = [Board(split, with_baselines(session, runs_on(split), datasets, split, metric))]
    if split != TRAINING_SPLIT:
        training = runs_on(TRAINING_SPLIT)
        if training:
            boards.append(Board(TRAINING_SPLIT, training))
    return boards


def format_duration(seconds: float | None) -> str | None:
    if not seconds:
        return None
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def rows_as_dicts(rows: list[LeaderboardRow]) -> list[dict[str, Any]]:
    """Every field of each row plus its rank and the display fields (`variant` marks baselines)."""
    out = []
    for i, row in enumerate(rows, start=1):
        data = {"rank": i, **row.to_dict(), "protocol": protocol(row.split),
                "train_time": format_duration(row.train_seconds)}
        if row.is_baseline:
            data["variant"] = f"baseline: {row.arch}"
        out.append(data)
    return out


@dataclass(frozen=True)
class GroupRow:
    group: dict[str, Any]
    runs: int
    best: float | None
    mean: float | None
    best_run: str


def group(rows: list[LeaderboardRow], fields: list[str], metric: str) -> list[GroupRow]:
    """One row per distinct value of `fields` (e.g. arch, disc): run count, best and mean metric,
    ordered best first. `rows` must already be ranked by `metric`."""
    unknown = [f for f in fields if f not in GROUP_FIELDS]
    if unknown:
        raise UsageError(f"cannot group by {', '.join(unknown)}: choose from {', '.join(GROUP_FIELDS)}")
    members: dict[tuple[Any, ...], list[LeaderboardRow]] = {}
    for row in rows:
        members.setdefault(tuple(getattr(row, f) for f in fields), []).append(row)
    groups = []
    for key, grouped in members.items():  # insertion order = rank of each group's best row
        values = [v for v in (getattr(r, metric) for r in grouped) if v is not None]
        groups.append(GroupRow(dict(zip(fields, key)), len(grouped), best_score(values, metric),
                               sum(values) / len(values) if values else None, grouped[0].run))
    return groups
