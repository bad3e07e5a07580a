"""Evaluation results: one row per (run, metric, split, dataset, step or checkpoint).

The `leaderboard` view ranks each run by its best value over all of them.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.clock import utcnow
from registry.metrics import finite_or_none
from registry.records import EvaluationRecord
from registry.schema import SqlEvaluation


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
    """Record metric name -> value (psnr, ssim, ms_ssim, lineart, lpips, ...) for one evaluation."""
    now = utcnow()
    rows = [
        SqlEvaluation(
            run_id=run_id,
            checkpoint_id=checkpoint_id,
            dataset_id=dataset_id,
            split=split,
            metric=metric,
            value=finite_or_none(value),
            step=step,
            created_at=now,
        )
        for metric, value in values.items()
    ]
    s.add_all(rows)
    s.flush()
    return [EvaluationRecord.from_row(r) for r in rows]


def list_evaluations(s: Session, run_id: int) -> list[EvaluationRecord]:
    query = (
        select(SqlEvaluation)
        .where(SqlEvaluation.run_id == run_id)
        .order_by(SqlEvaluation.split, SqlEvaluation.metric, SqlEvaluation.step, SqlEvaluation.id)
    )
    return [EvaluationRecord.from_row(r) for r in s.scalars(query)]
