"""Encoding the output with PyAV: video in segments, then one file with the source's audio copied in.

Nothing is written under a name that says "complete" before it is: every file is written as
`NAME.partial.SUFFIX` (the suffix stays, so the container format is still recognised) and renamed
once its last byte is out. Joining segments copies their packets (no re-encoding): each segment
starts on a keyframe and was encoded with the same settings, so the pieces form one valid stream.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np

from afi.data.video import Colour, rgb_to_frame, tag_stream
from afi.errors import AfiError, UsageError

DEFAULT_CODEC = "libx264"
FALLBACK_CODEC = "mpeg4"  # in every FFmpeg build, when libx264 is not
# Flat-shaded animation at CRF 18 is visually lossless; "veryfast" (as afi.data.video writes)
# keeps the encoder a small share of a job whose cost is the interpolation.
CODEC_OPTIONS = {"libx264": {"crf": "18", "preset": "veryfast"}, "mpeg4": {"qscale": "2"}}


def partial_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}.partial{path.suffix}")


def choose_codec(requested: str | None) -> str:
    """The user's codec, checked; by default H.264 (libx264), else mpeg4."""
    if requested is None:
        return DEFAULT_CODEC if DEFAULT_CODEC in av.codecs_available else FALLBACK_CODEC
    try:
        codec = av.Codec(requested, "w")
    except (av.codec.codec.UnknownCodecError, ValueError):
        raise UsageError(f"unknown video encoder {requested!r}: try libx264, libx265, libvpx-vp9 or mpeg4") from None
    if codec.type != "video":
        raise UsageError(f"{requested!r} is an {codec.type} encoder: name a video encoder such as libx264")
    return requested


