"""Training throughput on this machine, and what the data pipeline and the loggers cost.

    .venv/bin/python bench/train.py [--sizes 128 256] [--variants unet isnet unet+ifnet ...]
        [--steps 8] [--warmup 2] [--batch 4] [--workers 2] [--width 32] [--depth 4] [--threads N]

Runs the real loop (afi.train.loop.train_stage) on a synthetic cartoon dataset in a temporary
AFI_HOME with an SQLite registry, and prints per variant and size:
- samples/s over the timed steps (the first `--warmup` steps are excluded), and the ratio to the
  first variant at the same size, measured in the same run;
- data wait: the fraction of step time spent waiting for the loader (target < 5%);
- registry: the fraction of step time spent in the registry callback (metric logging every step,
  heartbeats, the final flush) (target < 1%); and the same for TensorBoard.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from afi.config import DataConfig, RunConfig, StageConfig, default_variant  # noqa: E402
from afi.data.loader import AugmentConfig, make_loader  # noqa: E402
from afi.data.service import open_split, synth_dataset  # noqa: E402
from afi.data.synth import SynthConfig  # noqa: E402
from afi.db import open_registry  # noqa: E402
from afi.launch.runs import RunRequest, create_run  # noqa: E402
from afi.train.callbacks import RegistryCallback, TensorBoardCallback  # noqa: E402
from afi.train.device import setup_device  # noqa: E402
from afi.train.loop import (
    Callback,
    Callbacks,
    ImageSample,
    Progress,
    StagePlan,
    StepReport,
    StopFlag,
)  # noqa: E402
from afi.train.loop import build_parts, train_stage  # noqa: E402
from afi.train.rng import seed_everything  # noqa: E402
from registry import runs as registry_runs  # noqa: E402
from registry.db import session_scope  # noqa: E402

DATASET = "bench"


class Timed(Callback):
    """Wraps a callback and adds up the seconds spent in its hooks."""

    def __init__(self, inner: Callback) -> None:
        self.inner = inner
        self.seconds = 0.0

    def _time(self, hook: str, *args: Any) -> None:
        started = time.perf_counter()
        getattr(self.inner, hook)(*args)
        self.seconds += time.perf_counter() - started

    def on_step(self, step: int) -> None:
        self._time("on_step", step)

    def on_log(self, report: StepReport) -> None:
        self._time("on_log", report)

    def on_images(self, sample: ImageSample) -> None:
        self._time("on_images", sample)

    def on_flush(self) -> None:
        self._time("on_flush")

    def on_end(self, step: int, outcome: str) -> None:
        self._time("on_end", step, outcome)


class StepClock(Callback):
    """Wall time of the steps after the warm-up, and how much of it went to waiting for data."""

    def __init__(self, warmup: int, batch: int) -> None:
        self.warmup = warmup
        self.batch = batch
        self.started = 0.0
        self.ended = 0.0
        self.data_seconds = 0.0

    def on_step(self, step: int) -> None:
        if step == self.warmup:
            self.started = time.perf_counter()
        elif step > self.warmup:
            self.ended = time.perf_counter()

    def on_log(self, report: StepReport) -> None:
        # log_every is 1, so each report's perf covers exactly one step of `batch` samples.
        if report.step > self.warmup:
            step_seconds = self.batch / report.perf["perf/samples_per_s"]
            self.data_seconds += report.perf["perf/data_wait"] * step_seconds

    @property
    def seconds(self) -> float:
        return self.ended - self.started


class NoCheckpoints:
    def save(self, step: int, payload: dict[str, Any], values: Any, is_best: bool) -> None:
        """The bench measures steps, not checkpoint writes."""


def variant_for(name: str, width: int, depth: int) -> Any:
    arch, _, extra = name.partition("+")
    flow = "ifnet" if extra == "ifnet" else "none"
    disc = extra if extra in ("patchgan", "sn-resnet-sa") else "none"
    return replace(default_variant(arch, flow=flow, disc=disc), width=width, depth=depth)


def measure(
    engine: Any, home: Path, name: str, size: int, args: argparse.Namespace
) -> dict[str, float]:
    stage = StageConfig(
        width=size, height=size, steps=args.warmup + args.steps, batch=args.batch, lr=2e-4
    )
    config = RunConfig(
        variant=variant_for(name, args.width, args.depth),
        data=DataConfig(dataset=DATASET, workers=args.workers),
        stages=(stage,),
        log_every=1,
        image_every=10**6,
        val_every=10**6,
        ckpt_every=10**6,
    ).validate()
    run = create_run(engine, RunRequest(config=config))
    with session_scope(engine) as session:
        # A run that is not `running` makes the registry callback's heartbeat stop the loop.
        registry_runs.transition(session, run.id, "running")
    plan = StagePlan(config, 0, setup_device())
    seed_everything(0)
    parts = build_parts(plan)
    train_set = open_split(
        engine,
        DATASET,
        "train",
        crop=(size, size),
        augment=AugmentConfig.from_data_config(config.data),
    )
    batches = iter(make_loader(train_set, args.batch, args.workers))
    stop = StopFlag()
    clock = StepClock(args.warmup, args.batch)
    registry = Timed(RegistryCallback(engine, run.id, stop))
    tensorboard = Timed(TensorBoardCallback(home / "tb" / str(run.id)))
    train_stage(
        plan,
        parts,
        batches,
        Progress(),
        NoCheckpoints(),
        None,
        Callbacks([clock, registry, tensorboard]),
        stop,
    )
    # Logger time of the whole run (warm-up and final flush included) over the timed steps' wall
    # time: it overstates the share slightly, which is the safe side.
    return {
        "samples_per_s": args.steps * args.batch / clock.seconds,
        "step_ms": 1000 * clock.seconds / args.steps,
        "data_wait": clock.data_seconds / clock.seconds,
        "registry": registry.seconds / clock.seconds,
        "tensorboard": tensorboard.seconds / clock.seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument(
        "--variants", nargs="+", default=["unet", "isnet", "unet+ifnet", "unet+patchgan"]
    )
    parser.add_argument("--steps", type=int, default=8, help="timed steps per variant and size")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="data-loader processes")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        os.environ["AFI_HOME"] = str(home)
        engine = open_registry(f"sqlite:///{home / 'registry.db'}")
        started = time.perf_counter()
        synth_dataset(
            engine,
            DATASET,
            SynthConfig(clips=3, frames_per_clip=16, width=max(args.sizes), height=max(args.sizes)),
        )
        print(
            f"dataset: {time.perf_counter() - started:.1f}s; device {setup_device().describe()}, "
            f"{torch.get_num_threads()} threads, batch {args.batch}, workers {args.workers}, "
            f"width {args.width}, depth {args.depth}, {args.steps} timed steps"
        )
        print(
            f"{'variant':<16}{'size':>6}{'samples/s':>11}{'vs first':>10}{'step ms':>10}"
            f"{'data wait':>11}{'registry':>10}{'tensorboard':>13}"
        )
        for size in args.sizes:
            baseline = None
            for name in args.variants:
                figures = measure(engine, home, name, size, args)
                baseline = baseline or figures["samples_per_s"]
                print(
                    f"{name:<16}{size:>6}{figures['samples_per_s']:>11.2f}"
                    f"{figures['samples_per_s'] / baseline:>10.2f}{figures['step_ms']:>10.0f}"
                    f"{figures['data_wait']:>11.2%}{figures['registry']:>10.3%}{figures['tensorboard']:>13.3%}"
                )
        engine.dispose()


if __name__ == "__main__":
    main()
