import math

import pytest

from afi.config import StageConfig
from afi.train.schedule import MIN_LR_FRACTION, AdversarialSchedule, learning_rate


def test_warmup_is_linear_then_cosine_reaches_the_floor_at_the_last_step():
    stage = StageConfig(steps=111, lr=1e-3, warmup_steps=10, lr_schedule="cosine")
    rates = [learning_rate(stage, step) for step in range(stage.steps)]
    assert rates[0] == pytest.approx(1e-4)
    assert rates[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(rates[9:], rates[10:], strict=False))
    assert rates[60] == pytest.approx(1e-3 * (MIN_LR_FRACTION + (1 - MIN_LR_FRACTION) / 2))
    assert rates[-1] == pytest.approx(1e-3 * MIN_LR_FRACTION)


@pytest.mark.parametrize("end", [2, 5, 37, 500])
def test_a_replanned_end_keeps_warmup_and_cosine_and_ends_at_the_floor(end):
    stage = StageConfig(steps=1000, lr=1e-3, warmup_steps=10, lr_schedule="cosine")
    rates = [learning_rate(stage, step, end) for step in range(end)]
    assert rates[-1] == pytest.approx(1e-3 * MIN_LR_FRACTION)
    assert max(rates) == pytest.approx(1e-3)  # the warm-up still reaches the peak
    peak = rates.index(max(rates))
    assert all(a >= b for a, b in zip(rates[peak:], rates[peak + 1 :], strict=False))
    assert learning_rate(stage, 3, end=1000) == learning_rate(stage, 3)  # the default end: steps


def test_constant_schedule_after_warmup():
    stage = StageConfig(steps=50, lr=2e-4, warmup_steps=4, lr_schedule="constant")
    assert [learning_rate(stage, s) for s in (0, 3, 4, 49)] == pytest.approx(
        [5e-5, 2e-4, 2e-4, 2e-4]
    )


def test_no_warmup_starts_at_peak():
    stage = StageConfig(steps=20, lr=1.0)
    assert learning_rate(stage, 0) == 1.0
    assert not math.isnan(learning_rate(StageConfig(steps=1, lr=1.0), 0))


def test_adversarial_warmup_then_ramp():
    schedule = AdversarialSchedule(warmup_steps=3, ramp_steps=4)
    assert [schedule.weight(s) for s in range(9)] == [0, 0, 0, 0.25, 0.5, 0.75, 1, 1, 1]
    assert [schedule.discriminator_trains(s) for s in (2, 3)] == [False, True]
    assert AdversarialSchedule(0, 0).weight(0) == 1.0
