"""Launching experiments: a spec expanded into queued runs under one experiment row, and the
experiment's progress and leaderboard.

A launch is planned first (expansion, validation, prices, SkyPilot tasks: nothing written), then
recorded in ONE transaction, so a bad grid point, a missing dataset or a budget refusal leaves no
experiment and no run behind. With the sky backend each queued run is then submitted as a managed
job; a run whose submission fails is cancelled with the reason, so it neither waits forever nor
counts against the budget.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from afi.config import RunConfig, VariantConfig, best_score
from afi.errors import AfiError, NotFoundError, UsageError
from afi.launch import sky as sky_tasks
from afi.launch.budget import BudgetReport, budget_report, check_budget, estimate_cost
from afi.launch.pricing import PriceQuote, PriceTable
from afi.launch.runs import git_commit
from afi.launch.spec import ExperimentSpec, PlannedRun
from afi.leaderboard import DEFAULT_SPLIT, experiment_boards, rows_as_dicts
from afi.variants import variant_row
from registry import datasets as registry_datasets
from registry import evaluations as registry_evaluations
from registry import experiments as registry_experiments
from registry import runs as registry_runs
from registry import variants as registry_variants
from registry.db import session_scope
from registry.errors import NotFound
from registry.records import ExperimentRecord, LeaderboardRow, RunRecord

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

BACKENDS = ("local", "sky")


@dataclass(frozen=True)
class Placement:
    """Where the runs train: `local` (claimed by `afi worker`) or `sky` (managed jobs).
    `accelerator=None` means the worker's own machine, which costs nothing."""

    backend: str = "local"
    accelerator: str | None = None
    spot: bool = False

    def validate(self) -> Placement:
        if self.backend not in BACKENDS:
            raise UsageError(f"unknown backend {self.backend!r}: choose one of {', '.join(BACKENDS)}")
        if self.backend == "sky" and self.accelerator is None:
            raise UsageError("the sky backend needs an accelerator: add --gpu A10G:1 (say)")
        if self.spot and self.accelerator is None:
            raise UsageError("--spot prices a rented GPU: add --gpu NAME:COUNT")
        return self


@dataclass(frozen=True)
class LaunchPlan:
    """What a launch will queue, and what it should cost; `sky_tasks` parallels `runs`."""

    spec: ExperimentSpec
    placement: Placement
    quote: PriceQuote
    runs: tuple[PlannedRun, ...]
    run_costs: tuple[float, ...]
    sky_tasks: tuple[dict[str, Any], ...] = ()

    @property
    def total_cost_usd(self) -> float:
        return sum(self.run_costs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.spec.name,
            "kind": self.spec.kind,
            "backend": self.placement.backend,
            "accelerator": self.quote.label,
            "spot": self.placement.spot,
            "hourly_usd": self.quote.hourly_usd,
            "price_source": self.quote.source,
            "estimated_cost_usd": self.total_cost_usd,
            "runs": [
                {"name": run.name, "tags": run.tags, "estimated_cost_usd": cost,
                 "config": run.config.to_dict()}
                for run, cost in zip(self.runs, self.run_costs)
            ],
        }


@dataclass(frozen=True)
class LaunchResult:
    experiment: ExperimentRecord
    runs: tuple[RunRecord, ...]
    budget: BudgetReport
    failed_submissions: dict[str, str] = field(default_factory=dict)  # run name -> why


def plan_launch(
    spec: ExperimentSpec,
    placement: Placement,
    table: PriceTable,
    sky_options: sky_tasks.SkyOptions | None = None,
) -> LaunchPlan:
    """Expand and price a spec; for the sky backend, write its tasks (`sky_tasks.build_task`
    has SkyPilot validate them)."""
    placement = placement.validate()
    if spec.search:
        raise UsageError(f"{spec.source} is an Optuna study ([search]): run it with `afi tune`")
    quote = table.quote(placement.accelerator, placement.spot)
    runs = tuple(spec.expand())
    tasks: tuple[dict[str, Any], ...] = ()
    if placement.backend == "sky":
        sky_tasks.require_skypilot()
        options = replace(
            sky_options or sky_tasks.SkyOptions(), accelerator=quote.label, spot=placement.spot
        ).validate()
        tasks = tuple(sky_tasks.task_config(run.name, options) for run in runs)
    return LaunchPlan(
        spec=spec,
        placement=placement,
        quote=quote,
        runs=runs,
        run_costs=tuple(estimate_cost(run.config, quote) for run in runs),
        sky_tasks=tasks,
    )


