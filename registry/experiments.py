"""Experiments: named groups of runs (a curriculum, an ablation, an Optuna study...)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry.clock import utcnow
from registry.errors import DuplicateName
from registry.lookup import find_row
from registry.records import ExperimentRecord
from registry.schema import SqlExperiment, SqlRun


def get_or_create_experiment(
    s: Session, name: str, kind: str = "single", spec: dict[str, Any] | None = None
) -> ExperimentRecord:
    """The experiment `name`, created on first use. `spec=None` joins it whatever its spec;
    a different spec under an existing name raises DuplicateName."""
    existing = s.scalars(select(SqlExperiment).where(SqlExperiment.name == name)).first()
    if existing is None:
        try:
            with s.begin_nested():  # a concurrent creator wins; we then read its row
                existing = SqlExperiment(name=name, kind=kind, spec=spec, created_at=utcnow())
                s.add(existing)
        except IntegrityError:
            existing = s.scalars(select(SqlExperiment).where(SqlExperiment.name == name)).one()
    if spec is not None and existing.spec is not None and existing.spec != spec:
        raise DuplicateName(
            f"experiment {name!r} already exists with a different spec: choose another name"
        )
    return _record(s, existing)


def _run_counts(s: Session, experiment_ids: list[int]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    query = (
        select(SqlRun.experiment_id, SqlRun.status, func.count(SqlRun.id))
        .where(SqlRun.experiment_id.in_(experiment_ids))
        .group_by(SqlRun.experiment_id, SqlRun.status)
    )
    for experiment_id, status, count in s.execute(query):
        counts[experiment_id][status] = count
    return counts


def _record(s: Session, row: SqlExperiment) -> ExperimentRecord:
    return ExperimentRecord.from_row(row, run_counts=_run_counts(s, [row.id]).get(row.id, {}))


def get_experiment(s: Session, name_or_id: str | int) -> ExperimentRecord:
    return _record(s, find_row(s, SqlExperiment, name_or_id, "experiment", "afi experiment list"))


def list_experiments(s: Session) -> list[ExperimentRecord]:
    rows = list(s.scalars(select(SqlExperiment).order_by(SqlExperiment.id)))
    counts = _run_counts(s, [r.id for r in rows])
    return [ExperimentRecord.from_row(r, run_counts=counts.get(r.id, {})) for r in rows]