def check_output(path: Path, codec: str) -> Path:
    """The absolute output path, once it is known to be writable in a format that takes `codec`."""
    path = Path(path).expanduser().absolute()
    if path.is_dir():
        raise UsageError(f"output {path} is a folder: name a video file, e.g. {path / 'out.mp4'}")
    if not path.parent.is_dir():
        raise UsageError(f"cannot write {path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise UsageError(f"cannot write {path}: folder {path.parent} is not writable")
    try:
        container = av.open(str(partial_path(path)), mode="w")  # opens no file until the first write
    except ValueError:
        raise UsageError(f"cannot tell the video format of {path.name} from its suffix: use .mp4 or .mkv") from None
    with container:
        if codec not in container.supported_codecs:
            raise UsageError(f"a {path.suffix} file cannot hold {codec} video: use .mkv, or another --codec")
    return path


def check_audio_fits(output: Path, source: Path) -> None:
    """The source's audio streams can be copied as they are into the output's format."""
    with av.open(str(source)) as container, av.open(str(partial_path(output)), mode="w") as probe:
        for audio in container.streams.audio:
            if audio.codec_context.name not in probe.supported_codecs:
                raise UsageError(
                    f"a {output.suffix} file cannot hold the source's {audio.codec_context.name} audio: "
                    "write to .mkv instead"
                )


@dataclass(frozen=True)
class VideoSettings:
    codec: str
    fps: Fraction
    width: int  # of the frames given; the encoded size is rounded up to even
    height: int
    colour: Colour = Colour()  # the source's: kept, so copied frames stay the source's frames

    @property
    def encoded_size(self) -> tuple[int, int]:
        # 4:2:0 chroma needs even sizes: odd ones get one replicated column or row.
        return self.width + self.width % 2, self.height + self.height % 2


def _colour(codec: str, source: Colour) -> Colour:
    """The source's colour, in a chroma format the encoder takes (yuv420p when it lacks yuv444p)."""
    formats = [f.name for f in av.Codec(codec, "w").video_formats or ()]
    if formats and source.chroma not in formats:
        return replace(source, chroma="yuv420p")
    return source


class SegmentEncoder:
    """Writes frames to `path`; the file appears under that name only when the block ends normally."""

    def __init__(self, path: Path, settings: VideoSettings) -> None:
        self.path = path
        self.settings = settings
        self.partial = partial_path(path)
        self.frames = 0
        self.container = av.open(str(self.partial), mode="w")
        try:
            self.stream = self.container.add_stream(
                settings.codec, rate=settings.fps, options=CODEC_OPTIONS.get(settings.codec, {})
            )
            self.stream.width, self.stream.height = settings.encoded_size
            self.colour = _colour(settings.codec, settings.colour)
            self.stream.pix_fmt = self.colour.chroma
            tag_stream(self.stream.codec_context, self.colour)
        except BaseException:
            self._discard()
            raise

    def write(self, image: np.ndarray) -> None:
        """image: (H, W, 3) uint8 RGB of the settings' size."""
        h, w = image.shape[:2]
        if h % 2 or w % 2:
            image = np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        frame = rgb_to_frame(image, self.colour)
        frame.pts = self.frames  # in 1 / fps: the segment's own clock, offset when joined
        frame.time_base = 1 / self.settings.fps
        self._mux(self.stream.encode(frame))
        self.frames += 1

    def _mux(self, packets: list[av.Packet]) -> None:
        try:
            self.container.mux(packets)
        except av.error.FFmpegError as exc:
            raise AfiError(f"cannot encode {self.settings.codec} to {self.path.parent}: {exc}") from None

    def _discard(self) -> None:
        try:
            self.container.close()
        except av.error.FFmpegError:
            pass  # a half-written file: removed below whatever state its muxer was in
        self.partial.unlink(missing_ok=True)

    def __enter__(self) -> SegmentEncoder:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if kind is not None:
            self._discard()
            return
        try:
            self._mux(self.stream.encode())  # flush the encoder's delayed frames
            self.container.close()
        except BaseException:
            self._discard()
            raise
        os.replace(self.partial, self.path)


@dataclass(frozen=True)
class Segment:
    path: Path
    start: int  # index of its first frame in the whole output


def _timed(packet: av.Packet) -> tuple[float, av.Packet]:
    stamp = packet.dts if packet.dts is not None else packet.pts
    return float(stamp * packet.time_base), packet


def _video_packets(
    segments: Sequence[Segment], fps: Fraction, stream: av.VideoStream
) -> Iterator[tuple[float, av.Packet]]:
    for segment in segments:
        with av.open(str(segment.path)) as container:
            source = container.streams.video[0]
            offset = round(Fraction(segment.start) / fps / source.time_base)
            for packet in container.demux(source):
                if packet.dts is None:  # the demuxer's end-of-stream marker
                    continue
                packet.pts += offset
                packet.dts += offset
                packet.stream = stream
                yield _timed(packet)


def _audio_packets(
    container: av.container.InputContainer, streams: dict[int, av.stream.Stream]
) -> Iterator[tuple[float, av.Packet]]:
    # Output time 0 is the source's first video frame: audio keeps its offset from that frame.
    video = container.streams.video[0]
    start = video.start_time * video.time_base if video.start_time is not None else 0
    sources = [container.streams[index] for index in streams]
    for packet in container.demux(sources):
        if packet.dts is None:
            continue
        shift = round(start / packet.time_base)
        packet.pts = None if packet.pts is None else packet.pts - shift
        packet.dts -= shift
        packet.stream = streams[packet.stream.index]
        yield _timed(packet)


def join_segments(segments: Sequence[Segment], output: Path, fps: Fraction, audio_from: Path | None) -> None:
    """Write `output` from the encoded segments plus every audio stream of `audio_from`, copied
    packet for packet and interleaved by time; `output` appears only once complete."""
    partial = partial_path(output)
    try:
        with av.open(str(partial), mode="w") as out:
            with av.open(str(segments[0].path)) as first:
                video = out.add_stream_from_template(first.streams.video[0])
            source = av.open(str(audio_from)) if audio_from is not None else None
            try:
                streams = {}
                if source is not None:
                    for audio in source.streams.audio:
                        streams[audio.index] = out.add_stream_from_template(audio)
                merged = heapq.merge(
                    _video_packets(segments, fps, video),
                    *([_audio_packets(source, streams)] if streams else []),
                    key=lambda item: item[0],
                )
                for _, packet in merged:
                    out.mux(packet)
            finally:
                if source is not None:
                    source.close()
    except BaseException as exc:
        partial.unlink(missing_ok=True)
        if isinstance(exc, (av.error.FFmpegError, ValueError)):  # PyAV reports unsupported streams as ValueError
            raise AfiError(f"cannot write {output}: {exc}") from None
        raise
    os.replace(partial, output)
