"""The synthetic cartoon generator: deterministic, with the ground truth the detectors need."""

from __future__ import annotations

import numpy as np
import pytest

from afi.data.synth import SynthConfig, generate_cartoon
from afi.errors import UsageError


def test_same_seed_same_frames_and_other_seed_differs() -> None:
    config = SynthConfig(clips=2, frames_per_clip=8, width=64, height=64, seed=5)
    first, again = generate_cartoon(config), generate_cartoon(config)
    other = generate_cartoon(SynthConfig(clips=2, frames_per_clip=8, width=64, height=64, seed=6))
    assert np.array_equal(first.frames, again.frames)
    assert not np.array_equal(first.frames, other.frames)


def test_ground_truth_cuts_and_holds_match_the_frames() -> None:
    video = generate_cartoon(SynthConfig(clips=3, frames_per_clip=12, width=64, height=48, seed=1))
    assert video.frames.shape == (36, 48, 64, 3) and video.frames.dtype == np.uint8
    assert video.cuts == (12, 24)
    for i in range(1, len(video.frames)):
        same = video.drawing_ids[i] == video.drawing_ids[i - 1]
        # A held frame is a pixel copy; a new drawing is not.
        assert same == np.array_equal(video.frames[i], video.frames[i - 1])
    assert sum(video.hold_lengths) == 36


def test_on_twos_cadence_holds_every_drawing_for_two_frames() -> None:
    video = generate_cartoon(
        SynthConfig(clips=1, frames_per_clip=16, width=64, height=64, cadences=(2,))
    )
    assert video.hold_lengths == (2,) * 8
    assert video.clip_cadences == ((2,),)


def test_mixed_cadence_switches_halfway() -> None:
    config = SynthConfig(
        clips=6,
        frames_per_clip=12,
        width=32,
        height=32,
        cadences=(2, 3),
        mixed_cadence_probability=1.0,
    )
    video = generate_cartoon(config)
    assert all(len(c) == 2 and c[0] != c[1] for c in video.clip_cadences)


def test_outlines_are_dark_and_backgrounds_are_painted() -> None:
    frame = generate_cartoon(
        SynthConfig(clips=1, frames_per_clip=3, width=128, height=128, seed=2)
    ).frames[0]
    luma = frame.mean(axis=2)
    assert (luma < 40).mean() > 0.005  # outlines
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 50  # gradients, antialiasing


@pytest.mark.parametrize(
    "bad", [dict(width=15), dict(width=33), dict(clips=0), dict(cadences=(0,)), dict(outline_px=0)]
)
def test_bad_config_is_a_usage_error(bad: dict) -> None:
    with pytest.raises(UsageError):
        generate_cartoon(SynthConfig(**bad))
