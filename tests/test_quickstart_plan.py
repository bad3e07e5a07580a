"""Sharing the quickstart's budget among its runs (the whole job is tests/test_quickstart_e2e.py)."""

from __future__ import annotations

import pytest

from afi.quickstart import (
    MIN_RUN_S,
    RUNS,
    QuickstartOptions,
    TrainingPlan,
    plan_training,
    spec_for,
)


def ends_at(plan: TrainingPlan, elapsed_s: float) -> float:
    return elapsed_s + plan.seconds + plan.evaluation_seconds + plan.video_seconds


def test_the_runs_fill_what_the_budget_leaves_after_the_reserves() -> None:
    options = QuickstartOptions(minutes=10, parallel=2)
    said: list[str] = []
    plan = plan_training(options, baselines_s=4.0, elapsed_s=10.0, report=said.append)
    assert ends_at(plan, 10.0) == pytest.approx(options.budget_s)
    assert 0 < plan.evaluation_seconds and 0 < plan.video_seconds
    assert plan.seconds > plan.run_seconds * 2 > 0.8 * options.budget_s  # two waves of runs
    assert not said


def test_one_run_at_a_time_gets_half_the_time() -> None:
    two = plan_training(QuickstartOptions(minutes=10, parallel=2), 4.0, 10.0, print)
    one = plan_training(QuickstartOptions(minutes=10, parallel=1), 4.0, 10.0, print)
    assert one.run_seconds == pytest.approx(two.run_seconds / 2, rel=0.05)
    assert ends_at(one, 10.0) == pytest.approx(ends_at(two, 10.0))


def test_a_busier_machine_reserves_more_and_still_ends_on_time() -> None:
    options = QuickstartOptions(minutes=10, parallel=2)
    quiet = plan_training(options, 4.0, 10.0, print)
    busy = plan_training(options, 8.0, 10.0, print)
    assert busy.evaluation_seconds == pytest.approx(2 * quiet.evaluation_seconds)
    assert busy.run_seconds < quiet.run_seconds
    assert ends_at(busy, 10.0) == pytest.approx(options.budget_s)


def test_a_budget_too_short_trains_the_minimum_and_says_so() -> None:
    said: list[str] = []
    plan = plan_training(QuickstartOptions(minutes=0.5), 10.0, 20.0, report=said.append)
    assert plan.run_seconds == MIN_RUN_S
    assert len(said) == 1 and "too short" in said[0] and "overrun" in said[0]


def test_every_run_gets_the_same_time_budget_and_no_step_count() -> None:
    runs = spec_for(QuickstartOptions(), "qs", run_seconds=90.0).expand()
    assert len(runs) == RUNS
    assert {run.config.stages[0].minutes for run in runs} == {1.5}
    # The budget decides the steps: none of the step-counted settings comes before the end.
    assert all(run.config.val_every >= run.config.stages[0].steps for run in runs)
