"""Sizing the quickstart's training to its budget (the whole job is tests/test_quickstart_e2e.py)."""

from __future__ import annotations

import pytest

from afi.quickstart import (
    ADV_WARMUP_SHARE,
    AFTER_TRAINING_S,
    MIN_STEPS,
    QuickstartOptions,
    makespan,
    mean_step_s,
    plan_training,
)

# Full steps, in queue order (as measured on 2 cores at 10 minutes).
SPEEDS = {"unet/patchgan": 0.65, "unet/none": 0.48, "isnet/patchgan": 0.46, "isnet/none": 0.42}


def test_training_fills_what_the_budget_leaves() -> None:
    options = QuickstartOptions(minutes=10, parallel=2)
    said: list[str] = []
    plan = plan_training(options, SPEEDS, elapsed_s=15.0, report=said.append)
    left = options.budget_s - 15.0 - AFTER_TRAINING_S
    assert left * 0.99 <= plan.seconds <= left  # one step short of the budget at most
    assert plan.steps > 200 and not said


def test_one_run_at_a_time_gets_half_the_steps() -> None:
    two = plan_training(QuickstartOptions(minutes=10, parallel=2), SPEEDS, 15.0, print)
    one = plan_training(QuickstartOptions(minutes=10, parallel=1), SPEEDS, 15.0, print)
    assert one.steps == pytest.approx(two.steps / 2, rel=0.1)


def test_a_budget_too_short_runs_the_minimum_and_says_so() -> None:
    said: list[str] = []
    plan = plan_training(QuickstartOptions(minutes=0.5), SPEEDS, elapsed_s=20.0, report=said.append)
    assert plan.steps == MIN_STEPS
    assert len(said) == 1 and "too short" in said[0] and "overrun" in said[0]


def test_the_queue_is_drained_slot_by_slot() -> None:
    assert makespan([3, 2, 1], parallel=2) == 3  # 3 in one slot, 2 + 1 in the other
    assert makespan([1, 2, 3], parallel=2) == 4  # the long one last: a slot idles for 2
    assert makespan([3, 2, 1], parallel=1) == 6


def test_a_discriminator_costs_nothing_while_it_warms_up() -> None:
    assert mean_step_s(SPEEDS, "unet/none") == 0.48
    gan = mean_step_s(SPEEDS, "unet/patchgan")
    assert gan == pytest.approx(ADV_WARMUP_SHARE * 0.48 + (1 - ADV_WARMUP_SHARE) * 0.65)


def test_the_plan_holds_the_slowest_slot_not_the_average() -> None:
    """One slow run among fast ones: the steps fit its slot, which the mean would overrun."""
    speeds = {"unet/patchgan": 2.0, "unet/none": 0.2, "isnet/patchgan": 0.2, "isnet/none": 0.2}
    options = QuickstartOptions(minutes=10, parallel=2)
    plan = plan_training(options, speeds, 15.0, print)
    left = options.budget_s - 15.0 - AFTER_TRAINING_S
    assert plan.steps * mean_step_s(speeds, "unet/patchgan") < left
    by_the_mean = left / (sum(mean_step_s(speeds, key) for key in speeds) / 2)
    assert plan.steps < 0.8 * by_the_mean
