"""`afi quickstart`: the whole idea, end to end, on a laptop CPU within a time budget.

Synthesise a cartoon dataset, launch a small ablation (DIS-flow-guided U-Net vs IS-Net, each with and
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
from afi.data.loader import AugmentConfig, make_loader
from afi.data.service import open_split, synth_dataset
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

# Slowest first (U-Net, then the discriminator): the worker claims runs in queue order, so the
# long runs start first and the two slots end nearly together. (At 10 minutes the runs took 366,
# 271, 268 and 244 s: fast ones first, the last ended 634 s in; slow ones first, 610 s.)
ARCHS = ("unet", "isnet")
DISCS = ("patchgan", "none")
# DIS-guided backbones: in the minutes of CPU training a quickstart run gets, a backbone without
# flow stays at the blend it starts from (measured on this data, test split, blend 26.07 dB:
# +0.001 dB after 150 steps) and a learned IFNet gets to 27.99 dB, while a DIS-guided one starts at
# the DIS flow baseline (31.75 dB) and learns occlusions and a residual on top of it.
FLOW = "dis"
DATASET = "quickstart-toons"
EVAL_SPLIT = "test"
# What the training phase pays besides the calibrated steps, and what comes after it: measured on
# a 2-core machine (bench/quickstart.py prints planned against actual for every phase).
RUN_OVERHEAD_S = 8.0  # per run: process start, set-up, the final validation, checkpoint and images
CONTENTION = 1.15  # runs side by side, one per core, step this much slower than one alone
AFTER_TRAINING_S = 20.0  # evaluation of every run and the baselines, the video (measured: 9 s)
MIN_STEPS = 20
ADV_WARMUP_SHARE = 0.25  # of a run's steps before its discriminator trains (and costs time)

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
class TrainingPlan:
    steps: int  # per run
    seconds: float  # expected wall time of the training phase


@dataclass(frozen=True)
class QuickstartResult:
    experiment: str
    dataset: str
    plan: TrainingPlan
    seconds_per_step: dict[str, float]
    leaderboard: list[LeaderboardRow]
    evaluations: list[EvaluationReport]
    video: InterpolateResult
    clip: Path
    registry_url: str
    tensorboard: Path
    phases: dict[str, float]  # wall seconds of each phase: data, sizing, training, evaluation, video

    @property
    def elapsed_s(self) -> float:
        return sum(self.phases.values())

    @property
    def best_model(self) -> LeaderboardRow:
        return next(row for row in self.leaderboard if not row.is_baseline)

    def summary(self) -> str:
        return versus_strongest_baseline(self.leaderboard)


def versus_strongest_baseline(rows: list[LeaderboardRow]) -> str:
    """The closing line: each model's PSNR against the strongest baseline on the same split (the
    bar a learned model has to clear; blend is the weakest that moves anything)."""
    baselines = [r for r in rows if r.is_baseline and r.psnr is not None]
    models = [r for r in rows if not r.is_baseline and r.psnr is not None]
    if not baselines or not models:
        return "no model and baseline scored on the same split: nothing to compare"
    best = max(baselines, key=lambda r: r.psnr or 0.0)
    ahead = sum((m.psnr or 0.0) > (best.psnr or 0.0) for m in models)
    verdict = "every model beats" if ahead == len(models) else f"{ahead} of {len(models)} models beat"
    margins = ", ".join(f"{m.run} {(m.psnr or 0.0) - (best.psnr or 0.0):+.2f} dB" for m in models)
    return (f"{verdict} the strongest baseline, {best.arch} at {best.psnr:.2f} dB PSNR "
            f"({best.dataset}, {best.split} split): {margins}")


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
        adv_warmup_steps=int(steps * ADV_WARMUP_SHARE),
    ).validate()


def calibration_config(options: QuickstartOptions, arch: str, disc: str) -> RunConfig:
    """A run of the variant whose every step is a full one: no adversarial warm-up, which in a
    real run skips the discriminator for its first steps only."""
    variant = replace(default_variant(arch, FLOW, disc), width=options.width, depth=options.depth)
    return replace(base_config(options, 100), variant=variant, adv_warmup_steps=0)


def seconds_per_step(engine: Any, config: RunConfig, steps: int = 3) -> float:
    """Measured time of one optimiser step of `config`'s first stage on this machine, with the
    dataset's real batches (DIS flow time depends on the pictures) loaded as a run loads them."""
    stage = config.stages[0]
    plan = StagePlan(config, 0, setup_device(config.precision))
    seed_everything(config.seed)
    parts = build_parts(plan)
    train_set = open_split(engine, config.data.dataset, "train", crop=(stage.width, stage.height),
                           augment=AugmentConfig.from_data_config(config.data), seed=config.seed)
    runner = StepRunner(plan, parts, iter(make_loader(train_set, stage.batch, config.data.workers)))
    runner.run(0)  # warm-up: allocator, first-call kernel selection
    started = time.perf_counter()
    for step in range(1, steps + 1):
        runner.run(step)
    return (time.perf_counter() - started) / steps


