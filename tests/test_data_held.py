"""Held frames and cadence, through a real H.264 encode; fades and dissolves are not holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from afi.data.held import HoldConfig, detect_cadence, detect_holds, is_same_drawing
from afi.data.video import iter_frames, write_video
from data_factories import cartoon_frames, synth_video


def _decoded(path: Path) -> tuple[list[np.ndarray], list[float]]:
    frames = list(iter_frames(path))
    return [f.image for f in frames], [f.pts for f in frames]


def test_on_twos_is_detected(tmp_path: Path) -> None:
    truth = synth_video(tmp_path / "twos.mp4", clips=1, frames_per_clip=24, cadences=(2,), seed=3)
    drawings = detect_holds(*_decoded(tmp_path / "twos.mp4"))
    assert tuple(d.hold for d in drawings) == truth.hold_lengths == (2,) * 12
    assert [d.frame for d in drawings] == list(range(0, 24, 2))
    assert detect_cadence([d.hold for d in drawings]).name == "on twos"


def test_mixed_cadence_holds_match_ground_truth(tmp_path: Path) -> None:
    truth = synth_video(
        tmp_path / "mixed.mp4", clips=3, frames_per_clip=24, seed=2, mixed_cadence_probability=1.0
    )
    drawings = detect_holds(*_decoded(tmp_path / "mixed.mp4"))
    assert tuple(d.hold for d in drawings) == truth.hold_lengths


def test_slow_fade_is_not_a_hold(tmp_path: Path) -> None:
    still = cartoon_frames(3, size=128, seed=4)[0].astype(np.float32)
    # 48 frames to black: ~2-5 levels a frame, under the per-pixel tolerance and a small mean
    # difference, so a "mean difference below x" rule would call the whole fade one drawing.
    fade = np.stack([(still * (1 - k / 48)).round().astype(np.uint8) for k in range(48)])
    write_video(tmp_path / "fade.mp4", fade, fps=24.0)
    images, pts = _decoded(tmp_path / "fade.mp4")
    assert np.abs(images[1].astype(int) - images[0]).max() < HoldConfig().pixel_tolerance
    drawings = detect_holds(images, pts)
    assert max(d.hold for d in drawings) == 1


def test_dissolve_is_not_a_hold(tmp_path: Path) -> None:
    a = cartoon_frames(3, size=128, seed=5)[0].astype(np.float32)
    b = cartoon_frames(3, size=128, seed=6)[0].astype(np.float32)
    # Match the mean brightness so only per-pixel evidence can tell the frames apart.
    b = np.clip(b * a.mean() / b.mean(), 0, 255)
    dissolve = np.stack(
        [(a * (1 - k / 40) + b * (k / 40)).round().astype(np.uint8) for k in range(40)]
    )
    write_video(tmp_path / "dissolve.mp4", dissolve, fps=24.0)
    drawings = detect_holds(*_decoded(tmp_path / "dissolve.mp4"))
    assert max(d.hold for d in drawings) == 1


def test_codec_noise_alone_is_still_the_same_drawing() -> None:
    rng = np.random.default_rng(0)
    image = cartoon_frames(3, size=64)[0]
    # Low zero-mean noise everywhere, and one pixel of ringing well above the tolerance.
    noisy = np.clip(image.astype(int) + rng.integers(-2, 3, image.shape), 0, 255).astype(np.uint8)
    noisy[10, 10] = 255 - noisy[10, 10]
    assert is_same_drawing(image, noisy, HoldConfig())
    moved = np.roll(image, 1, axis=1)  # the whole drawing one pixel over: a new drawing
    assert not is_same_drawing(image, moved, HoldConfig())


def test_cadence_ignores_the_truncated_last_drawing() -> None:
    assert detect_cadence([3, 3, 3, 1]).name == "on threes"
    assert detect_cadence([2, 1, 2, 1, 3]).mixed
