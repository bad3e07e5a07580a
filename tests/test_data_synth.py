"""The synthetic cartoon generator: deterministic, with the ground truth the detectors need."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import cv2
import numpy as np
import pytest

from afi.data.synth import SynthConfig, SynthVideo, generate_cartoon
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
    "bad",
    [
        dict(width=15),
        dict(width=33),
        dict(clips=0),
        dict(cadences=(0,)),
        dict(outline_px=0),
        dict(motion="wild"),
        dict(style="oil"),
        dict(style="painted", motion="hard"),
    ],
)
def test_bad_config_is_a_usage_error(bad: dict) -> None:
    with pytest.raises(UsageError):
        generate_cartoon(SynthConfig(**bad))


# sha256 of the frames, cuts, drawing ids and cadences that the generator made before `motion`
# and `style` existed (measured on the code of commit c09a73f): the default must not change, or
# every dataset and test seeded before would silently change with it.
BEFORE = {
    SynthConfig(): "9ca4256231e22fd45fe20931dded52b5f7ac3228d29b13aaca2c13c4c19f3594",
    SynthConfig(clips=2, frames_per_clip=12, width=96, height=64, seed=7):
    "6606edd4f6fc1ae627d0510695c66d55945da6aa848127893e1927e5d3561e3c",
}


def _digest(video: SynthVideo) -> str:
    digest = hashlib.sha256(video.frames.tobytes())
    digest.update(repr((video.cuts, video.drawing_ids, video.clip_cadences)).encode())
    return digest.hexdigest()


@pytest.mark.parametrize("config", list(BEFORE))
def test_default_output_is_what_it_was(config: SynthConfig) -> None:
    assert _digest(generate_cartoon(config)) == BEFORE[config]
    assert _digest(generate_cartoon(replace(config, motion="easy", style="cel"))) == BEFORE[config]


@pytest.mark.parametrize("setting", [dict(motion="medium"), dict(motion="hard"), dict(style="painted")])
def test_new_settings_are_deterministic_per_seed(setting: dict) -> None:
    config = SynthConfig(clips=2, frames_per_clip=8, width=64, height=48, seed=5, **setting)
    first, again = generate_cartoon(config), generate_cartoon(config)
    assert _digest(first) == _digest(again)
    assert _digest(generate_cartoon(replace(config, seed=6))) != _digest(first)
    assert _digest(generate_cartoon(replace(config, motion="easy", style="cel"))) != _digest(first)


def _median_motion(video: SynthVideo) -> float:
    """Median optical-flow magnitude between consecutive distinct drawings of a shot, in pixels."""
    cuts, magnitudes = set(video.cuts), []
    for i in range(1, len(video.frames)):
        if i in cuts or video.drawing_ids[i] == video.drawing_ids[i - 1]:
            continue
        a, b = (cv2.cvtColor(video.frames[j], cv2.COLOR_RGB2GRAY) for j in (i - 1, i))
        flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 5, 21, 5, 7, 1.5, 0)
        magnitudes.append(float(np.median(np.hypot(flow[..., 0], flow[..., 1]))))
    return float(np.mean(magnitudes))


def _thin_dark_lines(video: SynthVideo) -> float:
    """Share of pixels on 1 px dark lines: darker than both neighbours (across a line) by 40."""
    luma = video.frames.astype(np.float32).mean(axis=-1)
    across_x = luma[:, :, 1:-1] < np.minimum(luma[:, :, :-2], luma[:, :, 2:]) - 40
    across_y = luma[:, 1:-1, :] < np.minimum(luma[:, :-2, :], luma[:, 2:, :]) - 40
    return float(across_x.mean() + across_y.mean())


def _flat_share(video: SynthVideo) -> float:
    """Share of pixels whose 5x5 neighbourhood is flat (luma standard deviation under 0.5)."""
    shares = []
    for frame in video.frames[::4]:
        luma = frame.astype(np.float32).mean(axis=-1)
        mean = cv2.blur(luma, (5, 5))
        shares.append(float((cv2.blur(luma * luma, (5, 5)) - mean * mean < 0.25).mean()))
    return float(np.mean(shares))


def _videos(**setting: str) -> list[SynthVideo]:
    return [
        generate_cartoon(SynthConfig(clips=4, frames_per_clip=12, width=128, height=96, seed=seed, **setting))
        for seed in (0, 1, 2)
    ]


def test_hard_motion_moves_further_and_draws_thin_lines() -> None:
    easy, hard = _videos(), _videos(motion="hard")
    # Measured: median flow 1.4-1.7 px easy, 2.0-3.9 px hard; thin lines 0.0006-0.0009 vs 0.003-0.005.
    assert np.mean([_median_motion(v) for v in hard]) > 1.3 * np.mean([_median_motion(v) for v in easy])
    assert np.mean([_thin_dark_lines(v) for v in hard]) > 3 * np.mean([_thin_dark_lines(v) for v in easy])


def test_painted_style_is_textured_without_flat_fills() -> None:
    cel, painted = _videos(), _videos(style="painted")
    # Measured: 0.31-0.42 of cel pixels sit in flat 5x5 windows, 0.04-0.06 of painted ones.
    assert np.mean([_flat_share(v) for v in painted]) < 0.3 * np.mean([_flat_share(v) for v in cel])
    for video in painted:  # the drawings are still held and cut as the schedule says
        for i in range(1, len(video.frames)):
            same = video.drawing_ids[i] == video.drawing_ids[i - 1]
            assert same == np.array_equal(video.frames[i], video.frames[i - 1])


def test_painted_style_makes_480x270() -> None:
    video = generate_cartoon(
        SynthConfig(clips=2, frames_per_clip=4, width=480, height=270, seed=3, style="painted")
    )
    assert video.frames.shape == (8, 270, 480, 3)


@pytest.mark.parametrize("setting", [dict(motion="medium"), dict(motion="hard"), dict(style="painted")])
def test_new_settings_draw_at_the_smallest_size(setting: dict) -> None:
    video = generate_cartoon(SynthConfig(clips=3, frames_per_clip=3, width=16, height=16, **setting))
    assert video.frames.shape == (9, 16, 16, 3)
