"""Planning a time-budgeted stage's steps from its measured pace."""

from __future__ import annotations

from afi.train.pace import Pace


def test_pace_plans_what_the_budget_affords() -> None:
    unbudgeted = Pace(budget_s=None, max_steps=50)
    unbudgeted.observe_step(1.0)
    assert unbudgeted.end(10) == 50
    pace = Pace(budget_s=10.0, max_steps=1000)
    assert pace.end(0) == 1000  # nothing measured yet: the cap
    for _ in range(4):
        pace.observe_step(0.5)
    assert pace.end(4) == 4 + 16  # 8 s left at 0.5 s a step
    pace.observe_pause(1.0, every=4)  # a checkpoint every 4 steps costs 0.25 s a step
    assert pace.end(4) == 4 + 9  # 7 s left at 0.75 s a step
    pace.observe_step(20.0)  # past the deadline: one more step, never none
    assert pace.end(5) == 6
    assert Pace.from_dict(pace.to_dict()) == pace
    assert Pace(budget_s=1e9, max_steps=30, step_s=0.1).end(3) == 30
