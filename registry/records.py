"""Plain frozen records that every query returns; never live ORM objects.

Rows are converted inside the session (`from_row`), so callers can use records after it closes.
`to_dict()` gives JSON-ready values: datetimes (stored as naive UTC) become ISO strings with +00:00.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, TypeVar

R = TypeVar("R", bound="Record")


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc).isoformat()
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value


@dataclass(frozen=True)
class Record:
    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_row(cls: type[R], row: Any, **extra: Any) -> R:
        """Copy the values of `row` (ORM object or result row) whose names match the fields."""
        # Result rows go through _mapping: attributes such as Row.t or Row.count are methods.
        mapping = getattr(row, "_mapping", None)
        names = [f.name for f in fields(cls) if f.name not in extra]
        if mapping is not None:
            values = {name: mapping[name] for name in names}
        else:
            values = {name: getattr(row, name) for name in names}
        return cls(**values, **extra)


@dataclass(frozen=True)
class DatasetRecord(Record):
    id: int
    name: str
    source: str | None
    format: str
    root: str
    width: int | None
    height: int | None
    shot_count: int
    frame_count: int
    triplet_count: int
    split_counts: dict[str, Any] | None
    filter_stats: dict[str, Any] | None
    params: dict[str, Any] | None
    content_hash: str | None
    disk_bytes: int
    created_at: datetime


@dataclass(frozen=True)
class FrameRecord(Record):
    id: int
    dataset_id: int
    shot: int
    idx: int
    path: str  # relative to the dataset root
    pts: float | None
    split: str


@dataclass(frozen=True)
class TripletRecord(Record):
    id: int
    dataset_id: int
    key: str
    split: str
    shot: int
    frame0: str  # paths relative to the dataset root; frame1 is the one to interpolate
    frame1: str
    frame2: str
    t: float


@dataclass(frozen=True)
class VariantRecord(Record):
    id: int
    name: str
    kind: str
    arch: str
    flow: str
    disc: str
    generator_config: dict[str, Any] | None
    discriminator_config: dict[str, Any] | None
    loss_config: dict[str, Any] | None
    config: dict[str, Any]
    param_count: int | None
    created_at: datetime


@dataclass(frozen=True)
class ExperimentRecord(Record):
    id: int
    name: str
    kind: str
    spec: dict[str, Any] | None
    created_at: datetime
    run_counts: dict[str, int] = field(default_factory=dict)  # status -> number of runs


@dataclass(frozen=True)
class RunRecord(Record):
    id: int
    name: str
    kind: str
    variant_id: int
    variant: str
    arch: str
    flow: str
    disc: str
    dataset_id: int | None
    dataset: str | None
    experiment_id: int | None
    experiment: str | None
    stage: int
    stage_count: int
    parent_run_id: int | None
    width: int
    height: int
    resolution: str
    status: str
    backend: str
    host: str | None
    worker_id: str | None
    accelerator: str | None
    spot: bool
    hourly_price: float | None
    gpu_hours: float
    cost_usd: float
    seed: int
    config: dict[str, Any] | None
    config_hash: str | None
    git_commit: str | None
    step: int
    total_steps: int | None
    attempt: int
    trial_number: int | None
    sky_job_id: str | None
    message: str | None
    train_seconds: float
    created_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    tags: dict[str, str]


@dataclass(frozen=True)
class MetricRecord(Record):
    run_id: int
    key: str
    step: int
    value: float | None
    logged_at: datetime


@dataclass(frozen=True)
class CheckpointRecord(Record):
    id: int
    run_id: int
    step: int
    path: str
    size_bytes: int
    sha256: str
    is_best: bool
    metric_value: float | None
    created_at: datetime


@dataclass(frozen=True)
class EvaluationRecord(Record):
    id: int
    run_id: int
    checkpoint_id: int | None
    dataset_id: int | None
    split: str
    metric: str
    value: float | None
    step: int | None
    created_at: datetime


@dataclass(frozen=True)
class LeaderboardRow(Record):
    """One run on one (dataset, split): each metric is its best over every evaluation."""

    run_id: int
    run: str
    kind: str
    is_baseline: bool
    experiment: str | None
    variant: str
    arch: str
    flow: str
    disc: str
    resolution: str
    stage: int
    status: str
    dataset: str | None
    split: str
    psnr: float | None
    ssim: float | None
    ms_ssim: float | None
    lineart: float | None
    lpips: float | None
    evals: int
    params: int | None
    train_seconds: float
    cost_usd: float
