"""PyTorch datasets and loaders over stored triplets.

Every random choice for a sample comes from a generator seeded with (seed, epoch, index), so a
batch is the same whatever the number of workers, and training resumes mid-epoch exactly: the
sampler is a stream of (epoch, index) pairs over seeded per-epoch permutations that can start at
any position.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from afi.config import DataConfig
from afi.errors import UsageError


class TripletLike(Protocol):
    """What the dataset reads from a triplet; registry.records.TripletRecord has it."""

    key: str
    shot: int
    frame0: str  # paths relative to the dataset root
    frame1: str
    frame2: str
    t: float


class FrameLike(Protocol):
    """registry.records.FrameRecord has it."""

    shot: int
    idx: int
    path: str
    pts: float | None


@dataclass(frozen=True)
class AugmentConfig:
    flip: bool = True  # horizontal and vertical, each with probability 1/2
    temporal_reverse: bool = True  # swap the ends, t -> 1 - t
    rot90: bool = False  # only applied when the crop is square
    color_jitter: bool = False  # same gain/offset on the three frames
    jitter_strength: float = 0.1

    @classmethod
    def from_data_config(cls, data: DataConfig) -> AugmentConfig:
        return cls(
            flip=data.flip,
            temporal_reverse=data.temporal_reverse,
            rot90=data.rot90,
            color_jitter=data.color_jitter,
        )


@dataclass(frozen=True)
class ShotSampler:
    """Arbitrary-timestep targets: with `probability`, a sample is replaced by frames (i, j, k),
    i < j < k, drawn from its shot within `max_span` stored frames, with t from their timestamps."""

    shots: dict[int, tuple[tuple[str, float], ...]]  # shot -> ((path, pts), ...) in time order
    probability: float = 0.5
    max_span: int = 4

    @classmethod
    def from_frames(
        cls, frames: Sequence[FrameLike], probability: float = 0.5, max_span: int = 4
    ) -> ShotSampler:
        if not 0 <= probability <= 1:
            raise UsageError(f"shot sampling probability must be in [0, 1], got {probability}")
        if max_span < 2:
            raise UsageError(f"max_span must be at least 2 frames, got {max_span}")
        by_shot: dict[int, list[tuple[int, str, float]]] = {}
        for frame in frames:
            if frame.pts is not None:
                by_shot.setdefault(frame.shot, []).append((frame.idx, frame.path, frame.pts))
        shots = {
            shot: tuple((path, pts) for _, path, pts in sorted(members))
            for shot, members in by_shot.items()
            if len(members) > 3  # three frames are already the stored triplet
        }
        return cls(shots=shots, probability=probability, max_span=max_span)

    def sample(
        self, rng: np.random.Generator, shot: int
    ) -> tuple[tuple[str, str, str], float] | None:
        frames = self.shots.get(shot)
        if frames is None or rng.random() >= self.probability:
            return None
        span = int(rng.integers(2, min(self.max_span, len(frames) - 1) + 1))
        i = int(rng.integers(0, len(frames) - span))
        j = int(rng.integers(i + 1, i + span))
        k = i + span
        (p0, t0), (p1, t1), (p2, t2) = frames[i], frames[j], frames[k]
        if t2 <= t0:  # equal timestamps would give no valid t; keep the stored triplet
            return None
        return (p0, p1, p2), (t1 - t0) / (t2 - t0)


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB view. OpenCV decodes WebP ~3x and PNG ~2x faster than PIL (CPU time,
    288 px cartoons); the BGR -> RGB swap is a strided view that `_to_tensor` copies for free,
    where cv2.cvtColor would wake OpenCV's thread pool in every worker."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise UsageError(
            f"cannot read image {path}: the dataset files are missing or damaged, re-import it"
        )
    return image[..., ::-1]


def _pad_to(image: np.ndarray, width: int, height: int) -> np.ndarray:
    h, w = image.shape[:2]
    if w >= width and h >= height:
        return image
    # Edge padding: zeros would teach the model black borders that real frames do not have.
    return np.pad(image, ((0, max(0, height - h)), (0, max(0, width - w)), (0, 0)), mode="edge")


@dataclass(frozen=True)
class Sample:
    key: str
    t: float
    frames: tuple[np.ndarray, np.ndarray, np.ndarray]  # (H, W, 3) uint8 RGB, possibly strided views


class TripletDataset(Dataset):
    """Items are dicts: frame0/frame1/frame2 (3, H, W) float in [0, 1], t () float, key str.

    `crop=(w, h)`: random crop for training (`augment` given), centre crop otherwise; images
    smaller than the crop are edge-padded. `crop=None`: full frames. Index with an int (epoch 0)
    or with the (epoch, index) pairs `EpochSampler` yields.
    """

    def __init__(
        self,
        root: Path | str,
        triplets: Sequence[TripletLike],
        crop: tuple[int, int] | None = None,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        split: str = "train",
        shot_sampler: ShotSampler | None = None,
    ) -> None:
        if not triplets:
            raise UsageError(
                f"no {split} triplets to load: check the dataset's split counts with `afi dataset show`"
            )
        if crop is not None and min(crop) <= 0:
            raise UsageError(f"crop must be positive, got {crop}")
        self.root = Path(root)
        # Plain tuples: cheap to pickle into each worker.
        self.items = [(t.key, t.shot, (t.frame0, t.frame1, t.frame2), float(t.t)) for t in triplets]
        self.crop = crop
        self.augment = augment
        self.seed = seed
        self.split = split
        self.shot_sampler = shot_sampler

    def __len__(self) -> int:
        return len(self.items)

    def sample(self, position: int | tuple[int, int]) -> Sample:
        """The cropped, augmented uint8 frames for (epoch, index); what loader workers batch."""
        epoch, index = position if isinstance(position, tuple) else (0, position)
        key, shot, paths, t = self.items[index]
        rng = np.random.default_rng([self.seed, epoch, index])
        if self.augment is not None and self.shot_sampler is not None:
            drawn = self.shot_sampler.sample(rng, shot)
            if drawn is not None:
                paths, t = drawn
                key = f"{key}@{'|'.join(Path(p).stem for p in paths)}"
        frames = [read_rgb(self.root / p) for p in paths]  # 3 x (H, W, 3) uint8
        frames = self._crop(frames, rng)
        if self.augment is not None:
            frames, t = _augment(
                frames,
                t,
                self.augment,
                rng,
                square=self.crop is not None and self.crop[0] == self.crop[1],
            )
        return Sample(key=key, t=t, frames=(frames[0], frames[1], frames[2]))

    def __getitem__(self, position: int | tuple[int, int]) -> dict[str, Any]:
        sample = self.sample(position)
        item: dict[str, Any] = {
            f"frame{k}": _to_tensor(frame) for k, frame in enumerate(sample.frames)
        }
        return {**item, "t": torch.tensor(sample.t, dtype=torch.float32), "key": sample.key}

    def _crop(self, frames: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
        if self.crop is None:
            return frames
        width, height = self.crop
        frames = [_pad_to(f, width, height) for f in frames]
        h, w = frames[0].shape[:2]
        if self.augment is not None:
            y, x = int(rng.integers(0, h - height + 1)), int(rng.integers(0, w - width + 1))
        else:
            y, x = (h - height) // 2, (w - width) // 2
        return [f[y : y + height, x : x + width] for f in frames]


def _to_unit_float(image: np.ndarray, out: np.ndarray) -> None:
    """(H, W, 3) uint8, any strides -> out (3, H, W) float32 in [0, 1], in one pass. numpy, not
    torch: torch's conversion of a strided view is several times slower and wants threads."""
    np.multiply(image.transpose(2, 0, 1), np.float32(1 / 255), out=out)


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    out = np.empty((3, *image.shape[:2]), np.float32)
    _to_unit_float(image, out)
    return torch.from_numpy(out)