def launch(
    engine: Any,
    plan: LaunchPlan,
    table: PriceTable,
    db_url: str,
    cap_usd: float | None = None,
    force: bool = False,
) -> LaunchResult:
    """Queue the plan's runs (one transaction), then submit them when the backend is sky."""
    built = []
    if plan.placement.backend == "sky":
        sky_tasks.check_shared_registry(db_url)
        built = [sky_tasks.build_task(task, db_url) for task in plan.sky_tasks]
    report = budget_report(engine, table, cap_usd)
    check_budget(report, plan.total_cost_usd, force)
    with session_scope(engine) as session:
        experiment = _new_experiment(session, plan.spec)
        variant_ids = _variant_ids(session, plan.runs)
        records = [
            _queue_run(session, plan, run, experiment.id, variant_ids[run.config.variant.name()])
            for run in plan.runs
        ]
    failures: dict[str, str] = {}
    for index, task in enumerate(built):
        records[index], why = _submit(engine, records[index], task)
        if why is not None:
            failures[records[index].name] = why
    with session_scope(engine) as session:
        experiment = registry_experiments.get_experiment(session, experiment.id)
    return LaunchResult(experiment, tuple(records), report, failures)


def _new_experiment(session: Session, spec: ExperimentSpec) -> ExperimentRecord:
    experiment = registry_experiments.get_or_create_experiment(
        session, spec.name, spec.kind, spec.to_dict()
    )
    queued = sum(experiment.run_counts.values())
    if queued:
        raise AfiError(
            f"experiment {spec.name!r} already has {queued} run(s): see `afi experiment show "
            f"{spec.name}`, or launch a new one with --name"
        )
    return experiment


def _variant_ids(session: Session, runs: tuple[PlannedRun, ...]) -> dict[str, int]:
    """Each distinct variant registered once (registering builds the model to count it)."""
    variants = {run.config.variant.name(): run.config.variant for run in runs}
    return {name: register_variant(session, variant) for name, variant in variants.items()}


def register_variant(session: Session, variant: VariantConfig) -> int:
    return registry_variants.get_or_create_variant(session, variant_row(variant)).id


def _queue_run(
    session: Session, plan: LaunchPlan, run: PlannedRun, experiment_id: int, variant_id: int
) -> RunRecord:
    priced = plan.placement.accelerator is not None
    return record_run(
        session,
        run.config,
        name=run.name,
        experiment_id=experiment_id,
        variant_id=variant_id,
        tags=run.tags,
        status="queued",
        backend=plan.placement.backend,
        accelerator=plan.quote.label if priced else None,
        spot=plan.placement.spot,
        hourly_price=plan.quote.hourly_usd if priced else None,
    )


def record_run(
    session: Session,
    config: RunConfig,
    name: str | None,
    experiment_id: int,
    variant_id: int,
    tags: dict[str, str],
    **placement: Any,
) -> RunRecord:
    """A run of `config` in an experiment; `placement`: status, backend, accelerator, spot,
    hourly_price, host, trial_number (registry.runs.NewRun's fields)."""
    first = config.stages[0]
    new_run = registry_runs.NewRun(
        name=name,
        kind=config.variant.kind,
        variant_id=variant_id,
        dataset_id=_dataset_id(session, config.data.dataset),
        experiment_id=experiment_id,
        stage_count=len(config.stages),
        width=first.width,
        height=first.height,
        seed=config.seed,
        config=config.to_dict(),
        config_hash=config.hash(),
        git_commit=git_commit(),
        total_steps=first.steps,
        tags=tags,
        **placement,
    )
    return registry_runs.create_run(session, new_run)


def _dataset_id(session: Session, name: str | None) -> int | None:
    if name is None:
        return None
    try:
        return registry_datasets.get_dataset(session, name).id
    except NotFound:
        raise NotFoundError(
            f"dataset {name!r} not found: see `afi dataset list`, make one with "
            "`afi dataset synth NAME`, or pick another with --set data.dataset=NAME"
        ) from None


def _submit(engine: Any, run: RunRecord, task: Any) -> tuple[RunRecord, str | None]:
    """Submit one run's task; on failure cancel the run with the reason."""
    try:
        job_id = sky_tasks.submit(task)
    except AfiError as exc:
        with session_scope(engine) as session:
            record = registry_runs.transition(
                session, run.id, "cancelled", expected={"queued"}, message=str(exc)
            )
        return record, str(exc)
    with session_scope(engine) as session:
        return registry_runs.update_run(session, run.id, sky_job_id=job_id), None


def list_experiments(engine: Any) -> list[ExperimentRecord]:
    with session_scope(engine) as session:
        return registry_experiments.list_experiments(session)


