"""Optuna studies over an experiment spec's `[search]` space, stored in the registry's database.

Each trial is one AFI run of the experiment named like the study (runs.trial_number = the trial's
number, trial user attribute `afi_run_id` = the run's id), trained in this process. Validation
results feed a median pruner as they are logged; a pruned trial's run is cancelled with the
message "pruned" (the trainer sees that at its next heartbeat and stops).

Several `afi tune` processes, on one machine or many, share a study through the database. A
process that dies stops heartbeating its trial; the next process to start a trial marks it failed
and queues a retry with the same parameters (a new trial, so a new run).

The registry and Optuna share one database without sharing a table: Optuna's are `studies`,
`trials`, `trial_*`, `study_*`, `version_info` and Alembic's default `alembic_version`; the
registry keeps its Alembic revision in `afi_alembic_version`.
"""

from __future__ import annotations

import socket
import warnings
from dataclasses import dataclass
from typing import Any

from afi.errors import AfiError, UsageError
from afi.launch.pricing import LOCAL_ACCELERATOR
from afi.launch.experiments import record_run, register_variant
from afi.launch.spec import ExperimentSpec, SearchParam, value_text
from afi.launch.worker import sweep_stale
from registry import experiments as registry_experiments
from registry import metrics as registry_metrics
from registry.db import configure_sqlite, session_scope
from registry.records import RunRecord

BACKEND = "tune"  # trial runs train in their `afi tune` process: no worker may claim them
RUN_ID_ATTR = "afi_run_id"
MAX_RETRIES = 2  # a trial whose process died is retried this many times


@dataclass(frozen=True)
class TuneOptions:
    study: str | None = None  # default: the spec's experiment name
    trials: int | None = None  # trials this process runs; default: the spec's [tune] trials
    heartbeat_s: int = 10  # Optuna trial heartbeat; a trial silent 2x this long is stale
    stale_after_s: float = 120.0  # for AFI runs: above the trainer's 15 s heartbeat

    def validate(self) -> TuneOptions:
        if self.trials is not None and self.trials < 1:
            raise UsageError(f"--trials must be at least 1, got {self.trials}")
        if self.heartbeat_s < 1:
            raise UsageError(f"--heartbeat must be at least 1 second, got {self.heartbeat_s}")
        return self


@dataclass(frozen=True)
class TrialOutcome:
    number: int
    state: str
    value: float | None
    run_id: int | None


def study_storage(db_url: str, heartbeat_s: int) -> Any:
    """Optuna's RDB storage on the registry's own database."""
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats
        storage = RDBStorage(
            db_url,
            heartbeat_interval=heartbeat_s,
            grace_period=2 * heartbeat_s,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES),
        )
    if storage.engine.name == "sqlite":
        # SQLite ignores the FOR UPDATE with which Optuna takes a queued trial: with pysqlite's
        # late, deferred transactions two processes both read it as waiting and both ran it.
        # Transactions that take the write lock as they begin make that read-then-write atomic.
        configure_sqlite(storage.engine)
        storage.engine.dispose()  # connections opened while Optuna set up its tables
    return storage


def open_study(db_url: str, spec: ExperimentSpec, name: str, heartbeat_s: int = 10) -> Any:
    """The study `name`, created on first use with the spec's direction and pruner."""
    import optuna

    settings = _settings(spec)
    return optuna.create_study(
        study_name=name,
        storage=study_storage(db_url, heartbeat_s),
        direction=settings.direction,
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=settings.startup_trials, n_warmup_steps=settings.warmup_steps
        ),
        load_if_exists=True,
    )


def _settings(spec: ExperimentSpec) -> Any:
    if not spec.search or spec.tune is None:
        raise UsageError(
            f"{spec.source} has no [search] table: `afi tune` needs one (see "
            "experiments/tune-isnet.toml); launch a grid with `afi experiment launch`"
        )
    return spec.tune


def tune(engine: Any, db_url: str, spec: ExperimentSpec, options: TuneOptions) -> list[TrialOutcome]:
    """Run trials of the spec's study in this process until `options.trials` are done here or
    the study has its [tune] trials completed or pruned, across every process sharing it."""
    import optuna
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    options = options.validate()
    settings = _settings(spec)
    name = options.study or spec.name
    with session_scope(engine) as session:
        registry_experiments.get_or_create_experiment(session, name, "study", spec.to_dict())
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(db_url, spec, name, options.heartbeat_s)
    objective = TrialObjective(engine, spec, name, options.stale_after_s)
    outcomes: list[TrialOutcome] = []

    def record(study: Any, trial: Any) -> None:
        run_id = trial.user_attrs.get(RUN_ID_ATTR)
        outcomes.append(TrialOutcome(trial.number, trial.state.name.lower(), trial.value, run_id))

    study.optimize(
        objective,
        n_trials=options.trials or settings.trials,
        callbacks=[
            record,
            MaxTrialsCallback(settings.trials, states=(TrialState.COMPLETE, TrialState.PRUNED)),
        ],
        gc_after_trial=True,
    )
    return outcomes


