"""`afi eval`: score a run's checkpoint, and the classical baselines, on a registered dataset.

Every method sees the same triplets in one pass over the data: each triplet's middle frame is
predicted from its ends at the triplet's t, quantised to 8 bits as a video or PNG would be, and
scored with afi.metrics. Results become `evaluations` rows, so the leaderboard ranks models and
baselines side by side. A baseline is recorded as a run of kind `baseline` (arch = method), one per
(method, dataset), reused by every later evaluation; its rows are written once per split, since
a classical method scores the same every time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import torch

from afi.data.loader import TripletDataset
from afi.data.service import open_split
from afi.errors import AfiError, UsageError
from afi.metrics import evaluate_batch
from afi.video.baselines import METHODS, BaselineInterpolator, FrameInterpolator
from afi.video.engine import ModelInterpolator, load_run_model
from registry import datasets as registry_datasets
from registry import evaluations as registry_evaluations
from registry import runs as registry_runs
from registry import variants as registry_variants
from registry.db import session_scope
from registry.errors import RunNotFound
from registry.records import CheckpointRecord, DatasetRecord, RunRecord

if TYPE_CHECKING:
    from sqlalchemy.orm import Session  # for annotations only: afi talks to the database through registry

# phase, triplets done, triplets in all
ProgressFn = Callable[[str, int, "int | None"], None]
DEFAULT_BATCH = 8


@dataclass(frozen=True)
class MethodScore:
    run: str
    run_id: int
    kind: str  # interp or baseline
    method: str  # the model's arch, or the baseline's name
    step: int | None  # of the checkpoint scored
    triplets: int
    metrics: dict[str, float]
    recorded: bool  # rows were written now (a baseline already scored on this split is not re-recorded)


@dataclass(frozen=True)
class EvaluationReport:
    dataset: str
    split: str
    scores: tuple[MethodScore, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "split": self.split, "scores": [asdict(s) for s in self.scores]}


@dataclass
class _Scorer:
    """One method being scored: running sums of each metric, weighted by batch size. A metric
    undefined on some frame sizes (ms_ssim below 161 px) averages over the batches that have it."""

    interpolator: FrameInterpolator
    run: RunRecord | None  # None for a baseline whose run is found or made when results are recorded
    checkpoint: CheckpointRecord | None
    predictions: Path | None  # folder for DIR/<triplet key>.png, or None
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    count: int = 0

    def add(
        self, frames0: np.ndarray, frames2: np.ndarray, times: np.ndarray, truth: torch.Tensor, keys: Sequence[str]
    ) -> None:
        predicted = self.interpolator(frames0, frames2, times)  # (B, H, W, 3) uint8
        prediction = torch.from_numpy(predicted).permute(0, 3, 1, 2).float().div_(255)
        for name, value in evaluate_batch(prediction, truth).items():
            self.sums[name] = self.sums.get(name, 0.0) + value * len(keys)
            self.counts[name] = self.counts.get(name, 0) + len(keys)
        self.count += len(keys)
        if self.predictions is not None:
            for key, image in zip(keys, predicted):
                write_png(self.predictions / f"{file_stem(key)}.png", image)

    def means(self) -> dict[str, float]:
        return {name: total / self.counts[name] for name, total in self.sums.items()}


def file_stem(key: str) -> str:
    """A triplet key as a file name: path separators and other awkward characters become '_'."""
    return re.sub(r"[^A-Za-z0-9._#:@-]", "_", key)


def write_png(path: Path, image: np.ndarray) -> None:
    """image (H, W, 3) uint8 RGB."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise AfiError(f"cannot write {path}: check that the folder is writable")


def _batches(dataset: TripletDataset, batch: int) -> Iterator[list[dict[str, Any]]]:
    """Items grouped `batch` at a time; a change of frame size (shots of different videos) starts
    a new group, since frames are scored whole."""
    group: list[dict[str, Any]] = []
    for index in range(len(dataset)):
        item = dataset[index]
        if group and (len(group) == batch or group[0]["frame1"].shape != item["frame1"].shape):
            yield group
            group = []
        group.append(item)
    if group:
        yield group


