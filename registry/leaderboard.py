"""Rank runs and baselines by their best evaluation: rows come from the `leaderboard` view
(run_scores joined to the run, variant, dataset and experiment; nothing aggregated), and the
best run per variant is picked on the tables underneath."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

from sqlalchemy import Boolean, ColumnElement, Select, column, func, not_, select, table
from sqlalchemy.orm import Session

from registry.errors import RegistryError
from registry.evaluations import BEST_COLUMNS, HIGHER_IS_BETTER
from registry.records import LeaderboardRow
from registry.schema import SqlDataset, SqlExperiment, SqlRun, SqlRunScore, SqlVariant

COLUMNS = [f.name for f in fields(LeaderboardRow)]
# The view, as a lightweight table: it is created by the migration, never by metadata.create_all.
# Typed is_baseline turns the view's 0/1 into the record's bool as rows are fetched.
LEADERBOARD = table(
    "leaderboard", *(column(name, Boolean() if name == "is_baseline" else None) for name in COLUMNS)
)
Filter = Callable[[str], ColumnElement[bool]]  # wanted value -> condition


def _on_view(name: str) -> Filter:
    return lambda value: LEADERBOARD.c[name] == value


# LeaderboardQuery's filters on the view's columns, and on the tables the view reads. Variants
# and experiments are looked up in subqueries rather than joined: joining them made MariaDB
# start from the variants and join every run before ranking.
ON_VIEW = {name: _on_view(name) for name in ("dataset", "split", "arch", "resolution", "kind", "experiment")}
ON_TABLES: dict[str, Filter] = {
    "dataset": lambda value: SqlDataset.name == value,
    "split": lambda value: SqlRunScore.split == value,
    "arch": lambda value: SqlRun.variant_id.in_(select(SqlVariant.id).where(SqlVariant.arch == value)),
    "resolution": lambda value: SqlRun.resolution == value,
    "kind": lambda value: SqlRun.kind == value,
    "experiment": lambda value: SqlRun.experiment_id.in_(
        select(SqlExperiment.id).where(SqlExperiment.name == value)
    ),
}


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


def _ranking(q: LeaderboardQuery) -> list[ColumnElement]:
    value = LEADERBOARD.c[q.metric]
    best_first = value.desc() if HIGHER_IS_BETTER[q.metric] else value.asc()
    # `value IS NULL` sorts runs without this metric last on SQLite and MySQL alike; ties go by
    # run, then by dataset (NULL first on both) and split, so the order is the same every time.
    view = LEADERBOARD.c
    return [value.is_(None), best_first, view.run_id, view.dataset, view.split]


def _filters(q: LeaderboardQuery, on: Mapping[str, Filter]) -> list[ColumnElement[bool]]:
    conditions = [on[name](str(getattr(q, name))) for name in on if getattr(q, name) is not None]
    if not q.include_baselines:
        conditions.append(not_(on["kind"]("baseline")))
    return conditions


def _first_in_variant(s: Session, q: LeaderboardQuery) -> set[tuple[int, str | None, str]]:
    """(run_id, dataset, split) of each row that ranks first within its (variant, resolution,
    dataset, split), among the rows `q` keeps.

    Ranked on the tables by id, not on the view by name: the window then sorts small rows, and
    MariaDB reads run_scores first instead of joining every run of every variant to it (twice
    as fast over 10,000 runs there; the same on SQLite).
    """
    best = getattr(SqlRunScore, BEST_COLUMNS[q.metric])
    best_first = best.desc() if HIGHER_IS_BETTER[q.metric] else best.asc()
    place = func.row_number().over(
        partition_by=[SqlRun.variant_id, SqlRun.resolution, SqlRunScore.dataset_key, SqlRunScore.split],
        order_by=[best.is_(None), best_first, SqlRunScore.run_id],
    )
    ranked = (
        select(SqlRunScore.run_id, SqlDataset.name.label("dataset"), SqlRunScore.split, place.label("place"))
        .join(SqlRun, SqlRun.id == SqlRunScore.run_id)
        .outerjoin(SqlDataset, SqlDataset.id == SqlRunScore.dataset_id)
        .where(*_filters(q, ON_TABLES))
        .subquery("ranked")
    )
    firsts = select(ranked.c.run_id, ranked.c.dataset, ranked.c.split).where(ranked.c.place == 1)
    return {(run_id, dataset, split) for run_id, dataset, split in s.execute(firsts)}


def _rows(s: Session, query: Select, q: LeaderboardQuery) -> list[LeaderboardRow]:
    # Rows hold the view's columns in COLUMNS order, which is the record's field order.
    return [LeaderboardRow(*row) for row in s.execute(query.order_by(*_ranking(q)))]


def leaderboard(s: Session, q: LeaderboardQuery = LeaderboardQuery()) -> list[LeaderboardRow]:
    """Rows ordered best first by `q.metric` (its best value over all of a run's evaluations)."""
    if q.metric not in HIGHER_IS_BETTER:
        raise RegistryError(f"cannot rank by {q.metric!r}: choose one of {', '.join(HIGHER_IS_BETTER)}")
    query = select(LEADERBOARD).where(*_filters(q, ON_VIEW))
    if not q.best_per_variant:
        return _rows(s, query.limit(q.limit), q)
    # Two steps: ranking finds the few winners, then only their rows are read from the view.
    firsts = _first_in_variant(s, q)
    query = query.where(LEADERBOARD.c.run_id.in_(sorted({run_id for run_id, _, _ in firsts})))
    rows = [row for row in _rows(s, query, q) if (row.run_id, row.dataset, row.split) in firsts]
    return rows[: q.limit]
