"""Time budgets: a stage given `minutes` measures its own pace and re-plans its last step.

A plan made once from a few calibrated steps cannot hold when the machine is slower than the
calibration said, or gets busier later; so before every step the loop asks `Pace.end` how many
steps the budget still affords at the pace measured so far, and the learning-rate schedule
follows that end (a pure function of the step and the planned end, which checkpoints store). The
last planned step ends about at the deadline; the final validation and checkpoint come after it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# Weight of the newest step in the moving mean of step times: about the last ten steps count, so
# the plan follows a machine that gets busier within seconds and one slow step barely moves it.
PACE_WEIGHT = 0.1


@dataclass
class Pace:
    """Where a stage stands against its time budget; a checkpoint stores it (`to_dict`), so a
    resumed run keeps what is left of its budget, not a fresh one."""

    budget_s: float | None  # None: no time budget, the stage ends after `max_steps`
    max_steps: int
    elapsed_s: float = 0.0  # training time spent so far, earlier attempts included
    step_s: float | None = None  # moving mean of a step's wall time, its logging included
    pause_s_per_step: float = 0.0  # validations and checkpoints on the way, spread per step

    def observe_step(self, seconds: float) -> None:
        self.elapsed_s += seconds
        mean = self.step_s
        self.step_s = seconds if mean is None else mean + PACE_WEIGHT * (seconds - mean)

    def observe_pause(self, seconds: float, every: int) -> None:
        """A validation or checkpoint that took `seconds`, one of which comes every `every` steps."""
        self.elapsed_s += seconds
        self.pause_s_per_step = seconds / every

    def end(self, step: int) -> int:
        """The planned number of steps, seen from `step` (the next step to take): at least one
        more, at most `max_steps`; without a budget (or a measured step yet), `max_steps`."""
        if self.budget_s is None or self.step_s is None:
            return self.max_steps
        left_s = self.budget_s - self.elapsed_s
        affordable = int(left_s / (self.step_s + self.pause_s_per_step))
        return min(self.max_steps, step + max(1, affordable))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pace:
        return cls(**data)
