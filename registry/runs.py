"""Runs: creation, the lifecycle state machine, heartbeats, stale detection and worker claiming.

Lifecycle (ALLOWED_TRANSITIONS):
    created -> queued -> running -> completed | failed | preempted | cancelled
    created -> running (direct start); created | queued -> cancelled
    failed | preempted -> queued (resume)
A running run whose worker died is not re-queued directly: `mark_stale` moves it to preempted
(or failed) first, so its history says what happened.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, or_, select, update
from sqlalchemy.orm import Session, joinedload, selectinload

from registry.clock import utcnow
from registry.db import session_scope
from registry.errors import DuplicateName, InvalidTransition, RegistryError, RunNotFound
from registry.lookup import find_row
from registry.records import RunRecord
from registry.schema import RUN_KINDS, RUN_STATUSES, SqlExperiment, SqlRun, SqlTag, SqlVariant

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    "created": frozenset({"queued", "running", "cancelled"}),
    "queued": frozenset({"running", "cancelled"}),
    "running": frozenset({"completed", "failed", "preempted", "cancelled"}),
    "failed": frozenset({"queued"}),
    "preempted": frozenset({"queued"}),
    "completed": frozenset(),
    "cancelled": frozenset(),
}
FINISHED = frozenset({"completed", "failed", "preempted", "cancelled"})
# Columns a worker or launcher may change while a run exists (progress, placement, cost).
UPDATABLE_FIELDS = frozenset(
    {
        "backend",
        "host",
        "worker_id",
        "accelerator",
        "spot",
        "hourly_price",
        "gpu_hours",
        "cost_usd",
        "step",
        "total_steps",
        "train_seconds",
        "sky_job_id",
        "trial_number",
        "git_commit",
        "message",
        "config",
        "config_hash",
    }
)


@dataclass(frozen=True)
class NewRun:
    variant_id: int
    width: int
    height: int
    kind: str = "interp"
    name: str | None = None  # generated as <variant>-<resolution>-<id> when None
    dataset_id: int | None = None
    experiment_id: int | None = None
    stage: int = 0
    stage_count: int = 1
    parent_run_id: int | None = None
    status: str = "created"  # or "queued" to hand it straight to workers
    backend: str = "local"
    host: str | None = None
    accelerator: str | None = None
    spot: bool = False
    hourly_price: float | None = None
    seed: int = 0
    config: dict[str, Any] | None = None
    config_hash: str | None = None
    git_commit: str | None = None
    total_steps: int | None = None
    trial_number: int | None = None
    tags: dict[str, str] = field(default_factory=dict)


def resolution_text(width: int, height: int) -> str:
    """'256' for square sizes, else 'WIDTHxHEIGHT'."""
    return str(width) if width == height else f"{width}x{height}"


def _run_query():  # type: ignore[no-untyped-def]
    return select(SqlRun).options(
        joinedload(SqlRun.variant),
        joinedload(SqlRun.dataset),
        joinedload(SqlRun.experiment),
        selectinload(SqlRun.tags),
    )


def _record(row: SqlRun) -> RunRecord:
    return RunRecord.from_row(
        row,
        variant=row.variant.name,
        arch=row.variant.arch,
        flow=row.variant.flow,
        disc=row.variant.disc,
        dataset=row.dataset.name if row.dataset else None,
        experiment=row.experiment.name if row.experiment else None,
        tags={tag.key: tag.value for tag in row.tags},
    )


def _load(s: Session, run_id: int) -> RunRecord:
    s.flush()
    s.expire_all()  # Core UPDATEs and DB defaults must show in the record
    row = s.scalars(_run_query().where(SqlRun.id == run_id)).unique().one()
    return _record(row)


def create_run(s: Session, run: NewRun, tags: dict[str, str] | None = None) -> RunRecord:
    """Record a run (status created, or queued); `tags` add to `run.tags`."""
    if run.width <= 0 or run.height <= 0:
        raise RegistryError(f"bad resolution {run.width}x{run.height}: use positive sizes")
    if run.kind not in RUN_KINDS:
        raise RegistryError(f"unknown run kind {run.kind!r}: choose one of {', '.join(RUN_KINDS)}")
    if run.status not in ("created", "queued"):
        raise InvalidTransition(f"a new run starts as created or queued, not {run.status!r}")
    if run.name is not None and s.scalar(select(SqlRun.id).where(SqlRun.name == run.name)):
        raise DuplicateName(f"run name {run.name!r} is taken: pick another --name")
    now = utcnow()
    values = {k: v for k, v in asdict(run).items() if k not in ("name", "tags")}
    row = SqlRun(
        **values,
        # A unique placeholder until the id exists; nobody sees it outside this transaction.
        name=run.name or f"pending-{uuid.uuid4().hex}",
        resolution=resolution_text(run.width, run.height),
        created_at=now,
        queued_at=now if run.status == "queued" else None,
    )
    s.add(row)
    s.flush()
    if run.name is None:
        variant_name = s.get_one(SqlVariant, row.variant_id).name
        row.name = f"{variant_name}-{row.resolution}-{row.id:04d}"
    all_tags = {**run.tags, **(tags or {})}
    if all_tags:
        set_tags(s, row.id, all_tags)
    return _load(s, row.id)


def _find(s: Session, id_or_name: int | str) -> SqlRun:
    return find_row(s, SqlRun, id_or_name, "run", "afi run list", error=RunNotFound)


def get_run(s: Session, id_or_name: int | str) -> RunRecord:
    return _load(s, _find(s, id_or_name).id)


def list_runs(
    s: Session,
    status: str | None = None,
    experiment: str | None = None,
    kind: str | None = None,
    limit: int | None = None,
) -> list[RunRecord]:
    """Runs, newest first."""
    query = _run_query().order_by(SqlRun.id.desc()).limit(limit)
    if status is not None:
        if status not in RUN_STATUSES:
            raise RegistryError(f"unknown status {status!r}: choose one of {', '.join(RUN_STATUSES)}")
        query = query.where(SqlRun.status == status)
    if experiment is not None:
        query = query.join(SqlRun.experiment).where(SqlExperiment.name == experiment)
    if kind is not None:
        query = query.where(SqlRun.kind == kind)
    return [_record(row) for row in s.scalars(query).unique()]


def _check_fields(fields: dict[str, Any]) -> None:
    unknown = set(fields) - UPDATABLE_FIELDS
    if unknown:
        raise RegistryError(
            f"cannot update run field(s) {', '.join(sorted(unknown))}: "
            f"updatable are {', '.join(sorted(UPDATABLE_FIELDS))}"
        )


def transition(
    s: Session,
    run_id: int,
    new_status: str,
    *,
    expected: set[str] | None = None,
    message: str | None = None,
    **fields: Any,
) -> RunRecord:
    """Move a run to `new_status` (locking its row), stamping the matching time column.

    `expected`: refuse unless the run is currently in one of these states (a guard against a
    concurrent change, e.g. cancelling only what is still queued).
    """
    _check_fields(fields)
    row = s.scalars(select(SqlRun).where(SqlRun.id == run_id).with_for_update()).first()
    if row is None:
        raise RunNotFound(f"run {run_id!r} not found: see `afi run list`")
    current = row.status
    if expected is not None and current not in expected:
        raise InvalidTransition(
            f"run {row.name!r} is {current}, not {' or '.join(sorted(expected))}: "
            "see `afi run show`"
        )
    allowed = ALLOWED_TRANSITIONS.get(current, frozenset())
    if new_status not in allowed:
        choices = ", ".join(sorted(allowed)) or "nothing (it is final)"
        raise InvalidTransition(
            f"run {row.name!r} cannot go from {current} to {new_status}: "
            f"from {current} it can go to {choices}"
        )
    now = utcnow()
    row.status = new_status
    if new_status == "queued":
        row.queued_at = now
    elif new_status == "running":
        row.started_at = row.heartbeat_at = now
        row.finished_at = None
        row.message = None
        row.attempt += 1
    else:
        row.finished_at = now
    if message is not None:
        row.message = message
    for name, value in fields.items():
        setattr(row, name, value)
    return _load(s, row.id)


def update_run(s: Session, run_id: int, **fields: Any) -> RunRecord:
    """Record progress, placement or cost (see UPDATABLE_FIELDS); not the status."""
    _check_fields(fields)
    if fields:
        result = s.execute(update(SqlRun).where(SqlRun.id == run_id).values(**fields))
        if result.rowcount == 0:
            raise RunNotFound(f"run {run_id!r} not found: see `afi run list`")
    return _load(s, _find(s, run_id).id)


def heartbeat(s: Session, run_id: int, step: int | None = None) -> str:
    """Stamp a running run as alive (and its last step); returns the run's status, so a worker
    sees `cancelled` (or `preempted` by mark_stale) and stops."""
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if step is not None:
        values["step"] = step
    result = s.execute(
        update(SqlRun).where(SqlRun.id == run_id, SqlRun.status == "running").values(**values)
    )
    if result.rowcount:
        return "running"
    status = s.scalar(select(SqlRun.status).where(SqlRun.id == run_id))
    if status is None:
        raise RunNotFound(f"run {run_id!r} not found: see `afi run list`")
    return status


def set_tags(s: Session, run_id: int, tags: dict[str, str]) -> None:
    """Add or overwrite tags on a run."""
    existing = {t.key: t for t in s.scalars(select(SqlTag).where(SqlTag.run_id == run_id))}
    for key, value in tags.items():
        if key in existing:
            existing[key].value = str(value)
        else:
            s.add(SqlTag(run_id=run_id, key=key, value=str(value)))
    s.flush()


def find_stale(s: Session, older_than_seconds: float) -> list[RunRecord]:
    """Running runs with no heartbeat for `older_than_seconds` (their process is likely dead)."""
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    query = _run_query().where(
        SqlRun.status == "running",
        or_(
            SqlRun.heartbeat_at < cutoff,
            (SqlRun.heartbeat_at.is_(None)) & (SqlRun.started_at < cutoff),
        ),
    )
    return [_record(row) for row in s.scalars(query.order_by(SqlRun.id)).unique()]


def mark_stale(s: Session, older_than_seconds: float, to: str = "preempted") -> list[int]:
    """Move stale running runs to `to` (preempted: resumable, or failed); returns their ids."""
    if to not in ("preempted", "failed"):
        raise RegistryError(f"stale runs go to preempted or failed, not {to!r}")
    marked = []
    for run in find_stale(s, older_than_seconds):
        last = run.heartbeat_at or run.started_at
        transition(
            s,
            run.id,
            to,
            expected={"running"},
            message=f"no heartbeat since {last} (worker {run.worker_id or '?'}): marked {to}",
        )
        marked.append(run.id)
    return marked


def claim_next_run(
    engine: Engine, worker_id: str, backend: str = "local", host: str | None = None
) -> RunRecord | None:
    """Atomically take the oldest queued run for `backend` and mark it running; None if none.

    MySQL/MariaDB: SELECT ... FOR UPDATE SKIP LOCKED, so workers never wait on each other's row.
    SQLite: the session's transaction is BEGIN IMMEDIATE (registry.db), so claims serialise.
    """
    with session_scope(engine) as s:
        run_id = s.scalar(
            select(SqlRun.id)
            .where(SqlRun.status == "queued", SqlRun.backend == backend)
            .order_by(SqlRun.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if run_id is None:
            return None
        return transition(
            s, run_id, "running", expected={"queued"}, worker_id=worker_id, host=host
        )
