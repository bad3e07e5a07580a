"""`afi eval`: score a run (and the classical baselines) on a registered dataset's triplets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from afi.cli.app import JsonOption, command, err_console, print_json, print_table, state

METRIC_COLUMNS = ("psnr", "ssim", "lineart", "lpips", "ms_ssim")


@command
def evaluate(
    run: Annotated[str, typer.Argument(help="Run id or name.", show_default=False)],
    dataset: Annotated[str, typer.Option(help="Registered dataset to score on.", show_default=False)],
    split: Annotated[Literal["train", "val", "test"], typer.Option(help="Split of the dataset.")] = "test",
    checkpoint: Annotated[Optional[Path], typer.Option(help="Score this checkpoint file instead of the best.")] = None,
    save_predictions: Annotated[
        Optional[Path],
        typer.Option(help="Write each prediction to DIR/<triplet key>.png (baselines to DIR/<method>/)."),
    ] = None,
    baselines: Annotated[bool, typer.Option("--baselines", help="Also score the classical baselines: nearest, blend, dis (plain bidirectional DIS) and flow (DIS projected to t).")] = False,
    batch: Annotated[int, typer.Option(help="Triplets per forward pass.")] = 8,
    as_json: JsonOption = False,
) -> None:
    """Score a run's best checkpoint with PSNR / SSIM / line-art distance (+ LPIPS) and record it."""
    from afi.evaluate import evaluate_run  # torch loads here, for this command only

    progress = Progress(
        TextColumn("[bold]eval"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )
    task = progress.add_task("eval", total=None)
    with progress:
        report = evaluate_run(
            state.engine(),
            run,
            dataset,
            split=split,
            checkpoint=checkpoint,
            save_predictions=save_predictions,
            baselines=baselines,
            batch=batch,
            progress=lambda _phase, done, total: progress.update(task, completed=done, total=total),
        )
    if as_json:
        print_json(report.to_dict())
        return
    shown = [m for m in METRIC_COLUMNS if any(m in s.metrics for s in report.scores)]
    rows = ([s.run, s.kind, s.method, s.step, s.triplets, *(s.metrics.get(m) for m in shown)] for s in report.scores)
    print_table(
        ["run", "kind", "method", "step", "triplets", *shown],
        rows,
        title=f"{report.dataset} / {report.split} (lineart and lpips: lower is better)",
    )
    from afi.metrics import lpips_unavailable

    missing = lpips_unavailable()
    if missing:
        err_console.print(missing, highlight=False, soft_wrap=True)
