"""Checkpoints: files written atomically and identified by their sha256, rows in the registry.

A checkpoint holds everything an exact resume needs (`afi.train.loop.checkpoint_payload`). A file
that fails its hash is refused, set aside, and the one before it is used; retention keeps the
newest few and the best.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from afi.config import RunConfig
from afi.errors import AfiError
from afi.leaderboard import TRAINING_SPLIT
from afi.paths import runs_dir
from registry import checkpoints as registry_checkpoints
from registry import evaluations as registry_evaluations
from registry import runs as registry_runs
from registry.db import in_transaction, session_scope
from registry.records import CheckpointRecord, RunRecord

CHECKPOINT_SUFFIX = ".pt"
VAL_SPLIT = "val"


class CorruptCheckpoint(AfiError):
    """A checkpoint file is missing, truncated or altered: its bytes fail the recorded sha256."""


@dataclass(frozen=True)
class WrittenCheckpoint:
    path: Path
    size_bytes: int
    sha256: str


class StoredCheckpoint(Protocol):
    """What retention needs of a registry checkpoint row."""

    id: int
    step: int


def checkpoint_path(directory: Path, step: int) -> Path:
    return directory / f"step-{step:08d}{CHECKPOINT_SUFFIX}"


def fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable: without this a power cut can forget the new name."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(state: dict[str, Any], path: Path) -> WrittenCheckpoint:
    """Write `state` to `path` atomically: a reader sees the old file, or the whole new one.

    The state is serialised in memory first so that its hash is of exactly the bytes written.
    """
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getbuffer()
    digest = hashlib.sha256(data).hexdigest()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise AfiError(
            f"cannot write checkpoints to {path.parent}: a file is in the way; move it (or point "
            "AFI_HOME elsewhere) and resume the run"
        ) from None
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        # Disk full, file-size or quota limits, read-only disk: the previous checkpoint stands.
        raise AfiError(
            f"cannot write checkpoint {path} ({len(data):,} bytes): {exc.strerror or exc}: free space "
            "there (or point AFI_HOME elsewhere) and resume the run"
        ) from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)
    return WrittenCheckpoint(path=path, size_bytes=len(data), sha256=digest)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_checkpoint(
    path: Path, sha256: str, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """The state saved at `path`, once its bytes match the sha256 the registry recorded."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CorruptCheckpoint(f"checkpoint {path} cannot be read ({exc.strerror})") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise CorruptCheckpoint(
            f"checkpoint {path} fails its sha256 check ({len(data)} bytes, sha256 {actual[:12]}, "
            f"recorded {sha256[:12]}): the file is truncated or altered"
        )
    # weights_only: a checkpoint is data, and loading one must never run code.
    return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)


def checkpoints_to_delete(
    checkpoints: Sequence[StoredCheckpoint], keep_last: int, best_id: int | None
) -> list[StoredCheckpoint]:
    """Retention: keep the newest `keep_last` checkpoints and the best one; the rest may go."""
    newest_first = sorted(checkpoints, key=lambda c: c.step, reverse=True)
    return [c for c in newest_first[keep_last:] if c.id != best_id]


class CheckpointStore:
    """A run's checkpoints: files under AFI_HOME/runs/<id>/checkpoints, rows in the registry.

    A checkpoint's row, its validation rows and the retention deletions commit in one
    transaction after the file is durable, so the registry never points at a half-written file
    and a replayed step never records its validation twice.
    """

    def __init__(self, engine: Any, record: RunRecord, keep_last: int) -> None:
        self.engine = engine
        self.record = record
        self.keep_last = keep_last
        self.directory = runs_dir() / str(record.id) / "checkpoints"
        self.best_metric = RunConfig.from_dict(record.config or {}).best_metric

    def save(
        self, step: int, payload: dict[str, Any], values: dict[str, float] | None, is_best: bool
    ) -> None:
        written = save_checkpoint(payload, checkpoint_path(self.directory, step))
        run_id = self.record.id

        def record(session: Any) -> list[CheckpointRecord]:
            # The run's row first: its lock then covers the foreign-key checks of the rows added
            # below, instead of each taking a shared lock that the update would have to upgrade.
            registry_runs.heartbeat(session, run_id, step=step)
            row = registry_checkpoints.add_checkpoint(
                session,
                run_id,
                step,
                str(written.path),
                written.size_bytes,
                written.sha256,
                metric_value=None if values is None else values[self.best_metric],
            )
            if values is not None and not _evaluated_at(session, run_id, step):
                registry_evaluations.add_evaluations(
                    session,
                    run_id,
                    values,
                    split=TRAINING_SPLIT,  # crops: never ranked beside `afi eval`
                    dataset_id=self.record.dataset_id,
                    checkpoint_id=row.id,
                    step=step,
                )
            if is_best:
                registry_checkpoints.set_best(session, run_id, row.id)
            best = registry_checkpoints.best_checkpoint(session, run_id)
            doomed = checkpoints_to_delete(
                registry_checkpoints.list_checkpoints(session, run_id),
                self.keep_last,
                best.id if best else None,
            )
            for old in doomed:
                registry_checkpoints.delete_checkpoint(session, old.id)
            return doomed

        doomed = in_transaction(self.engine, record)
        # Files go after the rows: a crash in between leaves an unlisted file, never a dangling row.
        for old in doomed:
            Path(old.path).unlink(missing_ok=True)

    def latest_intact(
        self, notice: Callable[[str], None]
    ) -> tuple[CheckpointRecord, dict[str, Any]] | None:
        """The newest checkpoint whose file passes its sha256 check, with its contents.

        A checkpoint that fails is renamed `*.corrupt` (kept for inspection) and its row deleted,
        so the steps after the one used are replayed and re-recorded cleanly.
        """
        with session_scope(self.engine) as session:
            candidates = registry_checkpoints.list_checkpoints(session, self.record.id)
        for candidate in reversed(candidates):
            try:
                return candidate, load_checkpoint(Path(candidate.path), candidate.sha256)
            except CorruptCheckpoint as exc:
                self._quarantine(candidate)
                notice(f"{exc}: set it aside as {candidate.path}.corrupt and using the one before")
        return None

    def _quarantine(self, candidate: CheckpointRecord) -> None:
        path = Path(candidate.path)
        if path.exists():
            os.replace(path, path.with_name(path.name + ".corrupt"))
        with session_scope(self.engine) as session:
            registry_checkpoints.delete_checkpoint(session, candidate.id)
            registry_runs.update_run(
                session,
                self.record.id,
                message=f"checkpoint at step {candidate.step} failed its sha256 check",
            )


def _evaluated_at(session: Any, run_id: int, step: int) -> bool:
    return any(
        e.step == step and e.split == TRAINING_SPLIT
        for e in registry_evaluations.list_evaluations(session, run_id)
    )
