"""Evaluation results: one row per (run, metric, split, dataset, step or checkpoint).

Each call to `add_evaluations` also folds its values into `run_scores` (the run's best value of
each ranked metric on that dataset and split) in the same transaction, so the `leaderboard` view
ranks runs without aggregating every evaluation. Evaluations only leave with their run or their
dataset, and the run_scores rows go with them (ON DELETE CASCADE); after bulk imports or edits
made outside this module, `rebuild_run_scores` recomputes the table.
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import Insert, case, delete, func, insert, literal, select
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from registry.clock import utcnow
from registry.errors import RegistryError
from registry.metrics import finite_or_none
from registry.records import EvaluationRecord
from registry.schema import SqlEvaluation, SqlRunScore

# Ranked metric -> True when higher is better. lineart is a chamfer line distance, lpips a distance.
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "ms_ssim": True, "lineart": False, "lpips": False}
BEST_COLUMNS = {metric: f"best_{metric}" for metric in HIGHER_IS_BETTER}
RUN_SCORES = SqlRunScore.__table__
EVALUATIONS = SqlEvaluation.__table__


@cache
def _score_upsert(dialect_name: str) -> Insert:
    """INSERT of one run_scores row that, when its (run, dataset, split) exists, keeps the better
    of the stored and the new best of each metric, adds the counts and stamps the time.
    Built once per dialect: building it costs more than running it."""
    if dialect_name == "sqlite":
        stmt = sqlite_insert(RUN_SCORES)
        new, better = stmt.excluded, {True: func.max, False: func.min}  # scalar max()/min()
    elif dialect_name in ("mysql", "mariadb"):
        stmt = mysql_insert(RUN_SCORES)
        new, better = stmt.inserted, {True: func.greatest, False: func.least}
    else:
        raise RegistryError(f"run scores are not implemented for {dialect_name}: use SQLite or MySQL")
    old = RUN_SCORES.c
    # Scalar MAX / GREATEST return NULL as soon as one argument is NULL (no value yet on one
    # side), so each side falls back on the other: only two NULLs give NULL.
    changes = {
        column: better[HIGHER_IS_BETTER[metric]](
            func.coalesce(old[column], new[column]), func.coalesce(new[column], old[column])
        )
        for metric, column in BEST_COLUMNS.items()
    }
    changes["eval_count"] = old.eval_count + new.eval_count
    changes["updated_at"] = new.updated_at
    if dialect_name == "sqlite":
        return stmt.on_conflict_do_update(index_elements=["run_id", "dataset_key", "split"], set_=changes)
    return stmt.on_duplicate_key_update(changes)


def add_evaluations(
    s: Session,
    run_id: int,
    values: dict[str, float],
    *,
    split: str,
    dataset_id: int | None = None,
    checkpoint_id: int | None = None,
    step: int | None = None,
) -> list[EvaluationRecord]:
    """Record metric name -> value (psnr, ssim, ms_ssim, lineart, lpips, ...) for one evaluation,
    and fold the ranked metrics into the run's scores on (dataset, split)."""
    if not values:
        return []
    now = utcnow()
    finite = {metric: finite_or_none(value) for metric, value in values.items()}
    rows = [
        SqlEvaluation(
            run_id=run_id,
            checkpoint_id=checkpoint_id,
            dataset_id=dataset_id,
            split=split,
            metric=metric,
            value=value,
            step=step,
            created_at=now,
        )
        for metric, value in finite.items()
    ]
    s.add_all(rows)
    s.flush()
    scores = {column: finite.get(metric) for metric, column in BEST_COLUMNS.items()}
    score_row = dict(run_id=run_id, dataset_id=dataset_id, split=split, eval_count=len(rows), updated_at=now)
    s.execute(_score_upsert(s.get_bind().dialect.name), {**score_row, **scores})
    return [EvaluationRecord.from_row(r) for r in rows]


def rebuild_run_scores(s: Session) -> int:
    """Recompute run_scores from every evaluation, in the session's transaction; returns its row count."""
    e = EVALUATIONS.c
    best = {True: func.max, False: func.min}  # aggregate MAX / MIN, which skip NULLs
    bests = [
        best[higher](case((e.metric == metric, e.value))).label(BEST_COLUMNS[metric])
        for metric, higher in HIGHER_IS_BETTER.items()
    ]
    now = literal(utcnow(), RUN_SCORES.c.updated_at.type).label("updated_at")
    query = select(e.run_id, e.dataset_id, e.split, *bests, func.count().label("eval_count"), now)
    query = query.group_by(e.run_id, e.dataset_id, e.split)
    s.execute(delete(RUN_SCORES))
    s.execute(insert(RUN_SCORES).from_select([c.name for c in query.selected_columns], query))
    return s.scalar(select(func.count()).select_from(RUN_SCORES)) or 0


def list_evaluations(s: Session, run_id: int) -> list[EvaluationRecord]:
    query = (
        select(SqlEvaluation)
        .where(SqlEvaluation.run_id == run_id)
        .order_by(SqlEvaluation.split, SqlEvaluation.metric, SqlEvaluation.step, SqlEvaluation.id)
    )
    return [EvaluationRecord.from_row(r) for r in s.scalars(query)]
