"""Small videos for the video tests: a synthetic cartoon with a cut, holds and a tone, and decoders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from afi.data.synth import SynthConfig, SynthVideo, generate_cartoon
from afi.data.video import write_video

# Seed 0 at this size: shot 1 on threes then twos, shot 2 on twos, a cut at frame 16; its last
# drawing before the cut is held 2 frames (14-15).
CARTOON = SynthConfig(clips=2, frames_per_clip=16, width=96, height=64, fps=12.0, seed=0)
CUT = 16


@dataclass(frozen=True)
class Decoded:
    frames: np.ndarray  # (N, H, W, 3) uint8
    fps: float
    duration: float  # seconds, from the container
    audio: tuple[str, ...]  # codec of each audio stream


def make_cartoon(path: Path, config: SynthConfig = CARTOON) -> SynthVideo:
    video = generate_cartoon(config)
    write_video(path, video.frames, config.fps, tone_hz=440.0)
    return video


def decode(path: Path) -> Decoded:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
        audio = tuple(s.codec_context.name for s in container.streams.audio)
        return Decoded(frames, float(stream.average_rate), container.duration / 1e6, audio)


def write_audio_only(path: Path, seconds: float = 1.0) -> Path:
    rate = 44100
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=rate, layout="mono")
        samples = (0.2 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate)).astype(np.float32)
        for start in range(0, len(samples), 1024):
            frame = av.AudioFrame.from_ndarray(samples[None, start : start + 1024], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def blend(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return (1 - t) * a.astype(np.float32) + t * b.astype(np.float32)