def _as_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [0, 1], read from 8-bit files -> (B, H, W, 3) uint8, exactly."""
    return images.mul(255).round_().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def score_methods(dataset: TripletDataset, scorers: Sequence[_Scorer], batch: int, progress: ProgressFn | None) -> None:
    done = 0
    for items in _batches(dataset, batch):
        frames0 = _as_uint8(torch.stack([i["frame0"] for i in items]))
        frames2 = _as_uint8(torch.stack([i["frame2"] for i in items]))
        truth = torch.stack([i["frame1"] for i in items])  # (B, 3, H, W)
        times = np.array([float(i["t"]) for i in items], np.float32)
        keys = [i["key"] for i in items]
        for scorer in scorers:
            scorer.add(frames0, frames2, times, truth, keys)
        done += len(items)
        if progress is not None:
            progress("eval", done, len(dataset))


def baseline_run(session: Session, method: str, dataset: DatasetRecord, size: tuple[int, int]) -> RunRecord:
    """The run that holds `method`'s results on `dataset`, created (completed) on first use."""
    for run in registry_runs.list_runs(session, kind="baseline"):
        if run.arch == method and run.dataset_id == dataset.id:
            return run
    variant = registry_variants.get_or_create_variant(
        session,
        registry_variants.NewVariant(
            name=method, kind="baseline", arch=method, config={"baseline": method}, param_count=0
        ),
    )
    name: str | None = f"{method}-{dataset.name}"
    try:
        registry_runs.get_run(session, name)
        name = None  # taken by another run: let the registry name this one
    except RunNotFound:
        pass
    new = registry_runs.NewRun(
        variant_id=variant.id, width=size[0], height=size[1], kind="baseline", name=name, dataset_id=dataset.id
    )
    run = registry_runs.create_run(session, new)
    registry_runs.transition(session, run.id, "running")
    return registry_runs.transition(session, run.id, "completed")


def evaluate_run(
    engine: Any,
    run: str | int,
    dataset: str,
    split: str = "test",
    checkpoint: Path | None = None,
    save_predictions: Path | None = None,
    baselines: bool = False,
    batch: int = DEFAULT_BATCH,
    progress: ProgressFn | None = None,
) -> EvaluationReport:
    """Score `run` (its best checkpoint, or `checkpoint`) on `dataset`'s `split`, and with
    `baselines` also nearest / blend / flow; write the evaluation rows and return the scores."""
    if batch < 1:
        raise UsageError(f"--batch must be at least 1, got {batch}")
    with session_scope(engine) as session:
        record = registry_runs.get_run(session, run)
        dataset_record = registry_datasets.get_dataset(session, dataset)
    triplets = open_split(engine, dataset_record.name, split)
    scorers = [_run_scorer(engine, record, checkpoint, batch, save_predictions)]
    if baselines:
        for method in METHODS:
            if record.kind == "baseline" and record.arch == method:
                continue
            folder = None if save_predictions is None else Path(save_predictions) / method
            scorers.append(_Scorer(BaselineInterpolator(method), None, None, folder))
    score_methods(triplets, scorers, batch, progress)
    first = triplets[0]["frame1"]  # (3, H, W)
    size = (int(first.shape[2]), int(first.shape[1]))
    # One transaction: every method's rows (and new baseline runs) are recorded, or none is.
    with session_scope(engine) as session:
        scores = tuple(_record(session, s, dataset_record, split, size) for s in scorers)
    return EvaluationReport(dataset_record.name, split, scores)


def _run_scorer(
    engine: Any, record: RunRecord, checkpoint: Path | None, batch: int, save_predictions: Path | None
) -> _Scorer:
    folder = None if save_predictions is None else Path(save_predictions)
    if record.kind == "baseline":
        if checkpoint is not None:
            raise UsageError(f"run {record.name!r} is the {record.arch} baseline: it has no checkpoint to pass")
        return _Scorer(BaselineInterpolator(record.arch), record, None, folder)
    loaded = load_run_model(engine, record.id, checkpoint)
    interpolator = ModelInterpolator(loaded, batch=batch)
    return _Scorer(interpolator, record, loaded.checkpoint, folder)


def _record(
    session: Session, scorer: _Scorer, dataset: DatasetRecord, split: str, size: tuple[int, int]
) -> MethodScore:
    run = scorer.run or baseline_run(session, scorer.interpolator.name, dataset, size)
    checkpoint = scorer.checkpoint
    values = scorer.means()
    # A classical method scores the same every time: its rows are written once per split.
    write = run.kind != "baseline" or not any(
        row.dataset_id == dataset.id and row.split == split
        for row in registry_evaluations.list_evaluations(session, run.id)
    )
    if write:
        registry_evaluations.add_evaluations(
            session,
            run.id,
            values,
            split=split,
            dataset_id=dataset.id,
            checkpoint_id=None if checkpoint is None else checkpoint.id,
            step=None if checkpoint is None else checkpoint.step,
        )
    return MethodScore(
        run=run.name,
        run_id=run.id,
        kind=run.kind,
        method=run.arch,
        step=None if checkpoint is None else checkpoint.step,
        triplets=scorer.count,
        metrics=values,
        recorded=write,
    )