class TrialObjective:
    """Optuna's objective: one trial -> one AFI run, trained here; its value is the run's best
    value of the study's metric over every validation (not the last one)."""

    def __init__(self, engine: Any, spec: ExperimentSpec, study: str, stale_after_s: float) -> None:
        self.engine = engine
        self.spec = spec
        self.study = study
        self.settings = _settings(spec)
        self.stale_after_s = stale_after_s

    def __call__(self, trial: Any) -> float:
        import optuna

        from afi.launch.pruning import PRUNED, PruningCallback  # torch: only once a trial runs
        from afi.train.callbacks import ProgressLog
        from afi.train.service import start_run

        # A run of a dead process (of this study or any) must not stay `running` forever.
        sweep_stale(self.engine, self.stale_after_s)
        values = {param.key: suggest(trial, param) for param in self.spec.search}
        run = self._new_run(trial.number, values)
        trial.set_user_attr(RUN_ID_ATTR, run.id)
        pruning = PruningCallback(self.engine, run.id, trial, self.settings.metric)
        progress = ProgressLog(f"trial {trial.number} (run {run.name})")
        run = start_run(self.engine, run.id, callbacks=[pruning, progress])
        if run.status == "cancelled" and run.message == PRUNED:
            raise optuna.TrialPruned()
        if run.status != "completed":
            raise AfiError(f"trial {trial.number}: run {run.name} ended {run.status}: {run.message}")
        return self._best_value(run)

    def _new_run(self, number: int, values: dict[str, Any]) -> RunRecord:
        config = self.spec.trial_config(values)
        with session_scope(self.engine) as session:
            return record_run(
                session,
                config,
                name=f"{self.study}-trial-{number:04d}",
                experiment_id=registry_experiments.get_experiment(session, self.study).id,
                variant_id=register_variant(session, config.variant),
                tags={"trial": str(number), **{k: value_text(v) for k, v in values.items()}},
                backend=BACKEND,
                host=socket.gethostname(),
                accelerator=f"{LOCAL_ACCELERATOR}:1",
                hourly_price=0.0,
                trial_number=number,
            )

    def _best_value(self, run: RunRecord) -> float:
        with session_scope(self.engine) as session:
            points = registry_metrics.get_metrics(session, run.id, key=self.settings.metric)
        values = [p.value for p in points if p.value is not None]
        if not values:
            raise AfiError(
                f"run {run.name} logged no {self.settings.metric}: the dataset needs a val split, "
                "or choose another [tune] metric"
            )
        return max(values) if self.settings.direction == "maximize" else min(values)


def suggest(trial: Any, param: SearchParam) -> Any:
    if param.choices:
        return trial.suggest_categorical(param.key, list(param.choices))
    if param.is_int:
        return trial.suggest_int(param.key, int(param.low), int(param.high), step=int(param.step or 1), log=param.log)
    return trial.suggest_float(param.key, float(param.low), float(param.high), step=param.step, log=param.log)


def study_summary(db_url: str, name: str, top: int = 10) -> dict[str, Any]:
    """A study's trials by state and its best `top` trials, each with its AFI run."""
    import optuna

    try:
        study = optuna.load_study(study_name=name, storage=study_storage(db_url, 10))
    except KeyError:
        raise UsageError(f"no study {name!r} in this registry: start one with `afi tune SPEC`") from None
    trials = study.get_trials(deepcopy=False)
    by_state: dict[str, int] = {}
    for trial in trials:
        by_state[trial.state.name.lower()] = by_state.get(trial.state.name.lower(), 0) + 1
    finished = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    finished.sort(key=lambda t: t.value, reverse=maximize)
    return {
        "study": name,
        "direction": study.direction.name.lower(),
        "trials": len(trials),
        "by_state": by_state,
        "best": [_trial_dict(t) for t in finished[:top]],
    }


def _trial_dict(trial: Any) -> dict[str, Any]:
    return {
        "number": trial.number,
        "value": trial.value,
        "state": trial.state.name.lower(),
        "params": trial.params,
        "run_id": trial.user_attrs.get(RUN_ID_ATTR),
        "retry_of": trial.system_attrs.get("failed_trial"),
    }
