"""Sizing the quickstart's training to its budget (the whole job is tests/test_quickstart_e2e.py)."""

from __future__ import annotations

import pytest

from afi.quickstart import AFTER_TRAINING_S, MIN_STEPS, QuickstartOptions, plan_training

SPEEDS = {"unet/none": 0.5, "unet/patchgan": 0.5, "isnet/none": 0.35, "isnet/patchgan": 0.4}


def test_training_fills_what_the_budget_leaves() -> None:
    options = QuickstartOptions(minutes=10, parallel=2)
    said: list[str] = []
    plan = plan_training(options, SPEEDS, elapsed_s=15.0, report=said.append)
    left = options.budget_s - 15.0 - AFTER_TRAINING_S
    assert left * 0.97 <= plan.seconds <= left  # one step short of the budget at most
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
