"""Small data the data-pipeline tests make for themselves: synthetic cartoons as videos and images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from afi.data.synth import SynthConfig, SynthVideo, generate_cartoon
from afi.data.video import write_video


def synth_video(path: Path, tone_hz: float | None = None, **config: object) -> SynthVideo:
    """Render a cartoon and write it as an .mp4 at `path`; returns the ground truth."""
    video = generate_cartoon(SynthConfig(**config))  # type: ignore[arg-type]
    write_video(path, video.frames, video.fps, tone_hz=tone_hz)
    return video


def write_rgb(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


def cartoon_frames(count: int, size: int = 64, seed: int = 0, cadence: int = 1) -> np.ndarray:
    """(count, size, size, 3) frames of one shot with no cut."""
    config = SynthConfig(
        clips=1, frames_per_clip=count, width=size, height=size, seed=seed, cadences=(cadence,)
    )
    return generate_cartoon(config).frames


@dataclass(frozen=True)
class SimpleTriplet:
    """Quacks like registry.records.TripletRecord for the loader."""

    key: str
    shot: int
    frame0: str
    frame1: str
    frame2: str
    t: float


@dataclass(frozen=True)
class SimpleFrame:
    shot: int
    idx: int
    path: str
    pts: float | None
