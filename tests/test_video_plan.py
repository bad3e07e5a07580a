"""The re-timing plan: holds spread over their duration, never across a cut, exact frame counts."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from afi.data.held import Drawing, detect_holds
from afi.errors import UsageError
from afi.video.plan import Inbetween, PlanConfig, Source, output_frame_count, plan_retiming, split_at_cuts


def drawings_of(holds: list[int]) -> list[Drawing]:
    drawings, frame = [], 0
    for hold in holds:
        drawings.append(Drawing(frame=frame, pts=frame / 12, hold=hold))
        frame += hold
    return drawings


def plan(holds: list[int], cuts: tuple[int, ...] = (), factor: int = 2, **config: object):
    frames = sum(holds)
    return plan_retiming(frames, cuts, drawings_of(holds), Fraction(12), Fraction(12 * factor), PlanConfig(**config))


def test_holds_on_twos_are_spread_over_the_hold() -> None:
    items = plan([2, 2, 2]).items
    assert len(items) == 12
    # Drawing 0 (frames 0-1) moves to drawing 1 (frame 2) over four output frames.
    assert items[:4] == (Source(0), Inbetween(0, 2, 0.25), Inbetween(0, 2, 0.5), Inbetween(0, 2, 0.75))
    assert items[4] == Source(2)  # each key drawing appears at its original time
    assert items[8:] == (Source(4),) * 4  # the last drawing has nothing to move towards


def test_in_betweens_follow_each_drawings_own_hold() -> None:
    items = plan([1, 3, 2]).items
    assert items[:2] == (Source(0), Inbetween(0, 1, 0.5))
    assert [round(i.t, 4) for i in items[3:8]] == [round(k / 6, 4) for k in range(1, 6)]
    assert all(isinstance(i, Inbetween) and (i.frame0, i.frame1) == (1, 4) for i in items[3:8])


def test_nothing_is_interpolated_across_a_cut() -> None:
    items = plan([2, 2, 2, 2], cuts=(4,)).items
    assert items[4:8] == (Source(2),) * 4  # the shot's last drawing is repeated up to the cut
    assert items[8] == Source(4)
    for item in items:
        if isinstance(item, Inbetween):
            assert (item.frame0 < 4) == (item.frame1 < 4)


def test_a_hold_spanning_a_cut_is_split() -> None:
    pieces = split_at_cuts(drawings_of([6]), [2, 4])
    assert [(p.frame, p.hold) for p in pieces] == [(0, 2), (2, 2), (4, 2)]
    items = plan([6], cuts=(3,)).items
    assert all(isinstance(i, Source) for i in items)
    assert {i.frame for i in items} == {0, 3}


def test_a_long_pause_stands_still_until_its_last_frames() -> None:
    items = plan([10, 1], max_span=4).items
    assert items[:13] == (Source(0),) * 13
    assert [i.t for i in items[13:20]] == [k / 8 for k in range(1, 8)]


def test_keep_timing_only_adds_frames_between_changes() -> None:
    items = plan([2, 1, 1], cuts=(3,), keep_timing=True).items
    assert items == (
        Source(0),
        Source(0),  # frame 0 -> 1 is a hold: nothing to interpolate
        Source(1),
        Inbetween(1, 2, 0.5),
        Source(2),
        Source(2),  # frame 3 starts a new shot
        Source(3),
        Source(3),  # the end
    )


def test_non_integer_rate_change_keeps_the_duration() -> None:
    frames = 8
    result = plan_retiming(frames, (), drawings_of([1] * frames), Fraction(24000, 1001), Fraction(30000, 1001))
    assert len(result.items) == output_frame_count(frames, Fraction(24000, 1001), Fraction(30000, 1001)) == 10
    assert [round(i.t, 4) for i in result.items if isinstance(i, Inbetween)][:3] == [0.8, 0.6, 0.4]


def test_a_fade_is_motion_not_a_hold() -> None:
    """afi.data.held sees every step of a fade as a new drawing, so each gets an in-between."""
    base = np.full((32, 32, 3), 200, np.uint8)
    frames = [np.clip(base.astype(int) - 8 * i, 0, 255).astype(np.uint8) for i in range(6)]
    drawings = detect_holds(frames, np.arange(6) / 12)
    assert [d.hold for d in drawings] == [1] * 6
    result = plan_retiming(6, (), drawings, Fraction(12), Fraction(24))
    assert result.inbetweens == 5


def test_needed_frames_are_the_drawings() -> None:
    assert plan([2, 3, 1]).needed_frames() == {0, 2, 5}


def test_drawings_must_cover_the_video() -> None:
    with pytest.raises(UsageError, match="cover"):
        plan_retiming(5, (), drawings_of([2, 2]), Fraction(12), Fraction(24))