def _batch_buffer(shape: tuple[int, ...]) -> torch.Tensor:
    """An empty float32 tensor; in a loader worker, in shared memory (as torch's default_collate
    allocates it), so the batch reaches the main process without another copy."""
    if get_worker_info() is None:
        return torch.empty(shape)
    template = torch.empty(0)
    storage = template._typed_storage()._new_shared(math.prod(shape), device="cpu")
    return template.new(storage).resize_(shape)


def collate_samples(samples: Sequence[Sample]) -> dict[str, Any]:
    """Batch uint8 samples straight into float tensors: frame0/1/2 (B, 3, H, W), t (B,), key [B].
    Converting here, once, into the batch buffer writes each float once; converting per item and
    stacking (torch's default) writes them twice and reads them once more."""
    h, w = samples[0].frames[0].shape[:2]
    if any(f.shape[:2] != (h, w) for s in samples for f in s.frames):
        raise UsageError("frames of different sizes in one batch: give the loader a crop size")
    batch: dict[str, Any] = {}
    for k in range(3):
        buffer = _batch_buffer((len(samples), 3, h, w))
        array = buffer.numpy()
        for b, sample in enumerate(samples):
            _to_unit_float(sample.frames[k], array[b])
        batch[f"frame{k}"] = buffer
    batch["t"] = torch.tensor([s.t for s in samples], dtype=torch.float32)
    batch["key"] = [s.key for s in samples]
    return batch


