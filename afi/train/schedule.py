"""Schedules as pure functions of the step: a resumed run recomputes them, nothing to load."""

from __future__ import annotations

import math
from dataclasses import dataclass

from afi.config import StageConfig

# Cosine decays to a tenth of the peak, as in nanoGPT: decaying to zero wastes the last steps.
MIN_LR_FRACTION = 0.1


def learning_rate(stage: StageConfig, step: int, end: int | None = None) -> float:
    """The rate for optimiser step `step` (0-based) of a stage whose last step is `end - 1`:
    linear warm-up, then constant or cosine, which reaches its floor at the last step.

    `end`: the planned number of steps, `stage.steps` unless a time budget re-planned it
    (afi.train.pace); the rate is a pure function of (step, end), so a resume that restores the
    planned end replays the same rates. A warm-up never takes more than half the planned steps,
    so a short budget still decays to the floor.
    """
    end = stage.steps if end is None else end
    warmup = min(stage.warmup_steps, end // 2)
    if step < warmup:
        return stage.lr * (step + 1) / warmup
    if stage.lr_schedule == "constant":
        return stage.lr
    decay_steps = end - 1 - warmup  # from the peak to the floor
    progress = 1.0 if decay_steps <= 0 else min(1.0, (step - warmup) / decay_steps)
    min_lr = stage.lr * MIN_LR_FRACTION
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (stage.lr - min_lr)


@dataclass(frozen=True)
class AdversarialSchedule:
    """GAN phases: `warmup_steps` of reconstruction only, then the adversarial weight ramps 0 -> 1.

    The discriminator starts training when the warm-up ends; the ramp gives it time to become
    informative before its gradients reach the generator at full weight.
    """

    warmup_steps: int
    ramp_steps: int

    def discriminator_trains(self, step: int) -> bool:
        return step >= self.warmup_steps

    def weight(self, step: int) -> float:
        """Multiplier on the variant's adversarial (and feature-matching) loss weights."""
        if step < self.warmup_steps:
            return 0.0
        if self.ramp_steps == 0:
            return 1.0
        return min(1.0, (step - self.warmup_steps + 1) / self.ramp_steps)
