"""`afi interpolate`: raise a video's frame rate with a trained model or a classical method."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.text import Text

from afi.cli.app import JsonOption, command, console, err_console, fail, print_json, state


class FramesPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("- frames/s" if speed is None else f"{speed:.1f} frames/s")


class FrameProgress:
    """One bar per phase (analysis, interpolation) on stderr, drawn only on a terminal."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            FramesPerSecond(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=err_console,
            transient=True,
            disable=not err_console.is_terminal,
        )
        self.tasks: dict[str, int] = {}

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        if phase not in self.tasks:
            # A resumed job starts part-way: rate and ETA count only the frames done from here.
            self.tasks[phase] = self.progress.add_task(phase, total=total, completed=done)
        self.progress.update(self.tasks[phase], completed=done, total=total)

    def __enter__(self) -> FrameProgress:
        self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.progress.stop()


@command
def interpolate(
    source: Annotated[Path, typer.Argument(help="Input video.", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output video (.mp4, .mkv).", show_default=False)],
    run: Annotated[Optional[str], typer.Option(help="Use this run's best checkpoint.")] = None,
    checkpoint: Annotated[Optional[Path], typer.Option(help="Use this checkpoint file.")] = None,
    method: Annotated[Optional[Literal["nearest", "blend", "dis", "flow"]], typer.Option(
        help="Classical method instead: nearest, blend, dis (plain bidirectional DIS) or flow "
        "(DIS projected to t).")] = None,
    factor: Annotated[Optional[float], typer.Option(help="Output rate = input rate x factor (default 2).")] = None,
    fps: Annotated[Optional[float], typer.Option(help="Output frame rate, instead of --factor.")] = None,
    codec: Annotated[Optional[str], typer.Option(help="Video encoder (default libx264, else mpeg4).")] = None,
    keep_timing: Annotated[
        bool, typer.Option("--keep-timing", help="Keep held drawings held: only add in-betweens between source frames.")
    ] = False,
    batch: Annotated[int, typer.Option(help="In-betweens (or tiles) per forward pass.")] = 8,
    scale: Annotated[
        Optional[float],
        typer.Option(
            help="Run the networks at this share of the frame size, in (0, 1]; flows and mask warp the "
            "full-size frames (default: about the training size the run or checkpoint records, else 1)."
        ),
    ] = None,
    tile: Annotated[
        Optional[int], typer.Option(help="Instead of --scale: full-resolution tiles of this size in pixels.")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue a job that was interrupted.")] = False,
    segment_frames: Annotated[int, typer.Option(help="Output frames per resumable segment.")] = 240,
    as_json: JsonOption = False,
) -> None:
    """Interpolate a video: scene cuts are respected, held drawings re-timed, audio copied."""
    from afi.video.engine import open_interpolator  # torch loads here, for this command only
    from afi.video.interpolate import InterpolateRequest, interpolate_video

    interpolator = open_interpolator(
        state.engine() if run is not None else None,
        run=run,
        checkpoint=checkpoint,
        method=method,
        batch=batch,
        tile=tile,
        scale=scale,
    )
    request = InterpolateRequest(
        input=source,
        output=output,
        factor=factor,
        fps=fps,
        keep_timing=keep_timing,
        codec=codec,
        batch=batch,
        resume=resume,
        segment_frames=segment_frames,
    )
    try:
        with FrameProgress() as progress:
            result = interpolate_video(request, interpolator, progress)
    except KeyboardInterrupt:
        raise fail("interrupted: rerun the same command with --resume to continue where it stopped", 130) from None
    if as_json:
        print_json(result.to_dict())
        return
    speed = result.output_frames / result.seconds if result.seconds > 0 else float("nan")
    console.print(
        f"wrote {result.output}: {result.output_frames} frames at {result.output_fps:g} fps from {result.source_frames} "
        f"at {result.source_fps:g} ({result.inbetweens} in-betweens by {result.interpolator}, {result.cuts} cuts, "
        f"{result.drawings} drawings{', audio copied' if result.audio else ''}) in {result.seconds:.1f} s "
        f"({speed:.1f} frames/s)",
        highlight=False,
        soft_wrap=True,
    )
