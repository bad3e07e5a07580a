"""`afi experiment`: launch a spec (curriculum, ablation) as queued runs; list and show them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import typer
from rich.markup import escape

from afi.cli.app import (
    JsonOption,
    MetricOption,
    command,
    console,
    err_console,
    new_app,
    print_fields,
    print_json,
    print_table,
    state,
)
from afi.launch import experiments as experiment_service
from afi.launch import sky as sky_tasks
from afi.launch.pricing import load_price_table
from afi.launch.spec import load_spec, parse_set
from afi.leaderboard import COLUMNS as LEADERBOARD_COLUMNS
from registry.db import resolve_url

app = new_app("Experiments: launch a spec as queued runs, follow its progress and leaderboard.")


@app.command()
@command
def launch(
    spec: Annotated[Path, typer.Argument(help="Experiment spec, e.g. experiments/ablation-arch.toml.")],
    backend: Annotated[
        Literal["local", "sky"], typer.Option(help="local (for `afi worker`) or sky (managed jobs).")
    ] = "local",
    gpu: Annotated[
        Optional[str], typer.Option(help="Accelerator NAME:COUNT, e.g. A10G:1 (priced for the budget).")
    ] = None,
    spot: Annotated[bool, typer.Option("--spot/--on-demand", help="Spot (preemptible) GPUs.")] = False,
    set_: Annotated[
        list[str], typer.Option("--set", help="Override a base field: --set stage.steps=4 (repeatable).")
    ] = [],
    name: Annotated[Optional[str], typer.Option(help="Experiment name (default: the spec's).")] = None,
    bucket: Annotated[str, typer.Option(help="sky: bucket for checkpoints (~/.afi/runs).")] = "afi-runs",
    data_bucket: Annotated[
        Optional[str], typer.Option(help="sky: bucket holding datasets (~/.afi/datasets).")
    ] = None,
    store: Annotated[Optional[str], typer.Option(help="sky: bucket store (s3, gcs, azure, r2...).")] = None,
    infra: Annotated[Optional[str], typer.Option(help="sky: where to run, e.g. aws or gcp/us-central1.")] = None,
    cap: Annotated[Optional[float], typer.Option(help="Budget cap in USD (default: prices.toml's).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Launch even past the budget cap.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would be queued (and sky tasks); write nothing.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Expand SPEC into runs, queue them under one experiment, and (sky) submit them."""
    experiment_spec = load_spec(spec, parse_set(set_), name=name)
    table = load_price_table()
    options = sky_tasks.SkyOptions(bucket=bucket, data_bucket=data_bucket, store=store, infra=infra)
    plan = experiment_service.plan_launch(
        experiment_spec, experiment_service.Placement(backend, gpu, spot), table, options
    )
    db_url = resolve_url(state.db)
    if dry_run:
        _print_plan(plan, db_url, as_json)
        return
    result = experiment_service.launch(state.engine(), plan, table, db_url, cap_usd=cap, force=force)
    if as_json:
        print_json(
            {
                "experiment": result.experiment.to_dict(),
                "runs": [run.to_dict() for run in result.runs],
                "estimated_cost_usd": plan.total_cost_usd,
                "budget": result.budget.to_dict(),
                "failed_submissions": result.failed_submissions,
            }
        )
    else:
        console.print(
            f"experiment {result.experiment.name}: {len(result.runs)} run(s) queued "
            f"(backend {backend}, estimated ${plan.total_cost_usd:,.2f})"
        )
        if backend == "local":
            console.print("train them with `afi worker` (on as many machines as you like)")
        for run_name, why in result.failed_submissions.items():
            err_console.print(f"[red]not submitted[/red] {escape(run_name)}: {escape(why)}", soft_wrap=True)
    if result.failed_submissions:
        raise typer.Exit(1)


