"""Where the loop's reports go: the registry (metrics, heartbeats) and TensorBoard."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from afi.train.loop import Callback, ImageSample, StepReport, StopFlag
from registry import metrics as registry_metrics
from registry import runs as registry_runs
from registry.db import in_transaction, is_connection_lost, outage_backoff_s
from registry.errors import DatabaseUnavailable, RegistryError

# Often enough that `afi worker` finds a dead run within a minute or two, rarely enough that it
# costs nothing: one short UPDATE.
HEARTBEAT_EVERY_S = 15.0


class RegistryCallback(Callback):
    """Metrics to the registry (buffered, idempotent by step), heartbeats, and the run's step.

    A heartbeat that finds the run no longer `running` (cancelled, or marked stale by a worker
    that thought this process dead) asks the loop to stop. Through a database outage training
    goes on: heartbeats are retried with backoff without holding up a step, metrics stay
    buffered, and only a checkpoint (which must not lose the metrics before it) waits for the
    database, up to `outage_s`; past that, DatabaseUnavailable ends the attempt.
    """

    def __init__(
        self, engine: Any, run_id: int, stop: StopFlag, train_seconds: float = 0.0,
        outage_s: float = 0.0,
    ) -> None:
        self.engine = engine
        self.run_id = run_id
        self.stop = stop
        self.outage_s = outage_s
        self.logger = registry_metrics.MetricLogger(engine, run_id, outage_s=outage_s)
        # Training time of earlier attempts, plus this attempt's wall time.
        self.previous_seconds = train_seconds
        self.started = time.monotonic()
        self.next_beat = self.started + HEARTBEAT_EVERY_S
        self.unreachable_since: float | None = None
        self.failed_beats = 0
        self.total_steps: int | None = None  # a time-budgeted stage's latest plan, once re-planned

    @property
    def train_seconds(self) -> float:
        return self.previous_seconds + time.monotonic() - self.started

    def on_step(self, step: int) -> None:
        if time.monotonic() >= self.next_beat:
            self.beat(step)

    def on_plan(self, total_steps: int) -> None:
        self.total_steps = total_steps  # recorded with the next heartbeat

    def beat(self, step: int) -> None:
        """One heartbeat attempt; a lost database only postpones the next one (with backoff)."""
        progress: dict[str, Any] = {"train_seconds": self.train_seconds}  # fixed across retries
        if self.total_steps is not None:
            progress["total_steps"] = self.total_steps

        def stamp(session: Any) -> str:
            status = registry_runs.heartbeat(session, self.run_id, step=step)
            if status == "running":
                registry_runs.update_run(session, self.run_id, **progress)
            return status

        now = time.monotonic()
        try:
            status = in_transaction(self.engine, stamp, outage_s=0.0)
        except RegistryError as exc:
            if not is_connection_lost(exc.__cause__):
                raise
            self.unreachable_since = self.unreachable_since or now
            self.failed_beats += 1
            if now - self.unreachable_since > self.outage_s:
                raise DatabaseUnavailable(
                    f"the registry has been unreachable for {now - self.unreachable_since:.0f} s "
                    f"(more than AFI_DB_OUTAGE_S={self.outage_s:g}): {exc}"
                ) from exc
            self.next_beat = now + min(HEARTBEAT_EVERY_S, outage_backoff_s(self.failed_beats))
            return
        self.unreachable_since, self.failed_beats = None, 0
        self.next_beat = time.monotonic() + HEARTBEAT_EVERY_S
        if status != "running":
            self.stop.request(f"the run is {status} in the registry")

    def on_log(self, report: StepReport) -> None:
        self.logger.log_many(report.step, {**report.stats, **report.perf})

    def on_validation(self, step: int, values: dict[str, float]) -> None:
        self.logger.log_many(step, {f"val/{name}": value for name, value in values.items()})

    def on_flush(self) -> None:
        # Before a checkpoint: a resume from it replays only later steps, so the metrics of the
        # steps before it must be written first, waiting out an outage if need be.
        self.logger.flush(self.outage_s)

    def on_end(self, step: int, outcome: str) -> None:
        self.logger.close()


class TensorBoardCallback(Callback):
    """Scalars and image grids under AFI_HOME/tb/<run id>; `afi tensorboard` serves them."""

    def __init__(self, log_dir: Path, start_step: int = 0) -> None:
        from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: only when used

        # purge_step hides events a killed attempt wrote past the checkpoint this one resumes from.
        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=start_step or None)

    def on_log(self, report: StepReport) -> None:
        for key, value in {**report.stats, **report.perf}.items():
            self.writer.add_scalar(key, value, report.step)

    def on_images(self, sample: ImageSample) -> None:
        self.writer.add_image(
            "images/inputs|prediction|truth|error", image_grid(sample), sample.step
        )

    def on_validation(self, step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.writer.add_scalar(f"val/{name}", value, step)

    def on_notice(self, message: str) -> None:
        self.writer.add_text("notices", message)

    def on_flush(self) -> None:
        self.writer.flush()

    def on_end(self, step: int, outcome: str) -> None:
        self.writer.close()


def image_grid(sample: ImageSample) -> torch.Tensor:
    """(3, H', W'): one row per sample: its inputs, the prediction, the truth, and |error| x 4."""
    from torchvision.utils import make_grid  # torchvision takes seconds to import: only when used

    error = ((sample.prediction - sample.truth).abs() * 4).clamp(0, 1)
    columns = [*sample.inputs, sample.prediction, sample.truth, error]  # each (N, 3, H, W)
    tiles = torch.stack(columns, dim=1).flatten(0, 1)  # (N * columns, 3, H, W), row-major
    return make_grid(tiles, nrow=len(columns), padding=2, pad_value=1.0)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _stderr_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class ProgressLog(Callback):
    """Plain progress lines for logs and pipes, where a progress bar draws nothing: step, loss,
    throughput and ETA at the first logged step, then at most once per `interval_s`, then the
    outcome. A worker's or tuner's log then shows a long run alive."""

    def __init__(
        self,
        label: str,
        write: Callable[[str], None] = _stderr_line,
        interval_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label, self.write, self.interval_s, self.clock = label, write, interval_s, clock
        self.total = 0
        self.first_step = 0
        self.started = 0.0
        self.last: float | None = None

    def on_start(self, step: int, total_steps: int) -> None:
        self.total, self.first_step, self.started, self.last = total_steps, step, self.clock(), None

    def on_log(self, report: StepReport) -> None:
        now = self.clock()
        if self.last is not None and now - self.last < self.interval_s:
            return
        self.last = now
        loss = next((v for k, v in report.stats.items() if k.endswith("/total")), float("nan"))
        done = report.step - self.first_step
        eta = (report.total_steps - report.step) * (now - self.started) / done if done > 0 else None
        self.write(
            f"{self.label}: step {report.step}/{report.total_steps}  loss {loss:.4f}  "
            f"{report.perf.get('perf/samples_per_s', float('nan')):.1f} samples/s  "
            f"eta {'-' if eta is None else _duration(eta)}"
        )

    def on_plan(self, total_steps: int) -> None:
        self.total = total_steps  # a time-budgeted stage's latest plan

    def on_validation(self, step: int, values: dict[str, float]) -> None:
        text = "  ".join(f"{name} {value:.4g}" for name, value in sorted(values.items()))
        self.write(f"{self.label}: step {step} validation {text}")

    def on_notice(self, message: str) -> None:
        self.write(message)

    def on_end(self, step: int, outcome: str) -> None:
        self.write(f"{self.label}: {outcome} at step {step}/{self.total} after "
                   f"{_duration(self.clock() - self.started)}")
