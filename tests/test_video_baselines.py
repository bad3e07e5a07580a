"""Classical in-betweening: nearest, blend and DIS-flow warping on a moving shape."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from afi.errors import UsageError
from afi.video.baselines import baseline_method, blend, flow, nearest


def frame_with_disc(x: float) -> np.ndarray:
    """A flat-shaded outlined disc on a gradient, centred at (x, 48): (96, 128, 3) uint8."""
    image = np.repeat(np.linspace(60, 200, 128, dtype=np.uint8)[None, :, None], 96, axis=0).repeat(3, axis=2)
    centre = (int(round(x * 16)), 48 * 16)
    cv2.circle(image, centre, 16 * 16, (40, 60, 200), -1, cv2.LINE_AA, 4)
    cv2.circle(image, centre, 16 * 16, (20, 20, 20), 2, cv2.LINE_AA, 4)
    return np.ascontiguousarray(image)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((a.astype(float) - b.astype(float)) ** 2)))


@pytest.fixture
def moving_disc() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return frame_with_disc(40)[None], frame_with_disc(56)[None], frame_with_disc(48)


def test_nearest_picks_the_closer_end(moving_disc) -> None:
    first, last, _ = moving_disc
    both = np.concatenate([first, first])
    ends = np.concatenate([last, last])
    out = nearest(both, ends, np.array([0.3, 0.7]))
    assert np.array_equal(out[0], first[0]) and np.array_equal(out[1], last[0])


def test_blend_is_the_time_weighted_average(moving_disc) -> None:
    first, last, _ = moving_disc
    out = blend(first, last, np.array([0.25]))
    expected = np.rint(0.75 * first.astype(float) + 0.25 * last.astype(float))
    assert np.abs(out.astype(float) - expected).max() <= 1


def test_flow_moves_the_shape_instead_of_ghosting_it(moving_disc) -> None:
    first, last, middle = moving_disc
    t = np.array([0.5])
    flowed, blended = flow(first, last, t)[0], blend(first, last, t)[0]
    assert flowed.shape == middle.shape and flowed.dtype == np.uint8
    assert psnr(flowed, middle) > psnr(blended, middle) + 3


def test_unknown_method_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="nearest, blend, dis, flow"):
        baseline_method("magic")