def spec_for(options: QuickstartOptions, name: str, steps: int) -> Any:
    raw = {
        "experiment": {"name": name, "kind": "ablation",
                       "description": "quickstart: DIS-guided unet vs isnet, with and without a PatchGAN"},
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


def plan_training(
    options: QuickstartOptions, speeds: dict[str, float], elapsed_s: float, report: Report
) -> TrainingPlan:
    """Steps per run so that the runs, taken in queue order by `parallel` slots, each on its
    share of the cores (as calibrated), all end within what the budget leaves for training; never
    fewer than MIN_STEPS, saying so when the budget is too short for them on this machine.

    `speeds`: seconds per full step of each "arch/disc" in queue order."""
    per_step = [mean_step_s(speeds, key) * CONTENTION for key in speeds]

    def wall_s(steps: int) -> float:
        return makespan([RUN_OVERHEAD_S + steps * seconds for seconds in per_step], options.parallel)

    train_s = options.budget_s - elapsed_s - AFTER_TRAINING_S
    steps = MIN_STEPS
    if wall_s(MIN_STEPS) > train_s:
        report(f"   --minutes {options.minutes:g} is too short on this machine for {MIN_STEPS} steps "
               f"per run: running {MIN_STEPS} anyway, so expect to overrun")
    else:
        # The wall time grows with the steps: the largest count that fits, by bisection.
        fits, too_many = MIN_STEPS, MIN_STEPS + 1
        while wall_s(too_many) <= train_s:
            fits, too_many = too_many, too_many * 2
        while too_many - fits > 1:
            middle = (fits + too_many) // 2
            fits, too_many = (middle, too_many) if wall_s(middle) <= train_s else (fits, middle)
        steps = fits
    return TrainingPlan(steps=steps, seconds=wall_s(steps))


def mean_step_s(speeds: dict[str, float], key: str) -> float:
    """A run's mean seconds per step: a run with a discriminator steps without it while warming up."""
    arch, disc = key.split("/")
    if disc == "none":
        return speeds[key]
    return ADV_WARMUP_SHARE * speeds[f"{arch}/none"] + (1 - ADV_WARMUP_SHARE) * speeds[key]


def makespan(durations: list[float], parallel: int) -> float:
    """Wall time of jobs taken in order by `parallel` slots, each slot taking the next job as it
    frees: how workers drain a queue."""
    free_at = [0.0] * parallel
    for duration in durations:
        slot = free_at.index(min(free_at))
        free_at[slot] += duration
    return max(free_at)


class PhaseClock:
    """Wall seconds per phase, in the order they ran."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._started = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.phases[phase] = now - self._started
        self._started = now

    @property
    def elapsed_s(self) -> float:
        return sum(self.phases.values()) + time.perf_counter() - self._started


def run_quickstart(engine: Any, db_url: str, options: QuickstartOptions, report: Report,
                   output_dir: Path | None = None) -> QuickstartResult:
    options = options.validate()
    clock = PhaseClock()
    output_dir = output_dir or afi_home() / "quickstart"
    output_dir.mkdir(parents=True, exist_ok=True)
    # closing_evaluation off: step 4 below scores the runs and baselines itself, and times it.
    worker_options = WorkerOptions(max_parallel=options.parallel, mode="until-empty", poll_s=1.0,
                                   stale_after_s=60.0, closing_evaluation=False)
    # Calibrate on the threads each run will get.
    torch.set_num_threads(worker_options.threads_per_run)

    report("1/5 data: synthesising cartoons")
    ensure_dataset(engine, options, report)
    clock.lap("data")

    report("2/5 sizing: measuring each variant's step time on this machine")
    speeds = {
        f"{arch}/{disc}": seconds_per_step(engine, calibration_config(options, arch, disc))
        for arch in ARCHS for disc in DISCS
    }
    plan = plan_training(options, speeds, clock.elapsed_s, report)
    steps = plan.steps
    report("   " + ", ".join(f"{k} {v * 1000:.0f} ms/step" for k, v in speeds.items())
           + f" -> {steps} steps per run, about {plan.seconds:.0f} s of training")
    clock.lap("sizing")

    name = f"quickstart-{time.strftime('%Y%m%d-%H%M%S')}"
    report(f"3/5 training: experiment {name}, {len(ARCHS) * len(DISCS)} runs, {options.parallel} at a time")
    table = load_price_table()
    launch(engine, plan_launch(spec_for(options, name, steps), Placement(), table), table, db_url)
    Worker(db_url, worker_options).run()
    clock.lap("training")

    report("4/5 evaluation: every run and the nearest / blend / dis / flow baselines on the test split")
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
    clock.lap("evaluation")

    report("5/5 video: interpolating a short synthetic clip to 2x with the best model")
    clip = output_dir / "clip-12fps.mp4"
    synth_clip(clip, options)
    best = next(row for row in rows if not row.is_baseline)
    video = interpolate_video(
        InterpolateRequest(input=clip, output=output_dir / "clip-24fps.mp4", factor=2.0),
        open_interpolator(engine, run=str(best.run_id)),
    )
    clock.lap("video")
    return QuickstartResult(
        experiment=name, dataset=DATASET, plan=plan, seconds_per_step=speeds, leaderboard=rows,
        evaluations=evaluations, video=video, clip=clip, registry_url=mask_url(db_url),
        tensorboard=tensorboard_dir(), phases=clock.phases,
    )


def synth_clip(path: Path, options: QuickstartOptions) -> None:
    """A 12 fps cartoon with a cut, held drawings and a tone: what a user would interpolate."""
    from afi.data.synth import generate_cartoon
    from afi.data.video import write_video

    config = SynthConfig(clips=2, frames_per_clip=24, width=options.size, height=options.size,
                         seed=options.seed + 1000, fps=12.0)
    write_video(path, generate_cartoon(config).frames, config.fps, tone_hz=440.0)