def show_experiment(
    engine: Any, name: str, metric: str = "psnr", split: str = DEFAULT_SPLIT
) -> dict[str, Any]:
    """An experiment's progress, its runs, its leaderboard on `split` beside the baselines of that
    split (then its training validation, on its own), and the runs grouped by each grid key
    (e.g. mean and best PSNR of every `arch`, every `disc`) on the first split that has scores."""
    with session_scope(engine) as session:
        experiment = registry_experiments.get_experiment(session, name)
        runs = registry_runs.list_runs(session, experiment=experiment.name)
        boards = experiment_boards(session, experiment.name, split, metric)
    grid_keys = list(((experiment.spec or {}).get("grid") or {}).keys())
    scored = next((b for b in boards if any(not r.is_baseline for r in b.rows)), boards[0])
    return {
        "experiment": experiment.to_dict(),
        "progress": progress(runs),
        "runs": [_run_progress(run) for run in reversed(runs)],
        "leaderboards": [
            {"split": b.split, "label": b.label, "rows": rows_as_dicts(b.rows)} for b in boards
        ],
        "groups_split": scored.split,
        "groups": group_rows([r for r in scored.rows if not r.is_baseline], runs, grid_keys, metric),
    }


UNFINISHED = ("created", "queued", "running", "preempted")


def evaluate_finished_experiment(engine: Any, name: str, split: str = DEFAULT_SPLIT) -> list[Any]:
    """An experiment's closing evaluation, once none of its runs is left to train: every completed
    interpolator not yet scored on `split`, and the baselines (once per dataset), by `afi eval`'s
    protocol, so its leaderboard ranks like with like. Datasets without `split` are skipped."""
    from afi.evaluate import evaluate_run  # torch: only once an experiment ends

    with session_scope(engine) as session:
        runs = registry_runs.list_runs(session, experiment=name)
        if not runs or any(run.status in UNFINISHED for run in runs):
            return []
        pending = [
            run for run in runs
            if run.status == "completed" and run.kind == "interp" and run.dataset
            and not any(e.split == split for e in registry_evaluations.list_evaluations(session, run.id))
        ]
        counts = {r.dataset: registry_datasets.get_dataset(session, r.dataset).split_counts for r in pending}
    has_split = {name: bool((split_counts or {}).get(split)) for name, split_counts in counts.items()}
    reports, scored = [], set()
    for run in pending:
        if has_split[run.dataset]:
            first = run.dataset not in scored  # baselines once per dataset
            reports.append(evaluate_run(engine, run.id, run.dataset, split, baselines=first))
            scored.add(run.dataset)
    return reports


def progress(runs: list[RunRecord]) -> dict[str, Any]:
    by_status: dict[str, int] = {}
    for run in runs:
        by_status[run.status] = by_status.get(run.status, 0) + 1
    return {
        "runs": len(runs),
        "by_status": by_status,
        "completed_fraction": by_status.get("completed", 0) / len(runs) if runs else 0.0,
        "cost_usd": sum(run.cost_usd for run in runs),
        "gpu_hours": sum(run.gpu_hours for run in runs),
    }


def _run_progress(run: RunRecord) -> dict[str, Any]:
    return {
        "id": run.id,
        "name": run.name,
        "status": run.status,
        "stage": f"{run.stage + 1}/{run.stage_count}",
        "step": run.step,
        "total_steps": run.total_steps,
        "tags": run.tags,
        "backend": run.backend,
        "accelerator": run.accelerator,
        "cost_usd": run.cost_usd,
        "sky_job_id": run.sky_job_id,
        "message": run.message,
    }


def group_rows(
    rows: list[LeaderboardRow], runs: list[RunRecord], keys: list[str], metric: str
) -> list[dict[str, Any]]:
    """One entry per (grid key, value): how many runs, and the mean and best `metric` of those
    evaluated. Every key in turn, so an ablation reads as 'isnet beats unet on average'."""
    tags = {run.id: run.tags for run in runs}
    groups = []
    for key in keys:
        values: dict[str, list[float]] = {}
        counts: dict[str, int] = {}
        for run in runs:
            value = run.tags.get(key)
            if value is not None:
                counts[value] = counts.get(value, 0) + 1
                values.setdefault(value, [])
        for row in rows:
            value = tags.get(row.run_id, {}).get(key)
            score = getattr(row, metric)
            if value is not None and score is not None:
                values[value].append(score)
        for value, scores in values.items():
            groups.append(
                {
                    "key": key,
                    "value": value,
                    "runs": counts[value],
                    "evaluated": len(scores),
                    f"mean_{metric}": statistics.fmean(scores) if scores else None,
                    f"best_{metric}": best_score(scores, metric),
                }
            )
    return groups
