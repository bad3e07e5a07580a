"""Exponential moving average of the generator's weights, which validation and export use."""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


def ema_decay_at(decay: float, updates: int) -> float:
    """The configured decay, warmed up so the first averages are not the random init's."""
    return min(decay, (1 + updates) / (10 + updates))


def ema_model(module: nn.Module, decay: float) -> AveragedModel:
    """A frozen copy of `module` whose parameters follow it; buffers are copied, not averaged."""

    def lerp_towards(
        averaged: list[torch.Tensor], current: list[torch.Tensor], updates: torch.Tensor
    ) -> None:
        weight = 1.0 - ema_decay_at(decay, int(updates))
        for average, value in zip(averaged, current, strict=True):
            average.lerp_(value, weight)

    averaged = AveragedModel(module, multi_avg_fn=lerp_towards, use_buffers=False)
    return averaged.eval().requires_grad_(False)
