"""Checkpoint rows: where each saved step lives, its hash, and which one is the run's best."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from registry.clock import utcnow
from registry.errors import NotFound
from registry.records import CheckpointRecord
from registry.schema import SqlCheckpoint


def add_checkpoint(
    s: Session,
    run_id: int,
    step: int,
    path: str,
    size_bytes: int,
    sha256: str,
    metric_value: float | None = None,
) -> CheckpointRecord:
    """Record a checkpoint; saving the same step again (a resumed run) replaces its row."""
    row = s.scalars(
        select(SqlCheckpoint).where(SqlCheckpoint.run_id == run_id, SqlCheckpoint.step == step)
    ).first()
    if row is None:
        row = SqlCheckpoint(run_id=run_id, step=step, is_best=False)
        s.add(row)
    row.path, row.size_bytes, row.sha256 = path, size_bytes, sha256
    row.metric_value = metric_value
    row.created_at = utcnow()
    s.flush()
    return CheckpointRecord.from_row(row)


def _find(s: Session, checkpoint_id: int) -> SqlCheckpoint:
    row = s.get(SqlCheckpoint, checkpoint_id)
    if row is None:
        raise NotFound(f"checkpoint {checkpoint_id} not found: see `afi run show RUN`")
    return row


def set_best(s: Session, run_id: int, checkpoint_id: int) -> CheckpointRecord:
    """Make `checkpoint_id` the run's only best checkpoint."""
    row = _find(s, checkpoint_id)
    if row.run_id != run_id:
        raise NotFound(f"checkpoint {checkpoint_id} does not belong to run {run_id}")
    s.execute(
        update(SqlCheckpoint)
        .where(SqlCheckpoint.run_id == run_id, SqlCheckpoint.id != checkpoint_id)
        .values(is_best=False)
    )
    row.is_best = True
    s.flush()
    return CheckpointRecord.from_row(row)


def list_checkpoints(s: Session, run_id: int) -> list[CheckpointRecord]:
    query = select(SqlCheckpoint).where(SqlCheckpoint.run_id == run_id).order_by(SqlCheckpoint.step)
    return [CheckpointRecord.from_row(r) for r in s.scalars(query)]


def best_checkpoint(s: Session, run_id: int) -> CheckpointRecord | None:
    query = select(SqlCheckpoint).where(SqlCheckpoint.run_id == run_id, SqlCheckpoint.is_best)
    row = s.scalars(query).first()
    return CheckpointRecord.from_row(row) if row else None


def latest_checkpoint(s: Session, run_id: int) -> CheckpointRecord | None:
    query = (
        select(SqlCheckpoint)
        .where(SqlCheckpoint.run_id == run_id)
        .order_by(SqlCheckpoint.step.desc())
        .limit(1)
    )
    row = s.scalars(query).first()
    return CheckpointRecord.from_row(row) if row else None


def delete_checkpoint(s: Session, checkpoint_id: int) -> CheckpointRecord:
    """Delete the row (evaluations keep their values, losing the link); the caller deletes the file."""
    row = _find(s, checkpoint_id)
    record = CheckpointRecord.from_row(row)
    s.delete(row)
    s.flush()
    return record
