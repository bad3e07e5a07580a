"""The training progress bar: a loop callback drawn with rich, silent unless stdout is a TTY."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from afi.train.loop import Callback, StepReport


class ProgressBar(Callback):
    """Step, loss, throughput and ETA of the stage being trained; notices go to stderr."""

    def __init__(self, console: Console, err_console: Console) -> None:
        self.console = console
        self.err_console = err_console
        self.progress: Progress | None = None
        self.task = 0

    def on_start(self, step: int, total_steps: int) -> None:
        if not self.console.is_terminal:
            return
        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[speed]} samples/s"),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self.task = self.progress.add_task(
            "train", total=total_steps, completed=step, loss="-", speed="-"
        )
        self.progress.start()

    def on_step(self, step: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=step)

    def on_plan(self, total_steps: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, total=total_steps)

    def on_log(self, report: StepReport) -> None:
        if self.progress is None:
            return
        loss = next((v for k, v in report.stats.items() if k.endswith("/total")), float("nan"))
        self.progress.update(
            self.task, loss=f"{loss:.4f}", speed=f"{report.perf['perf/samples_per_s']:.1f}"
        )

    def on_validation(self, step: int, values: dict[str, float]) -> None:
        if self.progress is not None:
            text = "  ".join(f"{name} {value:.4g}" for name, value in sorted(values.items()))
            self.progress.console.print(f"step {step}: val {text}", highlight=False)

    def on_notice(self, message: str) -> None:
        self.err_console.print(message, highlight=False, soft_wrap=True)

    def on_end(self, step: int, outcome: str) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
