"""The re-timing plan: which picture each output frame shows, decided before any pixel is computed.

Animation holds each drawing for 1, 2 or 3 frames. Doubling the frame rate by inserting one
in-between per source frame would keep that stutter (a drawing held 2 frames would still stand
still for 4 output frames, then jump). Re-timing spreads the move from a drawing to the next one
over the whole time the first drawing was held: with factor 2, a drawing held 2 frames covers 4
output frames at t = 0, 1/4, 1/2, 3/4 towards the next drawing, which appears at its original time.
So key drawings keep their timing, the duration is unchanged, and motion is smooth.

Rules:
- never across a scene cut: the last drawing of a shot is repeated until the cut;
- a drawing held longer than `max_span` frames is a pause, not the cadence: it stands still and
  only its last `max_span` frames move towards the next drawing;
- `keep_timing`: only the frame rate changes; in-betweens lie between consecutive source frames
  (at t = 0.5 for factor 2), and a held frame stays held.
Fades and dissolves are not holds (afi.data.held sees each of their frames as a new drawing), so
they get in-betweens like any motion.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from afi.data.held import Drawing
from afi.errors import UsageError


@dataclass(frozen=True)
class Source:
    """The output frame is this decoded source frame, as it is."""

    frame: int


@dataclass(frozen=True)
class Inbetween:
    """The output frame is interpolated between two source frames of one shot, at time t in (0, 1)."""

    frame0: int
    frame1: int
    t: float


PlanItem = Source | Inbetween


@dataclass(frozen=True)
class PlanConfig:
    keep_timing: bool = False
    # Anime is on ones, twos or threes (sometimes fours); a longer hold is a pause in the action.
    max_span: int = 4

    def validate(self) -> PlanConfig:
        if self.max_span < 1:
            raise UsageError(f"max_span must be at least 1 frame, got {self.max_span}")
        return self


@dataclass(frozen=True)
class RetimePlan:
    items: tuple[PlanItem, ...]  # one per output frame, in output order
    source_frames: int
    source_fps: Fraction
    output_fps: Fraction

    @property
    def inbetweens(self) -> int:
        return sum(isinstance(item, Inbetween) for item in self.items)

    def needed_frames(self) -> frozenset[int]:
        """Source frames some output frame shows or interpolates from; the rest need not be kept."""
        needed: set[int] = set()
        for item in self.items:
            needed.update((item.frame,) if isinstance(item, Source) else (item.frame0, item.frame1))
        return frozenset(needed)


def first_frame(item: PlanItem) -> int:
    return item.frame if isinstance(item, Source) else item.frame0


def output_frame_count(source_frames: int, source_fps: Fraction, output_fps: Fraction) -> int:
    """Frames at the output rate covering the source's duration (source_frames / source_fps)."""
    return max(1, round(source_frames * output_fps / source_fps))


def split_at_cuts(drawings: Sequence[Drawing], cuts: Sequence[int]) -> list[Drawing]:
    """Drawings with no hold spanning a cut: a hold that does is two drawings, one per shot.
    (Hold detection knows nothing of cuts; a cut between near-identical frames is still a cut.)"""
    ordered = sorted(cuts)
    pieces: list[Drawing] = []
    for drawing in drawings:
        end = drawing.frame + drawing.hold
        inside = ordered[bisect.bisect_right(ordered, drawing.frame) : bisect.bisect_left(ordered, end)]
        starts = [drawing.frame, *inside, end]
        pieces.extend(Drawing(frame=a, pts=drawing.pts, hold=b - a) for a, b in zip(starts, starts[1:]))
    return pieces


def _check_drawings(drawings: Sequence[Drawing], source_frames: int) -> None:
    position = 0
    for drawing in drawings:
        if drawing.frame != position or drawing.hold < 1:
            raise UsageError(
                f"drawings must cover frames 0..{source_frames - 1} in order without gaps: re-run the analysis"
            )
        position += drawing.hold
    if position != source_frames:
        raise UsageError(f"drawings cover {position} frames, the video has {source_frames}: re-run the analysis")


def plan_retiming(
    source_frames: int,
    cuts: Sequence[int],
    drawings: Sequence[Drawing],
    source_fps: Fraction,
    output_fps: Fraction,
    config: PlanConfig = PlanConfig(),
) -> RetimePlan:
    """The output frame list at `output_fps` for a video of `source_frames` frames.

    cuts: frame indices where a new shot starts; drawings: every frame's drawing, in order, as
    afi.data.held.detect_holds gives them (their holds add up to source_frames).
    """
    config = config.validate()
    if source_frames < 1:
        raise UsageError("cannot re-time a video with no frames")
    if source_fps <= 0 or output_fps <= 0:
        raise UsageError(f"frame rates must be positive, got {source_fps} -> {output_fps}")
    _check_drawings(drawings, source_frames)
    shot_starts = sorted({0, *(c for c in cuts if 0 < c < source_frames)})
    step = source_fps / output_fps  # source frames per output frame
    count = output_frame_count(source_frames, source_fps, output_fps)
    positions = [j * step for j in range(count)]  # in source frames, exact
    if config.keep_timing:
        drawing_starts = [d.frame for d in drawings]
        items = [_keep_timing_item(p, source_frames, shot_starts, drawing_starts) for p in positions]
    else:
        pieces = split_at_cuts(drawings, shot_starts)
        piece_starts = [d.frame for d in pieces]
        items = [_retimed_item(p, pieces, piece_starts, shot_starts, config.max_span) for p in positions]
    return RetimePlan(items=tuple(items), source_frames=source_frames, source_fps=source_fps, output_fps=output_fps)


def _starts_shot(frame: int, shot_starts: Sequence[int]) -> bool:
    index = bisect.bisect_left(shot_starts, frame)
    return index < len(shot_starts) and shot_starts[index] == frame


def _drawing_at(frame: int, drawing_starts: Sequence[int]) -> int:
    """Index of the drawing shown at `frame`, given every drawing's first frame in order."""
    return bisect.bisect_right(drawing_starts, frame) - 1


def _retimed_item(
    position: Fraction,
    drawings: Sequence[Drawing],
    drawing_starts: Sequence[int],
    shot_starts: Sequence[int],
    max_span: int,
) -> PlanItem:
    index = _drawing_at(math.floor(position), drawing_starts)
    drawing = drawings[index]
    end = drawing.frame + drawing.hold
    last_of_shot = index + 1 == len(drawings) or _starts_shot(end, shot_starts)
    if last_of_shot:
        return Source(drawing.frame)  # repeat until the cut (or the end)
    span = min(drawing.hold, max_span)
    move_start = end - span
    if position <= move_start:
        return Source(drawing.frame)
    return Inbetween(drawing.frame, drawings[index + 1].frame, float((position - move_start) / span))


def _keep_timing_item(
    position: Fraction, source_frames: int, shot_starts: Sequence[int], drawing_starts: Sequence[int]
) -> PlanItem:
    frame = math.floor(position)
    t = position - frame
    following = frame + 1
    if t == 0 or following >= source_frames or _starts_shot(following, shot_starts):
        return Source(frame)
    if _drawing_at(frame, drawing_starts) == _drawing_at(following, drawing_starts):
        return Source(frame)  # a held frame: the in-between would be the same picture
    return Inbetween(frame, following, float(t))