class _SampleView(Dataset):
    """What loader workers index: uint8 samples, left for `collate_samples` to convert."""

    def __init__(self, dataset: TripletDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, position: tuple[int, int]) -> Sample:
        return self.dataset.sample(position)


def _augment(
    frames: list[np.ndarray],
    t: float,
    config: AugmentConfig,
    rng: np.random.Generator,
    square: bool,
) -> tuple[list[np.ndarray], float]:
    # Draw every number whether or not its augmentation is on, so turning one off does not
    # change what the others do.
    flip_x, flip_y, reverse = rng.random(3) < 0.5
    quarter_turns = int(rng.integers(0, 4))
    gain = rng.uniform(1 - config.jitter_strength, 1 + config.jitter_strength, size=3)
    offset = rng.uniform(-config.jitter_strength, config.jitter_strength) * 255
    if config.flip and flip_x:
        frames = [f[:, ::-1] for f in frames]
    if config.flip and flip_y:
        frames = [f[::-1] for f in frames]
    if config.rot90 and square and quarter_turns:
        frames = [np.rot90(f, quarter_turns) for f in frames]
    if config.temporal_reverse and reverse:
        frames, t = frames[::-1], 1.0 - t
    if config.color_jitter:
        frames = [
            np.clip(f.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8) for f in frames
        ]
    return frames, t


class EpochSampler(Sampler):
    """A stream of (epoch, index): epoch e visits every index once in a permutation seeded by
    (seed, e). `start` skips that many samples of the stream, so a loader resumed at step s with
    batch b continues with exactly the samples it would have seen (start = s * b)."""

    def __init__(
        self,
        size: int,
        seed: int = 0,
        shuffle: bool = True,
        start: int = 0,
        epochs: int | None = None,
    ) -> None:
        if size <= 0:
            raise UsageError("cannot sample from an empty dataset")
        if start < 0:
            raise UsageError(f"sampler start must not be negative, got {start}")
        self.size, self.seed, self.shuffle, self.start, self.epochs = (
            size,
            seed,
            shuffle,
            start,
            epochs,
        )

    def order(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.size)
        return np.random.default_rng([self.seed, epoch, 0x5A3D]).permutation(self.size)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        position = self.start
        epoch, offset = divmod(position, self.size)
        while self.epochs is None or epoch < self.epochs:
            order = self.order(epoch)
            for index in order[offset:]:
                yield epoch, int(index)
            epoch, offset = epoch + 1, 0

    def __len__(self) -> int:
        if self.epochs is None:
            raise TypeError("an endless EpochSampler has no length")
        return max(0, self.epochs * self.size - self.start)


def _worker_init(_worker_id: int) -> None:
    # Workers decode images; intra-op threads would only fight the other workers for cores.
    # (Not cv2.setNumThreads: after fork it waits forever on the parent's OpenCV thread pool.)
    torch.set_num_threads(1)


def make_loader(
    dataset: TripletDataset,
    batch: int,
    workers: int = 0,
    seed: int = 0,
    start_step: int = 0,
    shuffle: bool = True,
    epochs: int | None = None,
    drop_last: bool = True,
    pin_memory: bool = False,
) -> DataLoader:
    """Training (defaults): endless, shuffled, resumable at `start_step` (batches already taken).
    Evaluation: `shuffle=False, epochs=1, drop_last=False`."""
    if batch <= 0:
        raise UsageError(f"batch must be positive, got {batch}")
    if workers < 0:
        raise UsageError(f"workers must not be negative, got {workers}")
    sampler = EpochSampler(
        len(dataset), seed=seed, shuffle=shuffle, start=start_step * batch, epochs=epochs
    )
    return DataLoader(
        _SampleView(dataset),
        batch_size=batch,
        collate_fn=collate_samples,
        sampler=sampler,
        num_workers=workers,
        drop_last=drop_last,
        pin_memory=pin_memory,
        worker_init_fn=_worker_init if workers else None,
        persistent_workers=workers > 0 and epochs is None,
        prefetch_factor=4 if workers else None,
    )
