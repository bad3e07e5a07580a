"""`afi run`: record, train, list, show and cancel runs."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Optional

import typer

from afi.cli.app import (
    JsonOption,
    command,
    console,
    err_console,
    fail,
    new_app,
    parse_tags,
    print_fields,
    print_json,
    print_table,
    state,
)
from afi.config import (
    BUDGET_ONLY_STEPS,
    DataConfig,
    RunConfig,
    StageConfig,
    default_variant,
    parse_resolution,
)
from afi.errors import UsageError
from afi.launch import runs as run_service
from registry import datasets as registry_datasets
from registry.db import session_scope

app = new_app("Runs: create, start, list, show, cancel, compare.")


def parse_stages(
    text: str, batch: int, lr: float, minutes: float | None = None
) -> tuple[StageConfig, ...]:
    """`128:2000,256:1000` -> two stages (resolution:steps), sharing --batch, --lr and --minutes."""
    stages = []
    for item in text.split(","):
        res, sep, steps = item.strip().partition(":")
        if not sep:
            raise UsageError(f"bad stage {item!r}: use RES:STEPS, e.g. --stages 128:2000,256:1000")
        width, height = parse_resolution(res)
        try:
            step_count = int(steps)
        except ValueError:
            raise UsageError(f"bad step count in stage {item!r}: use an integer") from None
        stages.append(
            StageConfig(width, height, steps=step_count, batch=batch, lr=lr, minutes=minutes)
        )
    return tuple(stages)


def only_dataset(engine: object) -> str:
    """--dataset left out: the registry's one dataset (said on stderr); none or several is an error."""
    with session_scope(engine) as session:
        names = sorted(d.name for d in registry_datasets.list_datasets(session))
    if not names:
        raise UsageError("no dataset registered: add one (`afi dataset add` or `afi dataset synth`), "
                         "then pass --dataset NAME")
    if len(names) > 1:
        raise UsageError(
            f"{len(names)} datasets registered ({', '.join(names)}): pick one with --dataset NAME"
        )
    err_console.print(f"using dataset {names[0]}, the only one registered", highlight=False)
    return names[0]


