"""Scene cuts with PySceneDetect's content/adaptive detectors, on frames we decode ourselves.

We feed the detector the frames our own PyAV decode produces (rather than letting PySceneDetect
open the file) so the video is decoded once for cuts, holds and storage together.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

import cv2
import numpy as np
from scenedetect import FrameTimecode
from scenedetect.detectors import AdaptiveDetector, ContentDetector

from afi.errors import UsageError

DETECTORS = ("content", "adaptive")
DEFAULT_THRESHOLDS = {"content": 27.0, "adaptive": 3.0}
# Cut scores are colour statistics of the whole frame: a small copy scores the same and is faster.
DETECT_WIDTH = 256


@dataclass(frozen=True)
class CutConfig:
    detector: str = "content"
    threshold: float | None = None  # None: PySceneDetect's default for the detector
    # Shortest shot in frames; anime shots under half a second at 24 fps are rare.
    min_shot_frames: int = 8

    def validate(self) -> CutConfig:
        if self.detector not in DETECTORS:
            raise UsageError(
                f"unknown cut detector {self.detector!r}: choose one of {', '.join(DETECTORS)}"
            )
        if self.threshold is not None and not self.threshold > 0:
            raise UsageError(f"cut threshold must be positive, got {self.threshold}")
        if self.min_shot_frames < 1:
            raise UsageError(f"min_shot_frames must be at least 1, got {self.min_shot_frames}")
        return self

    @property
    def effective_threshold(self) -> float:
        return self.threshold if self.threshold is not None else DEFAULT_THRESHOLDS[self.detector]


class CutDetector:
    """Fed RGB frames in order; `finish()` returns the frame indices where a new shot starts."""

    def __init__(self, config: CutConfig, fps: float) -> None:
        self.config = config.validate()
        self._fps = Fraction(fps).limit_denominator(1001)
        if config.detector == "content":
            self._detector = ContentDetector(
                threshold=config.effective_threshold, min_scene_len=config.min_shot_frames
            )
        else:
            self._detector = AdaptiveDetector(
                adaptive_threshold=config.effective_threshold, min_scene_len=config.min_shot_frames
            )
        self._cuts: list[int] = []
        self._last = -1

    def push(self, index: int, image: np.ndarray) -> None:
        h, w = image.shape[:2]
        if w > DETECT_WIDTH:
            image = cv2.resize(
                image,
                (DETECT_WIDTH, max(1, round(h * DETECT_WIDTH / w))),
                interpolation=cv2.INTER_AREA,
            )
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        self._collect(self._detector.process_frame(FrameTimecode(index, self._fps), bgr))
        self._last = index

    def finish(self) -> list[int]:
        if self._last >= 0:
            self._collect(self._detector.post_process(FrameTimecode(self._last, self._fps)))
        return sorted(set(c for c in self._cuts if 0 < c <= self._last))

    def _collect(self, timecodes: list[FrameTimecode]) -> None:
        self._cuts.extend(tc.frame_num for tc in timecodes)


def detect_cuts(
    images: Iterable[np.ndarray], fps: float, config: CutConfig = CutConfig()
) -> list[int]:
    detector = CutDetector(config, fps)
    for index, image in enumerate(images):
        detector.push(index, image)
    return detector.finish()


def shot_of_frame(frame: int, cuts: list[int]) -> int:
    """Shot number (from 0) that `frame` belongs to, given sorted cut indices."""
    return int(np.searchsorted(np.asarray(cuts, dtype=np.int64), frame, side="right"))