def _print_plan(plan: experiment_service.LaunchPlan, db_url: str, as_json: bool) -> None:
    if plan.sky_tasks:
        sky_tasks.check_shared_registry(db_url)
        for task in plan.sky_tasks:
            sky_tasks.build_task(task, db_url)  # SkyPilot validates each task, offline
    yamls = [sky_tasks.task_yaml(task, db_url) for task in plan.sky_tasks]
    if as_json:
        print_json({**plan.to_dict(), "dry_run": True, "sky_tasks": yamls})
        return
    grid_keys = [key for key, _path, _values in plan.spec.grid]
    print_table(
        ["run", *grid_keys, "stages", "steps", "est. USD"],
        (
            [run.name, *(run.tags[k] for k in grid_keys),
             " > ".join(s.resolution for s in run.config.stages),
             sum(s.steps for s in run.config.stages), cost]
            for run, cost in zip(plan.runs, plan.run_costs)
        ),
        title=f"dry run: experiment {plan.spec.name} ({plan.spec.kind}) would queue {len(plan.runs)} run(s)",
    )
    console.print(
        f"backend {plan.placement.backend}, {plan.quote.label}"
        f"{' spot' if plan.placement.spot else ''} at ${plan.quote.hourly_usd:.2f}/h "
        f"({plan.quote.source}): estimated ${plan.total_cost_usd:,.2f} in all"
    )
    for text in yamls:
        console.print("---", highlight=False)
        console.print(text, end="", highlight=False, markup=False)


@app.command()
@command
def show(
    name: Annotated[str, typer.Argument(help="Experiment name or id.")],
    metric: MetricOption = "psnr",
    split: Annotated[
        str, typer.Option(metavar="SPLIT", help="The split ranked, beside its baselines.")
    ] = "test",
    as_json: JsonOption = False,
) -> None:
    """Progress of an experiment's runs, its leaderboard beside the baselines of the same split,
    and its grid keys' effects."""
    details = experiment_service.show_experiment(state.engine(), name, metric, split)
    if as_json:
        print_json(details)
        return
    experiment, progress = details["experiment"], details["progress"]
    print_fields(
        [
            ("kind", experiment["kind"]),
            ("description", (experiment["spec"] or {}).get("description") or None),
            ("runs", progress["runs"]),
            ("by status", progress["by_status"]),
            ("completed", f"{progress['completed_fraction']:.0%}"),
            ("cost USD", progress["cost_usd"]),
            ("GPU-hours", progress["gpu_hours"]),
        ],
        title=f"experiment {experiment['name']}",
    )
    print_table(
        ["id", "run", "status", "stage", "step", "tags", "cost USD", "message"],
        (
            [r["id"], r["name"], r["status"], r["stage"], f"{r['step']}/{r['total_steps'] or 0}",
             " ".join(f"{k}={v}" for k, v in r["tags"].items()), r["cost_usd"], r["message"]]
            for r in details["runs"]
        ),
        title="runs",
    )
    if details["groups"]:
        print_table(
            ["key", "value", "runs", "evaluated", f"mean {metric}", f"best {metric}"],
            ([g["key"], g["value"], g["runs"], g["evaluated"], g[f"mean_{metric}"], g[f"best_{metric}"]]
             for g in details["groups"]),
            title=f"by grid key ({metric}, split {details['groups_split']})",
        )
    for board in details["leaderboards"]:
        if not any(row["kind"] != "baseline" for row in board["rows"]):
            console.print(f"no run evaluated on split {board['split']} yet (an experiment's runs and the "
                          "baselines are scored on test when its last run completes; "
                          "or `afi eval RUN --baselines`)")
            continue
        print_table(
            LEADERBOARD_COLUMNS,
            ([row.get(c) for c in LEADERBOARD_COLUMNS] for row in board["rows"]),
            title=f"leaderboard by {metric}, {board['label']}",
        )


@app.command("list")
@command
def list_experiments(as_json: JsonOption = False) -> None:
    """Every experiment, with its runs counted by status."""
    records = experiment_service.list_experiments(state.engine())
    if as_json:
        print_json([record.to_dict() for record in records])
        return
    print_table(
        ["id", "name", "kind", "runs", "by status", "created"],
        (
            [r.id, r.name, r.kind, sum(r.run_counts.values()),
             " ".join(f"{k}={v}" for k, v in sorted(r.run_counts.items())), r.created_at]
            for r in records
        ),
        title=f"{len(records)} experiment(s)",
    )
