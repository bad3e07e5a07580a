"""Validation on a dataset's val split: the numbers that pick the best checkpoint."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from afi.config import LOWER_IS_BETTER
from afi.metrics import evaluate_batch
from afi.train.device import DeviceSetup


def predict(
    model: nn.Module, batch: dict[str, Any], kind: str, setup: DeviceSetup
) -> tuple[torch.Tensor, torch.Tensor]:
    """(prediction, truth), each (B, 3, H, W): the middle frame from its neighbours for an
    interpolator, frame1's reconstruction for an autoencoder."""
    truth = setup.place_batch(batch["frame1"])
    with setup.autocast():
        if kind == "autoencoder":
            return model(truth).recon, truth
        frame0, frame2 = setup.place_batch(batch["frame0"]), setup.place_batch(batch["frame2"])
        return model(frame0, frame2, batch["t"].to(setup.device)).rgb, truth


@torch.no_grad()
def validate(
    model: nn.Module, batches: Iterable[dict[str, Any]], kind: str, setup: DeviceSetup
) -> dict[str, float]:
    """Sample-weighted means of afi.metrics over every batch (psnr, ssim, lineart, and lpips /
    ms_ssim where defined). `model` is the EMA generator, which is always in eval mode."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for batch in batches:
        prediction, truth = predict(model, batch, kind, setup)
        size = truth.shape[0]
        for name, value in evaluate_batch(prediction.float(), truth).items():
            sums[name] = sums.get(name, 0.0) + value * size
            counts[name] = counts.get(name, 0) + size
    return {name: sums[name] / counts[name] for name in sums}


def is_better(metric: str, value: float, best: float | None) -> bool:
    if best is None:
        return True
    return value < best if metric in LOWER_IS_BETTER else value > best
