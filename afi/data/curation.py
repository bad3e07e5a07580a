"""Curation: which candidate triplets are worth training on, with counts of what each filter drops.

Statistics are measured once, at full stored resolution, while the frames are in memory (see
`triplet_stats`); the filters then run on those numbers alone. A triplet is counted against the
first filter it fails, in this order:
  blank            a frame with almost no contrast (fade-to-black, title card)
  letterbox        a frame with black bars (only with `letterbox="drop"`; `"crop"`, the default,
                   crops the bars away at import so nothing is dropped)
  static           the two ends are the same picture: nothing to interpolate
  middle_equals_end  the middle is the same drawing as an end (a hold the stride skipped over)
  motion           the largest optical-flow step is more than `max_motion` of the frame width
  duplicate        the same three pictures (either direction) were already kept
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from afi.data.held import HoldConfig, is_same_drawing
from afi.data.video import DecodedFrame
from afi.errors import UsageError

FILTERS = ("blank", "letterbox", "static", "middle_equals_end", "motion", "duplicate")
LETTERBOX_POLICIES = ("crop", "drop", "keep")
# Small copies for flow and fingerprints: enough to see large motion, cheap to compute.
FLOW_SIDE = 160
FINGERPRINT_SIDE = 16
# A bar is a run of border rows/columns this dark and this flat (0-255 luma).
BAR_MAX_LUMA = 24.0
BAR_MAX_STD = 4.0
# Bars thinner than this share of the side are ignored (a dark outline at the edge is not a bar).
BAR_MIN_FRACTION = 0.02
# Bars are decided from a sequence's first frames; dark ones (a fade-in) would look all bar.
LETTERBOX_PROBE_FRAMES = 24


@dataclass(frozen=True)
class CurationConfig:
    enabled: bool = True
    min_contrast: float = 5.0  # luma standard deviation, 0-255
    static_threshold: float = 0.5  # mean absolute difference of the ends, 0-255 levels
    max_motion: float = 0.15  # 95th-percentile flow magnitude, as a share of the width
    dedupe: bool = True
    letterbox: str = "crop"
    hold: HoldConfig = field(default_factory=HoldConfig)

    def validate(self) -> CurationConfig:
        if self.letterbox not in LETTERBOX_POLICIES:
            raise UsageError(
                f"unknown letterbox policy {self.letterbox!r}: choose one of {', '.join(LETTERBOX_POLICIES)}"
            )
        if self.min_contrast < 0 or self.static_threshold < 0:
            raise UsageError("min_contrast and static_threshold must not be negative")
        if not self.max_motion > 0:
            raise UsageError(
                f"max_motion must be positive (a share of the width), got {self.max_motion}"
            )
        self.hold.validate()
        return self


@dataclass(frozen=True)
class Box:
    """A region (x0, y0) inclusive to (x1, y1) exclusive."""

    x0: int
    y0: int
    x1: int
    y1: int

    def crop(self, image: np.ndarray) -> np.ndarray:
        return image[self.y0 : self.y1, self.x0 : self.x1]

    def union(self, other: Box) -> Box:
        return Box(
            min(self.x0, other.x0),
            min(self.y0, other.y0),
            max(self.x1, other.x1),
            max(self.y1, other.y1),
        )


def _luma(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def _shrink(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return image
    return cv2.resize(
        image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
    )


def content_box(image: np.ndarray) -> Box:
    """The frame minus any dark flat bars along its borders (letterbox or pillarbox)."""
    luma = _luma(image).astype(np.float32)  # (H, W)
    h, w = luma.shape

    def bar_length(lines_mean: np.ndarray, lines_std: np.ndarray, side: int) -> int:
        dark = (lines_mean <= BAR_MAX_LUMA) & (lines_std <= BAR_MAX_STD)
        length = int(np.argmin(dark)) if not dark.all() else len(dark)
        return length if length >= max(2, BAR_MIN_FRACTION * side) else 0

    row_mean, row_std = luma.mean(axis=1), luma.std(axis=1)
    col_mean, col_std = luma.mean(axis=0), luma.std(axis=0)
    top = bar_length(row_mean, row_std, h)
    bottom = bar_length(row_mean[::-1], row_std[::-1], h)
    left = bar_length(col_mean, col_std, w)
    right = bar_length(col_mean[::-1], col_std[::-1], w)
    if top + bottom >= h or left + right >= w:  # a black frame is blank, not letterboxed
        return Box(0, 0, w, h)
    return Box(left, top, w - right, h - bottom)


def has_bars(image: np.ndarray) -> bool:
    h, w = image.shape[:2]
    return content_box(image) != Box(0, 0, w, h)


def crop_letterbox(
    frames: Iterable[DecodedFrame], min_contrast: float
) -> tuple[Box | None, Iterator[DecodedFrame]]:
    """Crop a sequence's bars: the box is the union of the content boxes of its first frames
    (those with contrast), so a dark scene edge on one frame does not crop the whole sequence.
    Returns (box, frames), box None when there is nothing to crop."""
    stream = iter(frames)
    head = list(itertools.islice(stream, LETTERBOX_PROBE_FRAMES))
    boxes = [content_box(f.image) for f in head if contrast(f.image) >= min_contrast]
    if not boxes:
        return None, itertools.chain(head, stream)
    box = functools.reduce(Box.union, boxes)
    h, w = head[0].image.shape[:2]
    if box == Box(0, 0, w, h):
        return None, itertools.chain(head, stream)
    cropped = (
        DecodedFrame(f.index, f.pts, np.ascontiguousarray(box.crop(f.image)))
        for f in itertools.chain(head, stream)
    )
    return box, cropped


def contrast(image: np.ndarray) -> float:
    return float(_luma(_shrink(image, 256)).std())


@dataclass(frozen=True)
class FrameStats:
    contrast: float
    letterboxed: bool
    fingerprint: bytes  # 16x16 luma, 16 levels: equal fingerprints = near-identical pictures

    @classmethod
    def of(cls, image: np.ndarray) -> FrameStats:
        tiny = cv2.resize(
            _luma(image), (FINGERPRINT_SIDE, FINGERPRINT_SIDE), interpolation=cv2.INTER_AREA
        )
        return cls(
            contrast=contrast(image), letterboxed=has_bars(image), fingerprint=(tiny >> 4).tobytes()
        )


@dataclass(frozen=True)
class TripletStats:
    min_contrast: float
    letterboxed: bool
    end_change: float  # mean absolute difference of frame0 and frame2, 0-255
    middle_equals_end: bool
    motion: float  # largest 95th-percentile flow magnitude of the two steps, share of the width
    signature: str  # direction-free fingerprint of the three pictures


def flow_motion(a: np.ndarray, b: np.ndarray) -> float:
    """95th-percentile optical-flow magnitude from a to b (DIS), as a share of the width."""
    small_a, small_b = _luma(_shrink(a, FLOW_SIDE)), _luma(_shrink(b, FLOW_SIDE))
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST).calc(
        small_a, small_b, None
    )  # (h, w, 2)
    magnitude = np.linalg.norm(flow, axis=2)
    return float(np.percentile(magnitude, 95)) / small_a.shape[1]


def triplet_stats(
    images: Sequence[np.ndarray],
    frames: Sequence[FrameStats],
    hold: HoldConfig,
    step_motions: tuple[float, float] | None = None,
) -> TripletStats:
    """images: three (H, W, 3) uint8 of one size; frames: their FrameStats. `step_motions`: the
    flow_motion of (first, middle) and (middle, last) when the caller already has them."""
    first, middle, last = images
    if step_motions is None:
        step_motions = (flow_motion(first, middle), flow_motion(middle, last))
    forward = b"".join(f.fingerprint for f in frames)
    backward = b"".join(f.fingerprint for f in reversed(frames))
    return TripletStats(
        min_contrast=min(f.contrast for f in frames),
        letterboxed=any(f.letterboxed for f in frames),
        end_change=float(cv2.absdiff(first, last).mean()),
        middle_equals_end=is_same_drawing(first, middle, hold)
        or is_same_drawing(middle, last, hold),
        motion=max(step_motions),
        signature=hashlib.blake2b(min(forward, backward), digest_size=16).hexdigest(),
    )


def failed_filter(stats: TripletStats, config: CurationConfig) -> str | None:
    """The first filter a triplet fails (dedupe aside, which needs the others), or None."""
    if stats.min_contrast < config.min_contrast:
        return "blank"
    if config.letterbox == "drop" and stats.letterboxed:
        return "letterbox"
    if stats.end_change < config.static_threshold:
        return "static"
    if stats.middle_equals_end:
        return "middle_equals_end"
    if stats.motion > config.max_motion:
        return "motion"
    return None


@dataclass(frozen=True)
class CurationResult:
    kept: tuple[int, ...]  # positions in the candidate list
    dropped: dict[str, int]  # filter name -> triplets it dropped

    def to_stats(self, candidates: int) -> dict[str, Any]:
        return {"candidates": candidates, "kept": len(self.kept), "dropped": self.dropped}


def curate(candidates: Sequence[TripletStats], config: CurationConfig) -> CurationResult:
    config = config.validate()
    dropped: Counter[str] = Counter({name: 0 for name in FILTERS})
    if not config.enabled:
        return CurationResult(kept=tuple(range(len(candidates))), dropped={})
    kept: list[int] = []
    seen: set[str] = set()
    for position, stats in enumerate(candidates):
        reason = failed_filter(stats, config)
        if reason is None and config.dedupe and stats.signature in seen:
            reason = "duplicate"
        if reason is not None:
            dropped[reason] += 1
            continue
        seen.add(stats.signature)
        kept.append(position)
    return CurationResult(kept=tuple(kept), dropped=dict(dropped))
