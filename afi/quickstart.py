"""`afi quickstart`: the whole idea, end to end, on a laptop CPU within a time budget.

Synthesise a cartoon dataset, launch a small ablation (flow-guided U-Net vs IS-Net, each with and
without a discriminator) through the same experiment + worker path as real runs, evaluate every run and the
classical baselines on the held-out split, rank them, and interpolate a short clip to 2x.

The number of training steps is sized from the measured speed of each variant on this machine, so
the whole job fits the budget: every run gets the same number of steps (a fair ablation), as many
as the slowest variant can afford.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from afi.config import DataConfig, RunConfig, StageConfig, default_variant
from afi.data.importers import ImportOptions
from afi.data.service import synth_dataset
from afi.data.split import SplitConfig
from afi.data.synth import SynthConfig
from afi.errors import AfiError, UsageError
from afi.evaluate import EvaluationReport, evaluate_run
from afi.launch.experiments import Placement, launch, plan_launch
from afi.launch.pricing import load_price_table
from afi.launch.spec import parse_spec
from afi.launch.worker import Worker, WorkerOptions
from afi.paths import afi_home, tensorboard_dir
from afi.train.device import setup_device
from afi.train.loop import StagePlan, StepRunner, build_parts
from afi.train.rng import seed_everything
from afi.video.engine import open_interpolator
from afi.video.interpolate import InterpolateRequest, InterpolateResult, interpolate_video
from registry import datasets as registry_datasets
from registry import leaderboard as registry_leaderboard
from registry import runs as registry_runs
from registry.db import mask_url, session_scope
from registry.errors import NotFound
from registry.records import LeaderboardRow

ARCHS = ("unet", "isnet")
DISCS = ("none", "patchgan")
# Flow-guided backbones: in the minute or two of CPU training a quickstart run gets, a backbone
# without flow stays at the blend it starts from (measured: +0.001 dB after 150 steps), while the
# IFNet-guided one gains about 2 dB over it in the same steps.
FLOW = "ifnet"
DATASET = "quickstart-toons"
EVAL_SPLIT = "test"
# Seconds of the budget kept for what is not training: start-up, data, evaluation, the video.
RESERVED_FRACTION = 0.35
MIN_RESERVED_S = 45.0
MIN_STEPS = 20

Report = Callable[[str], None]


@dataclass(frozen=True)
class QuickstartOptions:
    minutes: float = 10.0
    size: int = 128
    clips: int = 12
    frames_per_clip: int = 24
    batch: int = 4
    width: int = 16
    depth: int = 3
    parallel: int = 2
    seed: int = 0

    def validate(self) -> QuickstartOptions:
        if not self.minutes > 0:
            raise UsageError(f"--minutes must be positive, got {self.minutes}")
        if self.size < 32 or self.size % 16:
            raise UsageError(f"--size must be a multiple of 16 and at least 32, got {self.size}")
        if self.parallel < 1:
            raise UsageError(f"--parallel must be at least 1, got {self.parallel}")
        return self

    @property
    def budget_s(self) -> float:
        return self.minutes * 60.0


@dataclass(frozen=True)
class QuickstartResult:
    experiment: str
    dataset: str
    steps: int
    seconds_per_step: dict[str, float]
    leaderboard: list[LeaderboardRow]
    evaluations: list[EvaluationReport]
    video: InterpolateResult
    clip: Path
    registry_url: str
    tensorboard: Path
    elapsed_s: float

    @property
    def best_model(self) -> LeaderboardRow:
        return next(row for row in self.leaderboard if not row.is_baseline)

    def beats_blend(self) -> bool:
        blend = [row.psnr for row in self.leaderboard if row.is_baseline and row.arch == "blend"]
        models = [row.psnr for row in self.leaderboard if not row.is_baseline and row.psnr is not None]
        return bool(blend and models) and min(models) > blend[0]


def base_config(options: QuickstartOptions, steps: int) -> RunConfig:
    """The ablation's base run, `steps` long."""
    stage = StageConfig(
        width=options.size, height=options.size, steps=steps, batch=options.batch, lr=2e-3,
        warmup_steps=min(20, steps // 10),
    )
    # Short runs: validate, checkpoint and draw images once, at the end (each costs seconds on a
    # CPU); and an EMA horizon of a tenth of the run, or the evaluated EMA weights would still be
    # the untrained start after a few dozen steps.
    return RunConfig(
        variant=replace(default_variant("unet", FLOW), width=options.width, depth=options.depth),
        data=DataConfig(dataset=DATASET, val_limit=16),
        stages=(stage,),
        seed=options.seed,
        val_every=steps,
        ckpt_every=steps,
        log_every=max(1, steps // 50),
        image_every=steps,
        keep_last=1,
        ema_decay=max(0.0, 1.0 - 10.0 / steps),
        adv_warmup_steps=steps // 4,
    ).validate()


def seconds_per_step(config: RunConfig, steps: int = 3) -> float:
    """Measured time of one optimiser step of `config`'s first stage on this machine, data aside."""
    stage = config.stages[0]
    plan = StagePlan(config, 0, setup_device(config.precision))
    seed_everything(config.seed)
    parts = build_parts(plan)
    shape = (stage.batch, 3, stage.height, stage.width)

    def batches() -> Any:
        while True:
            yield {"frame0": torch.rand(shape), "frame1": torch.rand(shape), "frame2": torch.rand(shape),
                   "t": torch.full((stage.batch,), 0.5)}

    runner = StepRunner(plan, parts, batches())
    runner.run(0)  # warm-up: allocator, first-call kernel selection
    started = time.perf_counter()
    for step in range(1, steps + 1):
        runner.run(step)
    return (time.perf_counter() - started) / steps


def spec_for(options: QuickstartOptions, name: str, steps: int) -> Any:
    raw = {
        "experiment": {"name": name, "kind": "ablation",
                       "description": "quickstart: flow-guided unet vs isnet, with and without a PatchGAN"},
        **base_config(options, steps).to_dict(),
        "grid": {"variant.arch": list(ARCHS), "variant.disc": list(DISCS)},
    }
    return parse_spec(raw, "afi quickstart", default_name=name, overrides=[])


def ensure_dataset(engine: Any, options: QuickstartOptions, report: Report) -> None:
    with session_scope(engine) as session:
        try:
            registry_datasets.get_dataset(session, DATASET)
            report(f"dataset {DATASET} already registered: reusing it")
            return
        except NotFound:
            pass
    config = SynthConfig(clips=options.clips, frames_per_clip=options.frames_per_clip,
                         width=options.size, height=options.size, seed=options.seed)
    # A larger held-out share than the importer's default: the leaderboard is read off the test
    # split, and a dozen clips give few shots.
    split = SplitConfig(val=0.15, test=0.25, seed=options.seed)
    result = synth_dataset(engine, DATASET, config, options=ImportOptions(split=split))
    record = result.record
    report(f"dataset {DATASET}: {record.triplet_count} triplets from {record.shot_count} shots "
           f"({record.split_counts})")


def size_steps(
    options: QuickstartOptions, speeds: dict[str, float], elapsed_s: float, report: Report
) -> int:
    """Steps per run so that all runs, `parallel` at a time, finish within the training budget;
    never fewer than MIN_STEPS, saying so when the budget is too short for them on this machine."""
    reserved = max(MIN_RESERVED_S, RESERVED_FRACTION * options.budget_s)
    train_s = options.budget_s - elapsed_s - reserved
    # Parallel runs share the cores: the calibration measured one run alone, so two at a time
    # are each about half as fast; the sum of step times is what the budget pays either way.
    steps = int(train_s / (sum(speeds.values()) * 1.15))  # 15%: validation, checkpoints, logging
    if steps < MIN_STEPS:
        report(f"   --minutes {options.minutes:g} is too short on this machine for {MIN_STEPS} steps "
               f"per run: running {MIN_STEPS} anyway, so expect to overrun")
        return MIN_STEPS
    return steps


def run_quickstart(engine: Any, db_url: str, options: QuickstartOptions, report: Report,
                   output_dir: Path | None = None) -> QuickstartResult:
    options = options.validate()
    started = time.perf_counter()
    output_dir = output_dir or afi_home() / "quickstart"
    output_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, torch.get_num_threads() // options.parallel))

    report("1/5 data: synthesising cartoons")
    ensure_dataset(engine, options, report)

    report("2/5 sizing: measuring each variant's step time on this machine")
    speeds = {
        f"{arch}/{disc}": seconds_per_step(
            replace(base_config(options, 100), variant=replace(
                default_variant(arch, FLOW, disc), width=options.width, depth=options.depth)))
        for arch in ARCHS for disc in DISCS
    }
    steps = size_steps(options, speeds, time.perf_counter() - started, report)
    report("   " + ", ".join(f"{k} {v * 1000:.0f} ms/step" for k, v in speeds.items())
           + f" -> {steps} steps per run")

    name = f"quickstart-{time.strftime('%Y%m%d-%H%M%S')}"
    report(f"3/5 training: experiment {name}, {len(ARCHS) * len(DISCS)} runs, {options.parallel} at a time")
    table = load_price_table()
    plan = plan_launch(spec_for(options, name, steps), Placement(), table)
    launch(engine, plan, table, db_url)
    Worker(db_url, WorkerOptions(max_parallel=options.parallel, mode="until-empty", poll_s=1.0,
                                 stale_after_s=60.0)).run()

    report("4/5 evaluation: every run and the nearest / blend / flow baselines on the test split")
    with session_scope(engine) as session:
        runs = registry_runs.list_runs(session, experiment=name)
    unfinished = [f"{r.name} ({r.status}: {r.message})" for r in runs if r.status != "completed"]
    if unfinished:
        raise AfiError(f"quickstart runs did not complete: {'; '.join(unfinished)}")
    evaluations = [
        evaluate_run(engine, run.id, DATASET, EVAL_SPLIT, baselines=index == 0)
        for index, run in enumerate(sorted(runs, key=lambda r: r.id))
    ]
    with session_scope(engine) as session:
        rows = registry_leaderboard.leaderboard(session, registry_leaderboard.LeaderboardQuery(
            dataset=DATASET, split=EVAL_SPLIT, best_per_variant=False))
    rows = [r for r in rows if r.is_baseline or r.experiment == name]

    report("5/5 video: interpolating a short synthetic clip to 2x with the best model")
    clip = output_dir / "clip-12fps.mp4"
    synth_clip(clip, options)
    best = next(row for row in rows if not row.is_baseline)
    video = interpolate_video(
        InterpolateRequest(input=clip, output=output_dir / "clip-24fps.mp4", factor=2.0),
        open_interpolator(engine, run=str(best.run_id)),
    )
    return QuickstartResult(
        experiment=name, dataset=DATASET, steps=steps, seconds_per_step=speeds, leaderboard=rows,
        evaluations=evaluations, video=video, clip=clip, registry_url=mask_url(db_url),
        tensorboard=tensorboard_dir(), elapsed_s=time.perf_counter() - started,
    )


def synth_clip(path: Path, options: QuickstartOptions) -> None:
    """A 12 fps cartoon with a cut, held drawings and a tone: what a user would interpolate."""
    from afi.data.synth import generate_cartoon
    from afi.data.video import write_video

    config = SynthConfig(clips=2, frames_per_clip=24, width=options.size, height=options.size,
                         seed=options.seed + 1000, fps=12.0)
    write_video(path, generate_cartoon(config).frames, config.fps, tone_hz=440.0)
