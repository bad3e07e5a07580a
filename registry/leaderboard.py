"""Rank runs and baselines by their best evaluation, reading the `leaderboard` view."""

from __future__ import annotations

from dataclasses import dataclass, fields

from sqlalchemy import ColumnElement, Select, column, func, select, table
from sqlalchemy.orm import Session

from registry.errors import RegistryError
from registry.records import LeaderboardRow

# Metric -> True when higher is better. lineart is a chamfer line distance, lpips a distance.
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "ms_ssim": True, "lineart": False, "lpips": False}
COLUMNS = [f.name for f in fields(LeaderboardRow)]
# The view, as a lightweight table: it is created by the migration, never by metadata.create_all.
LEADERBOARD = table("leaderboard", *(column(name) for name in COLUMNS))


@dataclass(frozen=True)
class LeaderboardQuery:
    dataset: str | None = None
    split: str | None = None
    metric: str = "psnr"
    arch: str | None = None
    resolution: str | None = None
    kind: str | None = None
    experiment: str | None = None
    best_per_variant: bool = True  # keep the best run per (variant, resolution, dataset, split)
    include_baselines: bool = True
    limit: int | None = None


def _ranking(q: LeaderboardQuery, view) -> list[ColumnElement]:  # type: ignore[no-untyped-def]
    if q.metric not in HIGHER_IS_BETTER:
        raise RegistryError(
            f"cannot rank by {q.metric!r}: choose one of {', '.join(HIGHER_IS_BETTER)}"
        )
    value = view.c[q.metric]
    best_first = value.desc() if HIGHER_IS_BETTER[q.metric] else value.asc()
    # `value IS NULL` sorts runs without this metric last on SQLite and MySQL alike.
    return [value.is_(None), best_first, view.c.run_id]


def _filtered(q: LeaderboardQuery) -> Select:
    query = select(LEADERBOARD)
    for name in ("dataset", "split", "arch", "resolution", "kind", "experiment"):
        wanted = getattr(q, name)
        if wanted is not None:
            query = query.where(LEADERBOARD.c[name] == str(wanted))
    if not q.include_baselines:
        query = query.where(LEADERBOARD.c.kind != "baseline")
    return query


def leaderboard(s: Session, q: LeaderboardQuery = LeaderboardQuery()) -> list[LeaderboardRow]:
    """Rows ordered best first by `q.metric` (its best value over all of a run's evaluations)."""
    if q.best_per_variant:
        group = [LEADERBOARD.c[n] for n in ("variant", "resolution", "dataset", "split")]
        place = func.row_number().over(partition_by=group, order_by=_ranking(q, LEADERBOARD))
        ranked = _filtered(q).add_columns(place.label("place_in_variant")).subquery()
        query = select(*(ranked.c[name] for name in COLUMNS)).where(ranked.c.place_in_variant == 1)
        query = query.order_by(*_ranking(q, ranked))
    else:
        query = _filtered(q).order_by(*_ranking(q, LEADERBOARD))
    rows = s.execute(query.limit(q.limit))
    return [LeaderboardRow.from_row(row, is_baseline=bool(row.is_baseline)) for row in rows]