@app.command()
@command
def create(
    arch: Annotated[str, typer.Option(help="Backbone: unet, isnet, or vae/vqvae for autoencoders.")] = "unet",
    res: Annotated[str, typer.Option(help="Training resolution: 256 or WIDTHxHEIGHT.")] = "128",
    flow: Annotated[str, typer.Option(help="Flow guidance: none, ifnet (learned, RIFE-style), dis (OpenCV DIS flow as a fixed prior; trains fast on CPUs) or dis+refine (RIFE-style blocks that correct DIS's flows and occlusion mask; starts at the DIS baseline).")] = "none",
    disc: Annotated[str, typer.Option(help="Discriminator: none, patchgan, sn-resnet-sa.")] = "none",
    dataset: Annotated[Optional[str], typer.Option(
        help="Registered dataset to train on (default: the only one registered).")] = None,
    steps: Annotated[
        Optional[int],
        typer.Option(
            help="Optimiser steps (per stage), 1000 if not given; with --minutes, the most it may "
            "take (no cap if not given)."
        ),
    ] = None,
    minutes: Annotated[
        Optional[float],
        typer.Option(
            help="Wall-clock budget of each stage's training, in minutes: the trainer re-plans its "
            "steps from its measured pace and ends, completed, at the deadline."
        ),
    ] = None,
    batch: Annotated[int, typer.Option(help="Batch size.")] = 8,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 2e-4,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    stages: Annotated[
        Optional[str],
        typer.Option(help="Resolution curriculum RES:STEPS,... (overrides --res/--steps)."),
    ] = None,
    width: Annotated[int, typer.Option(help="Base channel width of the backbone.")] = 32,
    depth: Annotated[int, typer.Option(help="Number of U-Net levels.")] = 4,
    experiment: Annotated[Optional[str], typer.Option(help="Experiment to group the run under.")] = None,
    tag: Annotated[list[str], typer.Option(help="Tag key=value (repeatable).")] = [],
    name: Annotated[Optional[str], typer.Option(help="Run name (default: generated).")] = None,
    queue: Annotated[bool, typer.Option(help="Queue the run for `afi worker`.")] = False,
    start: Annotated[bool, typer.Option("--start", help="Train it now, as `afi run start` does.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Record a new run in the registry and print its id."""
    if start and queue:
        raise UsageError("--start trains the run here and --queue leaves it to `afi worker`: pick one")
    if steps is None:
        steps = 1000 if minutes is None else BUDGET_ONLY_STEPS
    stage_list = (
        parse_stages(stages, batch, lr, minutes)
        if stages is not None  # an empty --stages is a mistake, not "use --res"
        else (StageConfig(*parse_resolution(res), steps=steps, batch=batch, lr=lr, minutes=minutes),)
    )
    variant = default_variant(arch, flow, disc)
    if (width, depth) != (variant.width, variant.depth):
        variant = replace(variant, width=width, depth=depth)
    config = RunConfig(
        variant=variant, data=DataConfig(dataset=dataset), stages=stage_list, seed=seed
    ).validate()
    tags = parse_tags(tag)
    if dataset is None:  # settings checked first: their errors are the ones to fix first
        config = replace(config, data=replace(config.data, dataset=only_dataset(state.engine())))
    request = run_service.RunRequest(
        config=config, name=name, experiment=experiment, tags=tags, queue=queue
    )
    record = run_service.create_run(state.engine(), request)
    if start:
        train_run(str(record.id), resume=False, as_json=as_json)
        return
    if as_json:
        print_json(record.to_dict())
        return
    console.print(record.id)


@app.command("start")
@command
def start_run(
    run: Annotated[str, typer.Argument(help="Run id or name.")],
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue a preempted, failed or dead run from its last intact checkpoint.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Train a recorded run through every curriculum stage (SIGTERM, Ctrl-C: checkpoint, stop)."""
    train_run(run, resume, as_json)


def train_run(run: str, resume: bool, as_json: bool) -> None:
    """Train, then print the last stage's run; exit 1 unless it completed."""
    from afi.cli.progress import ProgressBar
    from afi.train.callbacks import ProgressLog
    from afi.train.service import start_run as train  # torch loads here, for this command only

    # The bar on a terminal; in a log or a pipe, where it draws nothing, lines at a steady pace.
    progress = ProgressBar(console, err_console) if console.is_terminal else ProgressLog(f"run {run}")
    record = train(state.engine(), run, resume=resume, callbacks=[progress])
    if as_json:
        print_json(record.to_dict())
    else:
        console.print(
            f"run {record.id} ({record.name}): {record.status} at step "
            f"{record.step}/{record.total_steps}",
            highlight=False,
        )
    if record.status != "completed":
        raise fail(record.message or f"run {record.name} is {record.status}")


@app.command("list")
@command
def list_runs(
    status: Annotated[Optional[str], typer.Option(help="Only runs in this state.")] = None,
    experiment: Annotated[Optional[str], typer.Option(help="Only runs of this experiment.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many (newest first).")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List runs, newest first."""
    records = run_service.list_runs(state.engine(), status=status, experiment=experiment, limit=limit)
    if as_json:
        print_json([r.to_dict() for r in records])
        return
    print_table(
        ["id", "name", "status", "arch", "flow", "disc", "res", "stage", "dataset", "experiment", "step"],
        (
            [r.id, r.name, r.status, r.arch, r.flow, r.disc, r.resolution, r.stage,
             r.dataset, r.experiment, f"{r.step or 0}/{r.total_steps or 0}"]
            for r in records
        ),
        title=f"{len(records)} run(s)",
    )


@app.command()
@command
def show(
    run: Annotated[str, typer.Argument(help="Run id or name.")],
    as_json: JsonOption = False,
) -> None:
    """Show one run: settings, state, metrics, checkpoints and evaluations."""
    details = run_service.run_details(state.engine(), run)
    if as_json:
        print_json(details)
        return
    record = details["run"]
    print_fields(
        [(k, v) for k, v in record.items() if k not in ("config",)], title=f"run {record['id']}"
    )
    if details["metrics"]:
        print_table(
            ["metric", "last step", "last", "best"],
            ([m["key"], m["last_step"], m["last"], m["best"]] for m in details["metrics"]),
            title="metrics",
        )
    if details["checkpoints"]:
        print_table(
            ["step", "path", "bytes", "best"],
            ([c["step"], c["path"], c["size_bytes"], c["is_best"]] for c in details["checkpoints"]),
            title="checkpoints",
        )
    if details["evaluations"]:
        print_table(
            ["split", "metric", "value", "step"],
            ([e["split"], e["metric"], e["value"], e["step"]] for e in details["evaluations"]),
            title="evaluations",
        )


@app.command()
@command
def cancel(run: Annotated[str, typer.Argument(help="Run id or name.")]) -> None:
    """Cancel a created or queued run."""
    record = run_service.cancel_run(state.engine(), run)
    console.print(f"run {record.id} ({record.name}) cancelled")
