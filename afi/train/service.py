"""Training a recorded run: take it over, train its stage, checkpoint, go on through the curriculum.

`start_run` is what `afi run start` calls. A run is one curriculum stage; when it completes, the
next stage is a child run (parent_run_id) that starts from this run's best checkpoint. Under
`torchrun` every process calls `start_run`; rank 0 alone writes to the registry and the disk and
hands the others what they need.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from afi.config import RunConfig
from afi.data.loader import AugmentConfig, make_loader
from afi.data.service import open_split
from afi.errors import AfiError, UsageError
from afi.metrics import lpips_unavailable
from afi.paths import tensorboard_dir
from afi.train.callbacks import RegistryCallback, TensorBoardCallback
from afi.train.checkpoint import VAL_SPLIT, CheckpointStore, load_checkpoint
from afi.train.device import DeviceSetup, setup_device
from afi.train.distributed import ProcessGroup, init_process_group, leave_process_group
from afi.train.loop import (
    Batch,
    Callback,
    Callbacks,
    Progress,
    StagePlan,
    StopFlag,
    TrainParts,
    Validate,
    build_parts,
    restore_payload,
    train_stage,
)
from afi.train.rng import seed_everything
from afi.train.validate import validate
from registry import checkpoints as registry_checkpoints
from registry import datasets as registry_datasets
from registry import runs as registry_runs
from registry.clock import utcnow
from registry.db import in_transaction, outage_tolerant, session_scope
from registry.errors import DatabaseUnavailable, InvalidTransition
from registry.records import RunRecord

# A running run whose worker is on another host counts as dead after this long without a heartbeat.
STALE_AFTER_S = 120.0
# How long training rides out a lost registry (a MariaDB restart, a failover) before it gives up;
# AFI_DB_OUTAGE_S overrides it.
OUTAGE_S = 600.0
SINGLE_PROCESS = ProcessGroup()


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def start_run(
    engine: Any,
    run: str | int | RunRecord,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    claimed_by: str | None = None,
) -> RunRecord:
    """Train `run` and every later curriculum stage; returns the last stage's record.

    `resume`: continue a preempted or failed run, or a running one whose process is gone, from its
    last intact checkpoint; on a completed run, go on with the curriculum's next stage.
    `claimed_by`: the worker id that already moved the run to running (`afi worker`); such a
    run is trained as it is.
    """
    key = run.id if isinstance(run, RunRecord) else run
    # Every registry write of training is idempotent (heartbeats, upserts, guarded transitions,
    # checkpoint rows by step), so each may simply run again after a lost connection.
    engine = outage_tolerant(engine, outage_s())
    group = init_process_group()
    try:
        record = group.broadcast(
            _take_over(engine, key, resume, claimed_by) if group.is_main else None
        )
        config = RunConfig.from_dict(record.config or {})
        setup = setup_device(config.precision, config.compile, local_rank=group.local_rank)
        while True:
            if record.status == "running":
                record = group.broadcast(train_stage_run(engine, record, setup, group, callbacks))
            if record.status != "completed" or record.stage + 1 >= record.stage_count:
                return record
            record = group.broadcast(
                _next_stage(engine, record, callbacks) if group.is_main else None
            )
    finally:
        if group.distributed:
            leave_process_group()


def outage_s() -> float:
    """AFI_DB_OUTAGE_S, else OUTAGE_S: seconds of registry outage training waits out."""
    raw = os.environ.get("AFI_DB_OUTAGE_S")
    try:
        value = OUTAGE_S if raw is None else float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise UsageError(f"AFI_DB_OUTAGE_S={raw!r} is not a number of seconds: set it to e.g. 600")
    return value


def _take_over(engine: Any, run: str | int, resume: bool, claimed_by: str | None) -> RunRecord:
    """Move the run to `running`, owned by this process; a completed run is returned as is."""
    return in_transaction(engine, lambda session: _take_over_in(session, run, resume, claimed_by))


def _take_over_in(session: Any, run: str | int, resume: bool, claimed_by: str | None) -> RunRecord:
    record = registry_runs.get_run(session, run)
    status, name = record.status, record.name
    if status == "running" and claimed_by is not None and record.worker_id == claimed_by:
        return record
    if status == "running" and record.worker_id == worker_id():
        return record  # this process took it over already: a retry after a lost commit
    if status == "completed":
        if not resume or record.stage + 1 >= record.stage_count:
            raise UsageError(
                f"run {name!r} is completed: nothing left to train (see `afi run show {name}`)"
            )
        return record
    if status == "cancelled":
        raise UsageError(f"run {name!r} is cancelled: create a new run with `afi run create`")
    if record.dataset is None:
        raise UsageError(
            f"run {name!r} has no dataset: create it with --dataset NAME "
            "(see `afi dataset list`)"
        )
    missing_lpips = lpips_unavailable()
    if RunConfig.from_dict(record.config or {}).best_metric == "lpips" and missing_lpips:
        raise UsageError(
            f"run {name!r} picks its best checkpoint by lpips, but {missing_lpips}; "
            "or use another best_metric"
        )
    if not resume and status != "created" and status != "queued":
        raise UsageError(
            f"run {name!r} is {status} at step {record.step}: "
            "pass --resume to continue it from its last checkpoint "
            f"(`afi run start {name} --resume`)"
        )
    if status == "running":
        registry_runs.transition(
            session, record.id, "preempted", expected={"running"}, message=_dead_owner(record)
        )
        status = "preempted"
    if status in ("failed", "preempted"):
        registry_runs.transition(session, record.id, "queued", expected={status})
        status = "queued"
    return registry_runs.transition(
        session,
        record.id,
        "running",
        expected={status},
        worker_id=worker_id(),
        host=socket.gethostname(),
    )


def _dead_owner(record: RunRecord) -> str:
    """Why the process training `record` is gone; raises if it may still be alive."""
    host, _, pid = (record.worker_id or "").rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return f"worker {record.worker_id} is gone: taken over by {worker_id()}"
        except PermissionError:
            pass  # alive, owned by someone else
    else:
        beat = record.heartbeat_at or record.started_at
        silent_s = (utcnow() - beat).total_seconds() if isinstance(beat, datetime) else float("inf")
        if silent_s > STALE_AFTER_S:
            return (
                f"no heartbeat for {silent_s:.0f}s from worker {record.worker_id}: "
                f"taken over by {worker_id()}"
            )
    raise AfiError(
        f"run {record.name!r} is still running (worker {record.worker_id}, last heartbeat "
        f"{record.heartbeat_at}): stop that process first, "
        f"or wait {STALE_AFTER_S:.0f}s after it dies"
    )


def _next_stage(engine: Any, parent: RunRecord, callbacks: Sequence[Callback]) -> RunRecord:
    """The child run of the next stage, running and owned by this process; created if new."""
    stage_index = parent.stage + 1
    stage = RunConfig.from_dict(parent.config or {}).stages[stage_index]

    def find_or_create(session: Any) -> tuple[RunRecord | None, RunRecord | None]:
        existing = next(
            (r for r in registry_runs.list_runs(session) if r.parent_run_id == parent.id), None
        )
        if existing is not None:
            return existing, None
        new = registry_runs.NewRun(
            variant_id=parent.variant_id,
            width=stage.width,
            height=stage.height,
            kind=parent.kind,
            dataset_id=parent.dataset_id,
            experiment_id=parent.experiment_id,
            stage=stage_index,
            stage_count=parent.stage_count,
            parent_run_id=parent.id,
            backend=parent.backend,
            host=socket.gethostname(),
            accelerator=parent.accelerator,
            spot=parent.spot,
            hourly_price=parent.hourly_price,
            seed=parent.seed,
            config=parent.config,
            config_hash=parent.config_hash,
            git_commit=parent.git_commit,
            total_steps=stage.steps,
            tags=parent.tags,
        )
        return None, registry_runs.create_run(session, new)

    existing, child = in_transaction(engine, find_or_create)
    if existing is not None:
        # An earlier attempt got as far as creating the child: continue it, never start a second.
        return (
            existing
            if existing.status == "completed"
            else _take_over(engine, existing.id, True, None)
        )
    Callbacks(callbacks).on_notice(
        f"stage {stage_index + 1}/{parent.stage_count}: run {child.name} at {stage.resolution}, "
        f"from the best checkpoint of {parent.name}"
    )
    return _take_over(engine, child.id, False, None)


def train_stage_run(
    engine: Any,
    record: RunRecord,
    setup: DeviceSetup,
    group: ProcessGroup = SINGLE_PROCESS,
    callbacks: Sequence[Callback] = (),
) -> RunRecord:
    """Train one running run (this process owns it) to the end of its stage, or until stopped.

    Returns the run's record after its final transition: completed, preempted (a signal), or
    failed (an exception, re-raised); a run the registry moved away from running is left alone.
    """
    config = RunConfig.from_dict(record.config or {})
    plan = StagePlan(
        config,
        record.stage,
        setup,
        group,
        meta={"run_id": record.id, "config_hash": record.config_hash},
    )
    store = CheckpointStore(engine, record, config.keep_last)
    stop = StopFlag()
    registry = (
        RegistryCallback(engine, record.id, stop, record.train_seconds, outage_s=outage_s())
        if group.is_main
        else None
    )
    try:
        stage = _prepare_stage(engine, record, plan, store, callbacks)
        stage_callbacks: list[Callback] = []
        if registry is not None:
            tensorboard = TensorBoardCallback(
                tensorboard_dir() / str(record.id), start_step=stage.progress.step
            )
            stage_callbacks = [registry, tensorboard, *callbacks]
        with stop_on_signals(stop):
            outcome = train_stage(
                plan,
                stage.parts,
                stage.batches,
                stage.progress,
                store,
                stage.validate,
                Callbacks(stage_callbacks),
                stop,
            )
    except DatabaseUnavailable as exc:
        # The registry stayed away past AFI_DB_OUTAGE_S: no state can be written. The run stays
        # `running` with a heartbeat that goes stale, which `afi worker` requeues; its metrics
        # and checkpoints up to the last one written are intact.
        raise AfiError(
            f"run {record.name!r} stopped: {exc}; it resumes from its last checkpoint with "
            f"`afi run start {record.name} --resume` once the database is back"
        ) from exc
    except BaseException as exc:
        if registry is not None:
            detail = str(exc).splitlines()[0] if str(exc) else ""
            _finish(
                engine,
                record,
                "failed",
                f"{type(exc).__name__}: {detail}",
                train_seconds=registry.train_seconds,
            )
        raise
    if registry is None:
        return record  # rank 0 reports the outcome
    fields = {"step": stage.progress.step, "train_seconds": registry.train_seconds}
    if outcome == "completed":
        message, reached = _completion(plan, stage.progress)
        return _finish(engine, record, "completed", message, **fields, **reached)
    message = (
        f"stopped at step {stage.progress.step} ({outcome}): "
        f"`afi run start {record.name} --resume` continues it"
    )
    return _finish(engine, record, "preempted", message, **fields)


def _completion(plan: StagePlan, progress: Progress) -> tuple[str | None, dict[str, Any]]:
    """The message and fields a completed stage records: a time-budgeted one, the steps it
    reached (its total is what the budget afforded, not the cap it was given)."""
    minutes = plan.stage.minutes
    if minutes is None:
        return None, {}
    message = f"time budget {minutes:g} min: {progress.step} steps (at most {plan.stage.steps})"
    return message, {"total_steps": progress.step}


@dataclass
class PreparedStage:
    parts: TrainParts
    batches: Iterator[Batch]
    progress: Progress
    validate: Validate | None


def _prepare_stage(
    engine: Any,
    record: RunRecord,
    plan: StagePlan,
    store: CheckpointStore,
    callbacks: Sequence[Callback],
) -> PreparedStage:
    """Models, data and progress: fresh, resumed from the newest intact checkpoint, or (a later
    stage's first attempt) initialised from the parent run's best checkpoint."""
    config, group, setup = plan.config, plan.group, plan.setup
    notice = Callbacks(callbacks).on_notice
    seed_everything(config.seed)
    parts = build_parts(plan, _feature_extractor(engine, config))
    train_set, val_batches = _datasets(engine, record, plan)
    # Rank 0 verifies the newest checkpoint; the other ranks load the one it chose.
    found = store.latest_intact(notice) if group.is_main else None
    latest = group.broadcast(None if found is None else found[0])
    payload = None if found is None else found[1]
    if latest is not None and payload is None:
        payload = load_checkpoint(Path(latest.path), latest.sha256)
    loader = make_loader(
        train_set,
        plan.stage.batch * group.world_size,
        config.data.workers,
        config.seed,
        start_step=0 if payload is None else payload["data_position"],
        pin_memory=setup.device.type == "cuda",
    )
    # The iterator draws its base seed from torch's RNG: make it before restoring the RNGs, as a
    # run that never stopped did before its first step.
    batches = iter(loader)
    progress = Progress()
    if payload is not None:
        progress = restore_payload(parts, payload)
        notice(f"run {record.name}: resumed from step {progress.step}")
    elif record.parent_run_id is not None:
        parts.load_weights(_parent_best(engine, record))

    def run_validation(model: Any) -> dict[str, float]:
        return validate(model, val_batches(), config.variant.kind, setup)

    return PreparedStage(parts, batches, progress, run_validation if val_batches else None)


def _finish(
    engine: Any, record: RunRecord, status: str, message: str | None, **fields: Any
) -> RunRecord:
    """Move the run to its final state, unless the registry already moved it (cancelled, stale)."""

    def finish(session: Any) -> RunRecord:
        try:
            return registry_runs.transition(
                session, record.id, status, expected={"running"}, message=message, **fields
            )
        except InvalidTransition:  # checked under the row's lock: a worker may move it any time
            return registry_runs.get_run(session, record.id)

    return in_transaction(engine, finish)


def _datasets(engine: Any, record: RunRecord, plan: StagePlan) -> tuple[Any, Any]:
    """The training set, and a function giving fresh validation batches (None: no val split)."""
    assert record.dataset is not None, "checked when the run was taken over"
    config, stage = plan.config, plan.stage
    crop = (stage.width, stage.height)
    train_set = open_split(
        engine,
        record.dataset,
        "train",
        crop=crop,
        augment=AugmentConfig.from_data_config(config.data),
        seed=config.seed,
        limit=stage.subset,
    )
    with session_scope(engine) as session:
        counts = registry_datasets.get_dataset(session, record.dataset).split_counts or {}
    if not counts.get(VAL_SPLIT):
        return train_set, None
    val_set = open_split(engine, record.dataset, VAL_SPLIT, crop=crop, limit=config.data.val_limit)

    def val_batches() -> Any:
        return make_loader(
            val_set, stage.batch, config.data.workers, shuffle=False, epochs=1, drop_last=False
        )

    return train_set, val_batches


def _feature_extractor(engine: Any, config: RunConfig) -> Any:
    """The frozen network perceptual/style losses need (VGG16, or another run's encoder), if any."""
    from afi.weights import load_feature_extractor

    source = config.variant.perceptual_source
    checkpoint = None
    if source.startswith("run:"):
        with session_scope(engine) as session:
            source_run = registry_runs.get_run(session, source.removeprefix("run:"))
            found = registry_checkpoints.best_checkpoint(session, source_run.id)
            found = found or registry_checkpoints.latest_checkpoint(session, source_run.id)
        if found is None:
            raise UsageError(
                f"perceptual source run {source_run.name!r} has no checkpoint: train it first"
            )
        checkpoint = Path(found.path)
    return load_feature_extractor(config.variant, checkpoint)


def _parent_best(engine: Any, record: RunRecord) -> dict[str, Any]:
    with session_scope(engine) as session:
        parent = registry_runs.get_run(session, record.parent_run_id)  # type: ignore[arg-type]
        best = registry_checkpoints.best_checkpoint(session, parent.id)
    if best is None:
        raise AfiError(
            f"run {parent.name!r} (the previous stage) has no best checkpoint: "
            "resume it to completion first"
        )
    return load_checkpoint(Path(best.path), best.sha256)


@contextmanager
def stop_on_signals(stop: StopFlag) -> Iterator[None]:
    """SIGTERM (spot preemption notice) and SIGINT (Ctrl-C) ask the loop to stop after its step.

    A second Ctrl-C interrupts at once, for a step that takes too long.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signals are delivered to the main thread only; its owner handles them
        return

    def request_stop(signum: int, _frame: Any) -> None:
        if stop.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.request(f"{signal.Signals(signum).name} received")

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
