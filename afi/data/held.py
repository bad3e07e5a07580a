"""Held frames: animation shows each drawing for 1, 2 or 3 frames ("on ones/twos/threes").

A frame repeats the current drawing when it is near-identical to the drawing's *first* frame, not
merely to the previous frame, so a slow change cannot creep through one small step at a time.
"Near-identical" is judged per pixel, never by the mean difference alone: codec noise is a few
levels on a few pixels, a new drawing changes some pixels a lot, and a fade or dissolve changes
many pixels a little. So a frame is a hold only when
  - at most `max_changed_fraction` of pixels differ by more than `pixel_tolerance` (any channel):
    catches new drawings, however small the moving part;
  - the mean absolute difference is at most `max_mean_abs` levels: catches dissolves, whose
    per-pixel steps hide under the tolerance but add up over the frame;
  - the mean signed difference is within `max_mean_shift` levels: catches slow fades, since
    codec noise averages to zero and a fade does not.
Defaults come from H.264 encodes of `synth` cartoons at CRF 16-28, 128-256 px: held frames stay
under 0.0002 changed / 1.2 mean abs, while the smallest real drawing change is above 0.001 changed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import cv2
import numpy as np

from afi.errors import UsageError


@dataclass(frozen=True)
class HoldConfig:
    # Per-pixel change (0-255, max over channels) above which a pixel counts as changed: above
    # codec ringing around outlines, below the outline-versus-fill contrast of a moved line.
    pixel_tolerance: int = 40
    max_changed_fraction: float = 0.0004
    max_mean_abs: float = 1.5
    max_mean_shift: float = 0.75

    def validate(self) -> HoldConfig:
        if not 0 < self.pixel_tolerance < 255:
            raise UsageError(f"pixel_tolerance must be in 1..254, got {self.pixel_tolerance}")
        if not 0 <= self.max_changed_fraction < 1:
            raise UsageError(
                f"max_changed_fraction must be in [0, 1), got {self.max_changed_fraction}"
            )
        if self.max_mean_abs < 0 or self.max_mean_shift < 0:
            raise UsageError("max_mean_abs and max_mean_shift must not be negative")
        return self


@dataclass(frozen=True)
class FrameChange:
    changed_fraction: float  # share of pixels whose largest channel change exceeds the tolerance
    mean_abs: float  # mean absolute difference over all pixels and channels (0-255 levels)
    mean_shift: float  # mean signed difference b - a (0-255 levels)


def measure_change(a: np.ndarray, b: np.ndarray, pixel_tolerance: int) -> FrameChange:
    """a, b: (H, W, 3) uint8 of the same size. (OpenCV throughout: ~10x numpy's axis reductions.)"""
    absolute = cv2.absdiff(a, b)  # (H, W, 3)
    red, green, blue = cv2.split(absolute)
    per_pixel = cv2.max(cv2.max(red, green), blue)  # (H, W) largest channel change
    return FrameChange(
        changed_fraction=np.count_nonzero(per_pixel > pixel_tolerance) / per_pixel.size,
        mean_abs=float(np.mean(cv2.mean(absolute)[:3])),
        mean_shift=float(np.mean(cv2.mean(b)[:3]) - np.mean(cv2.mean(a)[:3])),
    )


def is_same_drawing(a: np.ndarray, b: np.ndarray, config: HoldConfig) -> bool:
    if a.shape != b.shape:
        return False
    change = measure_change(a, b, config.pixel_tolerance)
    return (
        change.changed_fraction <= config.max_changed_fraction
        and change.mean_abs <= config.max_mean_abs
        and abs(change.mean_shift) <= config.max_mean_shift
    )


@dataclass(frozen=True)
class Drawing:
    """One distinct drawing: the first frame that shows it and how many frames it is held."""

    frame: int  # index of its first frame in the stream
    pts: float  # seconds
    hold: int


class HoldTracker:
    """Fed frames in order, tells whether each starts a new drawing."""

    def __init__(self, config: HoldConfig) -> None:
        self.config = config.validate()
        self.drawings: list[Drawing] = []
        self._anchor: np.ndarray | None = None

    def push(self, frame: int, pts: float, image: np.ndarray) -> bool:
        """True when `image` is a new drawing, False when it holds the current one."""
        if self._anchor is not None and is_same_drawing(self._anchor, image, self.config):
            last = self.drawings[-1]
            self.drawings[-1] = Drawing(frame=last.frame, pts=last.pts, hold=last.hold + 1)
            return False
        self._anchor = image
        self.drawings.append(Drawing(frame=frame, pts=pts, hold=1))
        return True


def detect_holds(
    images: list[np.ndarray] | np.ndarray,
    pts: list[float] | np.ndarray,
    config: HoldConfig = HoldConfig(),
) -> list[Drawing]:
    tracker = HoldTracker(config)
    for index, (image, time) in enumerate(zip(images, pts, strict=True)):
        tracker.push(index, float(time), image)
    return tracker.drawings


@dataclass(frozen=True)
class Cadence:
    """How a shot is animated: the most common hold length, and whether others are frequent."""

    dominant: int  # 1 = on ones, 2 = on twos, 3 = on threes
    histogram: dict[int, int]  # hold length -> number of drawings
    mixed: bool  # the dominant hold covers less than `purity` of the drawings

    @property
    def name(self) -> str:
        label = {1: "ones", 2: "twos", 3: "threes"}.get(self.dominant, f"{self.dominant}s")
        return f"mixed ({label} mostly)" if self.mixed else f"on {label}"


def detect_cadence(holds: list[int] | tuple[int, ...], purity: float = 0.7) -> Cadence:
    """Cadence of a shot from its drawings' hold lengths. The shot's last drawing is left out when
    there are others: a cut or the end of the video truncates it."""
    if not holds:
        raise UsageError("cadence needs at least one drawing")
    counted = list(holds[:-1]) if len(holds) > 1 else list(holds)
    histogram = Counter(counted)
    dominant, count = max(histogram.items(), key=lambda item: (item[1], -item[0]))
    return Cadence(
        dominant=dominant,
        histogram=dict(sorted(histogram.items())),
        mixed=count < purity * len(counted),
    )
