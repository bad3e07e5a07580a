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
# Chroma is resampled so that decoding then encoding gives back the source's samples: decoding
# repeats each chroma sample over its 2x2 block (what FFmpeg's own yuv420p -> rgb24 does), and
# encoding averages the block, which undoes it. Lanczos both ways, as before, blurred saturated
# colour edges at every round trip: on ffmpeg's testsrc2 (x264 crf 14) the frames `afi
# interpolate` only copies kept 26.9 dB mean RGB PSNR (chroma planes 33 / 30 dB before x264);
# now 39.3 dB (planes 47 / 51 dB), as ffmpeg re-encoding it keeps 41.2. tests/test_video_colour.py.
DECODE_CHROMA = Interpolation.POINT
ENCODE_CHROMA = Interpolation.AREA | Interpolation.ACCURATE_RND


@dataclass(frozen=True)
class Colour:
    """How a video's YUV samples stand for RGB (FFmpeg's AVColorSpace / AVColorRange codes): what
    decoding reads and encoding writes and tags, so the output plays with the source's colours."""

    chroma: str = "yuv420p"
    space: int = 2  # 1 BT.709, 5 or 6 BT.601, 2 unspecified (read as BT.601, as FFmpeg does)
    range: int = 1  # 1 limited (16-235), 2 full
    primaries: int = 2  # tags only: 2 unspecified
    trc: int = 2

    @classmethod
    def of_stream(cls, context: av.codec.context.CodecContext) -> Colour:
        pix_fmt = context.pix_fmt or "yuv420p"
        return cls(
            chroma="yuv444p" if pix_fmt.startswith(("yuv444", "yuvj444")) else "yuv420p",
            space=context.colorspace,
            range=2 if context.color_range == 2 or pix_fmt.startswith("yuvj") else 1,
            primaries=context.color_primaries,
            trc=context.color_trc,
        )


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
    colour: Colour = Colour()


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
            colour=Colour.of_stream(stream.codec_context),
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
    """(H, W, 3) uint8 RGB of a decoded frame, in its own matrix (BT.601 or BT.709) and range.
    PyAV reads the matrix from the frame but takes an unset range as limited: pass it."""
    full = frame.color_range == 2 or frame.format.name.startswith("yuvj")
    return frame.reformat(
        format="rgb24", interpolation=DECODE_CHROMA, src_color_range=2 if full else 1
    ).to_ndarray()


def rgb_to_frame(image: np.ndarray, colour: Colour) -> av.VideoFrame:
    """(H, W, 3) uint8 RGB as a frame in `colour`'s chroma format, matrix and range."""
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    return frame.reformat(
        format=colour.chroma,
        interpolation=ENCODE_CHROMA,
        dst_colorspace=colour.space if colour.space in (1, 5, 6) else 5,
        dst_color_range=colour.range,
    )


def tag_stream(context: av.codec.context.CodecContext, colour: Colour) -> None:
    """Say in the stream which matrix and range the samples use, so players read them right."""
    context.colorspace, context.color_range = colour.space, colour.range
    context.color_primaries, context.color_trc = colour.primaries, colour.trc


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
    colour: Colour = Colour(),
) -> Path:
    """Encode RGB frames (N, H, W, 3) to H.264 (mpeg4 when libx264 is missing), optionally with a
    sine tone as an AAC audio track so audio passthrough gets exercised downstream.
    quality is the x264 CRF (lower = better); mpeg4 gets an equivalent qscale. `colour`: the
    chroma format (yuv420p, or yuv444p with libx264), matrix and range written and tagged."""
    if len(frames) == 0:
        raise UsageError("write_video needs at least one frame")
    h, w = frames[0].shape[:2]
    if (h % 2 or w % 2) and colour.chroma == "yuv420p":
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
        video.width, video.height, video.pix_fmt = w, h, colour.chroma
        tag_stream(video.codec_context, colour)
        audio = None
        if tone_hz is not None:
            audio = container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        for image in frames:
            container.mux(video.encode(rgb_to_frame(image, colour)))
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
