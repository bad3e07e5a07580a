"""`afi interpolate`: a video in, the same video at a higher frame rate out, its audio untouched.

Two passes over the input, so an episode never has to fit in memory:
1. analysis: decode every frame once, find scene cuts (PySceneDetect) and held drawings
   (afi.data.held), and make the re-timing plan (afi.video.plan);
2. rendering: decode again, keep only the frames the plan still needs, compute the in-betweens in
   batches, encode segment by segment (afi.video.resume), then join the segments and copy the
   audio in (afi.video.encode).
Frames are timed by their index at the stream's average rate (constant frame rate).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from afi.data.cuts import CutConfig, CutDetector
from afi.data.held import Drawing, HoldConfig, HoldTracker
from afi.data.video import DecodedFrame, iter_frames, probe_video
from afi.errors import AfiError, UsageError
from afi.video.baselines import FrameInterpolator
from afi.video.encode import (
    Segment,
    SegmentEncoder,
    VideoSettings,
    check_audio_fits,
    check_output,
    choose_codec,
    join_segments,
)
from afi.video.plan import PlanConfig, PlanItem, RetimePlan, Source, first_frame, plan_retiming
from afi.video.resume import WorkFolder, job_key

# phase ("analyse", "interpolate", "join"), frames done, frames in all (None: not known yet)
ProgressFn = Callable[[str, int, "int | None"], None]
# Ten seconds of 24 fps output: what an interrupted job may have to redo.
DEFAULT_SEGMENT_FRAMES = 240
MAX_FACTOR = 64  # 24 fps x 64 is already past any display
MAX_FPS = 1000


@dataclass(frozen=True)
class InterpolateRequest:
    input: Path
    output: Path
    factor: float | None = None  # output rate = source rate x factor (2 when neither is given)
    fps: float | None = None  # or this output rate
    keep_timing: bool = False
    codec: str | None = None  # None: libx264, or mpeg4 where it is missing
    batch: int = 8  # in-betweens computed per call to the interpolator
    resume: bool = False
    segment_frames: int = DEFAULT_SEGMENT_FRAMES
    cuts: CutConfig = field(default_factory=CutConfig)
    holds: HoldConfig = field(default_factory=HoldConfig)
    max_span: int = PlanConfig.max_span

    def validate(self) -> InterpolateRequest:
        if self.factor is not None and self.fps is not None:
            raise UsageError("pass --factor or --fps, not both")
        # Bounds a video can use: past them the output only grows (--fps 1e9 wrote GBs a minute).
        for what, value, most in (("--factor", self.factor, MAX_FACTOR), ("--fps", self.fps, MAX_FPS)):
            if value is not None and not 0 < value <= most:
                raise UsageError(f"{what} must be in (0, {most}], got {value:g}")
        if self.batch < 1:
            raise UsageError(f"--batch must be at least 1, got {self.batch}")
        if self.segment_frames < 1:
            raise UsageError(f"--segment-frames must be at least 1, got {self.segment_frames}")
        if not Path(self.input).is_file():
            raise UsageError(f"input {self.input} does not exist: pass a video file")
        self.cuts.validate()
        self.holds.validate()
        PlanConfig(self.keep_timing, self.max_span).validate()
        return self

    def output_fps(self, source_fps: Fraction) -> Fraction:
        if self.fps is not None:
            return Fraction(self.fps).limit_denominator(1001)
        return source_fps * Fraction(self.factor if self.factor is not None else 2).limit_denominator(1000)


@dataclass(frozen=True)
class VideoAnalysis:
    frame_count: int
    width: int
    height: int
    fps: Fraction
    has_audio: bool
    cuts: tuple[int, ...]  # frames where a new shot starts
    drawings: tuple[Drawing, ...]  # every frame's drawing, with its hold length


@dataclass(frozen=True)
class InterpolateResult:
    output: Path
    interpolator: str
    codec: str
    source_frames: int
    output_frames: int
    source_fps: float
    output_fps: float
    cuts: int
    drawings: int
    inbetweens: int
    resumed_frames: int  # output frames taken from an interrupted job's finished segments
    audio: bool
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "output": str(self.output)}


def analyse_video(
    path: Path, cuts: CutConfig = CutConfig(), holds: HoldConfig = HoldConfig(), progress: ProgressFn | None = None
) -> VideoAnalysis:
    """Decode `path` once: its size, rate, scene cuts and held drawings."""
    info = probe_video(path)
    fps = Fraction(info.fps).limit_denominator(1001)
    detector = CutDetector(cuts, float(fps))
    tracker = HoldTracker(holds)
    count = 0
    for frame in iter_frames(path):
        detector.push(frame.index, frame.image)
        tracker.push(frame.index, frame.pts, frame.image)
        count += 1
        if progress is not None:
            progress("analyse", count, info.frame_count)
    height, width = frame.image.shape[:2]
    return VideoAnalysis(
        frame_count=count,
        width=width,
        height=height,
        fps=fps,
        has_audio=info.has_audio,
        cuts=tuple(detector.finish()),
        drawings=tuple(tracker.drawings),
    )


class FrameCache:
    """Decoded source frames, in order, keeping only those the plan needs and has not passed."""

    def __init__(self, frames: Iterator[DecodedFrame], needed: frozenset[int], expected: int) -> None:
        self.frames = frames
        self.needed = needed
        self.expected = expected
        self.kept: dict[int, np.ndarray] = {}
        self.next_index = 0

    def get(self, index: int) -> np.ndarray:
        while self.next_index <= index:
            frame = next(self.frames, None)
            if frame is None:
                raise AfiError(
                    f"the video ended after {self.next_index} frames, the analysis counted {self.expected}: "
                    "was it changed during the job?"
                )
            if frame.index in self.needed:
                self.kept[frame.index] = frame.image
            self.next_index += 1
        return self.kept[index]

    def release_before(self, index: int) -> None:
        for old in [i for i in self.kept if i < index]:
            del self.kept[old]


def render_segment(
    items: tuple[PlanItem, ...],
    cache: FrameCache,
    interpolator: FrameInterpolator,
    encoder: SegmentEncoder,
    batch: int,
    advance: Callable[[int], None],
) -> None:
    """Encode the output frames of `items` in order, computing in-betweens `batch` at a time."""
    # Output frames in order: a source picture, or the two ends and t of an in-between.
    queue: list[np.ndarray | tuple[np.ndarray, np.ndarray, float]] = []
    pending = 0  # in-betweens in the queue

    def flush() -> None:
        nonlocal pending
        jobs = [entry for entry in queue if isinstance(entry, tuple)]
        computed = iter(interpolator(*_stack(jobs)) if jobs else ())
        for entry in queue:
            encoder.write(next(computed) if isinstance(entry, tuple) else entry)
        advance(len(queue))
        queue.clear()
        pending = 0

    for item in items:
        cache.release_before(first_frame(item))
        if isinstance(item, Source):
            queue.append(cache.get(item.frame))
        else:
            queue.append((cache.get(item.frame0), cache.get(item.frame1), item.t))
            pending += 1
        if pending >= batch:
            flush()
    flush()


def _stack(jobs: list[tuple[np.ndarray, np.ndarray, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """In-betweens to compute -> frames0, frames1 (B, H, W, 3) and times (B,)."""
    return (
        np.stack([a for a, _, _ in jobs]),
        np.stack([b for _, b, _ in jobs]),
        np.array([t for _, _, t in jobs], np.float32),
    )


def interpolate_video(
    request: InterpolateRequest, interpolator: FrameInterpolator, progress: ProgressFn | None = None
) -> InterpolateResult:
    """Write `request.output`: the input at the new rate, cuts respected, holds re-timed, audio copied."""
    started = time.perf_counter()
    request = request.validate()
    codec = choose_codec(request.codec)
    output = check_output(request.output, codec)
    if output == Path(request.input).expanduser().absolute():
        raise UsageError(f"output {output} is the input: name another file")
    analysis = analyse_video(request.input, request.cuts, request.holds, progress)
    check_audio_fits(output, request.input)
    output_fps = request.output_fps(analysis.fps)
    plan = plan_retiming(
        analysis.frame_count,
        analysis.cuts,
        analysis.drawings,
        analysis.fps,
        output_fps,
        PlanConfig(request.keep_timing, request.max_span),
    )
    settings = {
        "output_fps": str(output_fps),
        "keep_timing": request.keep_timing,
        "max_span": request.max_span,
        "cuts": asdict(request.cuts),
        "holds": asdict(request.holds),
        "codec": codec,
        "interpolator": interpolator.identity,
    }
    work = WorkFolder.open(output, job_key(Path(request.input), settings), request.segment_frames, request.resume)
    resumed = work.done_frames
    segments = _render(
        request,
        analysis,
        plan,
        interpolator,
        work,
        VideoSettings(
            codec, output_fps, analysis.width, analysis.height, probe_video(Path(request.input)).colour
        ),
        progress,
    )
    if progress is not None:
        progress("join", 0, len(segments))
    join_segments(segments, output, output_fps, Path(request.input) if analysis.has_audio else None)
    work.remove()
    return InterpolateResult(
        output=output,
        interpolator=interpolator.name,
        codec=codec,
        source_frames=analysis.frame_count,
        output_frames=len(plan.items),
        source_fps=float(analysis.fps),
        output_fps=float(output_fps),
        cuts=len(analysis.cuts),
        drawings=len(analysis.drawings),
        inbetweens=plan.inbetweens,
        resumed_frames=resumed,
        audio=analysis.has_audio,
        seconds=time.perf_counter() - started,
    )


def _render(
    request: InterpolateRequest,
    analysis: VideoAnalysis,
    plan: RetimePlan,
    interpolator: FrameInterpolator,
    work: WorkFolder,
    settings: VideoSettings,
    progress: ProgressFn | None,
) -> list[Segment]:
    """Encode every segment the work folder does not hold yet; returns all of them, in order."""
    total = len(plan.items)
    size = work.segment_frames
    done = work.done_frames

    def advance(frames: int) -> None:
        nonlocal done
        done += frames
        if progress is not None:
            progress("interpolate", done, total)

    advance(0)
    cache = FrameCache(iter_frames(request.input), plan.needed_frames(), analysis.frame_count)
    segments = []
    for index, start in enumerate(range(0, total, size)):
        segments.append(Segment(work.segment_path(index), start))
        if index < len(work.finished):
            continue
        items = plan.items[start : start + size]
        with SegmentEncoder(work.segment_path(index), settings) as encoder:
            render_segment(items, cache, interpolator, encoder, request.batch, advance)
        work.mark_finished(len(items))
    return segments
