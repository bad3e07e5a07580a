"""The trainer callback that lets an Optuna pruner stop a trial's run (imports torch: the trainer's
callback interface lives with its loop)."""

from __future__ import annotations

from typing import Any

from afi.train.loop import Callback
from registry import runs as registry_runs
from registry.db import session_scope

PRUNED = "pruned"  # the message of a pruned trial's cancelled run


class PruningCallback(Callback):
    """Each validation is reported to the trial; when the pruner says stop, the run is cancelled
    with the message "pruned", which stops the trainer at its next heartbeat (the validation
    values already logged stay, for the record)."""

    def __init__(self, engine: Any, run_id: int, trial: Any, metric: str) -> None:
        self.engine = engine
        self.run_id = run_id
        self.trial = trial
        self.key = metric.removeprefix("val/")  # the trainer hands validation values unprefixed
        self.pruned = False

    def on_validation(self, step: int, values: dict[str, float]) -> None:
        if self.pruned or self.key not in values:
            return
        self.trial.report(values[self.key], step)
        if self.trial.should_prune():
            self.pruned = True
            with session_scope(self.engine) as session:
                registry_runs.transition(
                    session, self.run_id, "cancelled", expected={"running"}, message=PRUNED
                )
