"""Video decode and encode with PyAV: frames with their presentation times, resized on the way in."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from av.video.reformatter import Interpolation

from afi.errors import UsageError

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".gif")
AUDIO_RATE = 44100
# swscale's defaults (bilinear chroma, fast rounding) shift colours by about a level and blur chroma
# at every RGB <-> YUV 4:2:0 conversion, and AFI converts twice (decode, then encode its output).
# Measured on a 480p cartoon frame, PSNR after one / two round trips: defaults 43.6 / 41.6 dB,
# Lanczos with accurate rounding 46.5 / 45.9 dB, for 9.5 ms more per 1080p frame decoded.
ACCURATE_YUV_TO_RGB = Interpolation.LANCZOS | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
ACCURATE_RGB_TO_YUV = ACCURATE_YUV_TO_RGB | Interpolation.FULL_CHR_H_INP


@dataclass(frozen=True)
class DecodedFrame:
    index: int  # position in decode order, from 0
    pts: float  # presentation time in seconds
    image: np.ndarray  # (H, W, 3) uint8 RGB


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    frame_count: int | None  # from the container; None when it does not say
    has_audio: bool


def _open(path: Path) -> av.container.InputContainer:
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise UsageError(
            f"cannot open video {path}: {exc}; check that the file is a complete video"
        ) from None
    if not container.streams.video:
        container.close()
        raise UsageError(f"{path} has no video stream: pass a video file")
    return container


def probe_video(path: Path) -> VideoInfo:
    with _open(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(24)
        return VideoInfo(
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            fps=float(rate),
            # Matroska and WebM headers give no frame count, but a duration (microseconds).
            frame_count=stream.frames
            or (round(container.duration / 1e6 * float(rate)) if container.duration else None),
            has_audio=bool(container.streams.audio),
        )


def resize_to_max_side(image: np.ndarray, max_side: int | None) -> np.ndarray:
    """Shrink (never enlarge) so the longer side is at most max_side; area filter avoids aliasing."""
    h, w = image.shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def frame_to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a decoded frame, converted without swscale's default bias."""
    return frame.reformat(format="rgb24", interpolation=ACCURATE_YUV_TO_RGB).to_ndarray()


def iter_frames(path: Path, max_side: int | None = None) -> Iterator[DecodedFrame]:
    """Decode every frame in presentation order. A decode error mid-stream (a truncated or
    corrupt file) raises UsageError: half a video silently imported would skew the dataset."""
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        time_base = stream.time_base or Fraction(1, 1000)
        rate = float(stream.average_rate or stream.guessed_rate or 24)
        index = 0
        try:
            for frame in container.decode(stream):
                pts = float(frame.pts * time_base) if frame.pts is not None else index / rate
                image = resize_to_max_side(frame_to_rgb(frame), max_side)
                yield DecodedFrame(index=index, pts=pts, image=image)
                index += 1
        except av.error.FFmpegError as exc:
            raise UsageError(
                f"video {path} is corrupt or truncated after frame {index}: {exc}"
            ) from None
        if index == 0:
            raise UsageError(f"video {path} has no decodable frames: check the file")


def frames_from_arrays(
    images: Iterable[np.ndarray], fps: float, max_side: int | None = None
) -> Iterator[DecodedFrame]:
    """In-memory frames (synth, image folders) as the same stream a decoded video gives."""
    for index, image in enumerate(images):
        yield DecodedFrame(index=index, pts=index / fps, image=resize_to_max_side(image, max_side))


def write_video(
    path: Path,
    frames: Sequence[np.ndarray] | np.ndarray,
    fps: float,
    tone_hz: float | None = None,
    quality: int = 16,
) -> Path:
    """Encode RGB frames (N, H, W, 3) to H.264 (mpeg4 when libx264 is missing), optionally with a
    sine tone as an AAC audio track so audio passthrough gets exercised downstream.
    quality is the x264 CRF (lower = better); mpeg4 gets an equivalent qscale."""
    if len(frames) == 0:
        raise UsageError("write_video needs at least one frame")
    h, w = frames[0].shape[:2]
    if h % 2 or w % 2:
        raise UsageError(f"video size {w}x{h} must be even for yuv420p: crop or pad by one pixel")
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w") as container:
        if "libx264" in av.codecs_available:
            video = container.add_stream(
                "libx264", rate=rate, options={"crf": str(quality), "preset": "veryfast"}
            )
        else:
            video = container.add_stream(
                "mpeg4", rate=rate, options={"qscale": str(max(1, quality // 6))}
            )
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        audio = None
        if tone_hz is not None:
            audio = container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            container.mux(video.encode(frame.reformat(format="yuv420p", interpolation=ACCURATE_RGB_TO_YUV)))
        container.mux(video.encode())
        if audio is not None:
            _write_tone(container, audio, tone_hz, duration=len(frames) / fps)
    return path


def _write_tone(
    container: av.container.OutputContainer,
    audio: av.audio.stream.AudioStream,
    hz: float,
    duration: float,
) -> None:
    samples = int(duration * AUDIO_RATE)
    chunk = 1024  # AAC frame size
    t = np.arange(samples, dtype=np.float32) / AUDIO_RATE
    wave = (0.2 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    for start in range(0, samples, chunk):
        piece = wave[start : start + chunk][None, :]  # (channels=1, samples) planar float
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(piece), format="fltp", layout="mono"
        )
        frame.sample_rate = AUDIO_RATE
        frame.pts = start
        container.mux(audio.encode(frame))
    container.mux(audio.encode())
