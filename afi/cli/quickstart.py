"""`afi quickstart`: data -> ablation -> evaluation -> leaderboard -> video, on this machine."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from afi.cli.app import command, console, state
from afi.cli.leaderboard import print_leaderboard
from registry.db import resolve_url


@command
def quickstart(
    minutes: Annotated[float, typer.Option(
        help="Time budget for the whole job, in minutes: every run trains for the same share of it."
    )] = 10.0,
    size: Annotated[int, typer.Option(help="Frame size of the synthetic cartoons and the runs.")] = 128,
    parallel: Annotated[int, typer.Option(help="Runs trained at the same time.")] = 2,
    seed: Annotated[int, typer.Option(help="Random seed for data and runs.")] = 0,
) -> None:
    """Synthesise cartoons, train a small U-Net/IS-Net x discriminator ablation on equal shares of
    the time budget, evaluate it against the classical baselines, rank it and interpolate a clip to 2x."""
    started = time.perf_counter()  # the imports and the registry's set-up count against the budget
    from afi.quickstart import QuickstartOptions, run_quickstart  # torch: only for this command

    options = QuickstartOptions(minutes=minutes, size=size, parallel=parallel, seed=seed)
    result = run_quickstart(
        state.engine(), resolve_url(state.db), options,
        report=lambda line: console.print(line, highlight=False), started=started,
    )
    print_leaderboard(result.leaderboard, "psnr")
    console.print(result.summary(), highlight=False)
    phases = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in result.phases.items())
    console.print(f"done in {result.elapsed_s / 60:.1f} of {minutes:g} min ({phases}; training was planned at "
                  f"{result.plan.seconds:.0f} s). Where everything is:")
    console.print(f"  registry     {result.registry_url}   (try: afi sql \"SELECT * FROM leaderboard\")")
    console.print(f"  experiment   {result.experiment}   (afi experiment show {result.experiment};"
                  f" afi report {result.experiment} -o report.html)")
    console.print(f"  tensorboard  {result.tensorboard}   (afi tensorboard)")
    console.print(f"  video        {result.video.output}   ({result.video.output_frames} frames at"
                  f" {result.video.output_fps:g} fps, from {result.clip.name})")
