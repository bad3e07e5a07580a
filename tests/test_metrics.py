"""Metrics against known values: identical images, a known noise level, a shifted drawing."""

from __future__ import annotations

import math

import pytest
import torch

from afi.metrics import (
    MS_SSIM_MIN_SIDE,
    chamfer_line_distance,
    evaluate_batch,
    line_art,
    lpips_available,
    lpips_distance,
    ms_ssim,
    psnr,
    ssim,
)


def line_drawing(height: int = 64, width: int = 64) -> torch.Tensor:
    """Two one-pixel black vertical strokes on white paper, (1, 3, H, W)."""
    image = torch.ones(1, 3, height, width)
    image[..., 8 : height - 8, 20] = 0
    image[..., 8 : height - 8, 44] = 0
    return image


def test_identical_images_score_perfectly():
    image = torch.rand(2, 3, 64, 64)
    assert torch.isinf(psnr(image, image)).all()
    torch.testing.assert_close(ssim(image, image), torch.ones(2))
    assert chamfer_line_distance(line_drawing(), line_drawing()).tolist() == [0.0]
    scores = evaluate_batch(image, image)
    assert scores["psnr"] == math.inf and scores["ssim"] == pytest.approx(1.0) and scores["lineart"] == 0.0


def test_psnr_of_known_gaussian_noise():
    generator = torch.Generator().manual_seed(0)
    truth = torch.full((2, 3, 128, 128), 0.5)
    sigma = 0.05
    noisy = truth + sigma * torch.randn(truth.shape, generator=generator)
    expected = 10 * math.log10(1 / sigma**2)  # about 26.02 dB
    assert psnr(noisy, truth).tolist() == pytest.approx([expected, expected], abs=0.1)


def test_ssim_drops_with_noise():
    truth = torch.full((1, 3, 64, 64), 0.5)
    noisy = truth + 0.1 * torch.randn(truth.shape, generator=torch.Generator().manual_seed(0))
    assert ssim(noisy, truth).item() < 0.5


def test_line_art_finds_one_pixel_strokes():
    lines = line_art(line_drawing())
    assert lines[0, 0, 32].nonzero().flatten().tolist() == [20, 44]
    assert not line_art(torch.full((1, 3, 32, 32), 0.7)).any()


@pytest.mark.parametrize("shift", [1, 2, 3, 5])
def test_chamfer_distance_of_a_shifted_drawing_is_the_shift(shift: int):
    drawing = line_drawing()
    shifted = torch.roll(drawing, shift, dims=-1)
    # Stroke ends are closer than the shift along the diagonal, so slightly under it.
    assert chamfer_line_distance(shifted, drawing).item() == pytest.approx(shift, abs=0.25)


def test_chamfer_distance_with_lines_on_one_side_only():
    blank = torch.ones(1, 3, 60, 80)
    assert chamfer_line_distance(blank, blank).item() == 0.0
    assert chamfer_line_distance(blank, line_drawing(60, 80)).item() == pytest.approx(100.0)  # diagonal


def test_chamfer_distance_is_batched():
    drawing = line_drawing()
    batch = torch.cat([drawing, torch.roll(drawing, 3, dims=-1)])
    distances = chamfer_line_distance(batch, torch.cat([drawing, drawing]))
    assert distances.shape == (2,) and distances[0] == 0 and distances[1] > 2.5


def test_ms_ssim_needs_more_than_160_pixels():
    small = torch.rand(1, 3, 160, 256)
    assert ms_ssim(small, small) is None
    large = torch.rand(1, 3, MS_SSIM_MIN_SIDE, MS_SSIM_MIN_SIDE)
    torch.testing.assert_close(ms_ssim(large, large), torch.ones(1))
    assert "ms_ssim" not in evaluate_batch(small, small)
    assert evaluate_batch(large, large)["ms_ssim"] == pytest.approx(1.0)


def test_lpips_is_reported_missing_not_guessed(monkeypatch: pytest.MonkeyPatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache: no AlexNet backbone
    image = torch.rand(1, 3, 32, 32)
    assert not lpips_available()
    assert lpips_distance(image, image) is None
    assert "lpips" not in evaluate_batch(image, image)
