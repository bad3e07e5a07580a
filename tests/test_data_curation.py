"""Each curation filter drops what it should, and only that; letterbox bars are cropped or dropped."""

from __future__ import annotations

import numpy as np
import pytest

from afi.data.curation import (
    Box,
    CurationConfig,
    FrameStats,
    content_box,
    crop_letterbox,
    curate,
    triplet_stats,
)
from afi.data.held import HoldConfig
from afi.data.video import frames_from_arrays
from data_factories import cartoon_frames

FRAMES = cartoon_frames(12, size=96, seed=7)  # one shot on ones: every frame a new drawing


def _stats(images: list[np.ndarray]):
    return triplet_stats(images, [FrameStats.of(i) for i in images], HoldConfig())


def _dropped_by(images: list[np.ndarray], config: CurationConfig = CurationConfig()) -> str | None:
    result = curate([_stats(images)], config)
    reasons = [name for name, count in result.dropped.items() if count]
    return reasons[0] if reasons else None


def _letterboxed(image: np.ndarray, bar: int = 12) -> np.ndarray:
    boxed = image.copy()
    boxed[:bar], boxed[-bar:] = 0, 0
    return boxed


def test_a_clean_triplet_is_kept() -> None:
    assert _dropped_by([FRAMES[3], FRAMES[4], FRAMES[5]]) is None


def test_blank_frame_is_dropped() -> None:
    flat = np.full_like(FRAMES[0], 30)
    assert _dropped_by([FRAMES[3], flat, FRAMES[5]]) == "blank"


def test_static_triplet_is_dropped() -> None:
    assert _dropped_by([FRAMES[3], FRAMES[4], FRAMES[3]]) == "static"


def test_middle_equal_to_an_end_is_dropped() -> None:
    assert _dropped_by([FRAMES[3], FRAMES[3], FRAMES[5]]) == "middle_equals_end"
    assert _dropped_by([FRAMES[3], FRAMES[5], FRAMES[5]]) == "middle_equals_end"


def test_too_much_motion_is_dropped_and_small_motion_kept() -> None:
    base = FRAMES[0]
    step = 28  # pixels per step on a 96-pixel frame: ~30% of the width
    far = [np.roll(base, k * step, axis=1) for k in range(3)]
    near = [np.roll(base, k * 2, axis=1) for k in range(3)]
    assert _dropped_by(far) == "motion"
    assert _dropped_by(near) is None


def test_near_duplicates_are_dropped_in_either_direction() -> None:
    forward = _stats([FRAMES[3], FRAMES[4], FRAMES[5]])
    again = _stats([FRAMES[3], FRAMES[4], FRAMES[5]])
    backward = _stats([FRAMES[5], FRAMES[4], FRAMES[3]])
    other = _stats([FRAMES[6], FRAMES[7], FRAMES[8]])
    result = curate([forward, again, backward, other], CurationConfig())
    assert result.kept == (0, 3)
    assert result.dropped["duplicate"] == 2
    assert curate([forward, again], CurationConfig(dedupe=False)).kept == (0, 1)


def test_letterboxed_frames_are_dropped_only_with_the_drop_policy() -> None:
    boxed = [_letterboxed(FRAMES[i]) for i in (3, 4, 5)]
    assert _dropped_by(boxed, CurationConfig(letterbox="drop")) == "letterbox"
    assert _dropped_by(boxed, CurationConfig(letterbox="keep")) is None


def test_letterbox_crop_removes_the_bars_from_a_sequence() -> None:
    boxed = [_letterboxed(f, bar=10) for f in FRAMES]
    assert content_box(boxed[0]) == Box(0, 10, 96, 86)
    box, frames = crop_letterbox(frames_from_arrays(boxed, fps=24.0), min_contrast=5.0)
    cropped = list(frames)
    assert box == Box(0, 10, 96, 86)
    assert len(cropped) == 12 and cropped[0].image.shape == (76, 96, 3)
    assert np.array_equal(cropped[0].image, FRAMES[0][10:86])


def test_no_bars_means_no_crop() -> None:
    box, frames = crop_letterbox(frames_from_arrays(FRAMES, fps=24.0), min_contrast=5.0)
    assert box is None and len(list(frames)) == 12


def test_counts_cover_every_filter_and_disabled_curation_keeps_all() -> None:
    stats = [_stats([FRAMES[3], FRAMES[4], FRAMES[3]]), _stats([FRAMES[3], FRAMES[4], FRAMES[5]])]
    result = curate(stats, CurationConfig())
    assert result.to_stats(2) == {
        "candidates": 2,
        "kept": 1,
        "dropped": {
            "blank": 0,
            "letterbox": 0,
            "static": 1,
            "middle_equals_end": 0,
            "motion": 0,
            "duplicate": 0,
        },
    }
    assert curate(stats, CurationConfig(enabled=False)).kept == (0, 1)


def test_bad_policy_is_a_usage_error() -> None:
    from afi.errors import UsageError

    with pytest.raises(UsageError, match="crop, drop, keep"):
        CurationConfig(letterbox="stretch").validate()
