"""Ranking runs (and baselines) by their best evaluation, for `afi leaderboard` and reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from afi.config import BEST_METRICS, best_score
from afi.errors import UsageError
from registry import leaderboard as registry_leaderboard
from registry.db import session_scope
from registry.records import LeaderboardRow

METRICS = BEST_METRICS + ("ms_ssim",)
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
        data = {"rank": i, **row.to_dict(), "train_time": format_duration(row.train_seconds)}
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
