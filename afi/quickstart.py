"""`afi quickstart`: the whole idea, end to end, on a laptop CPU within a time budget.

Synthesise a cartoon dataset, launch a small ablation (DIS-flow-guided U-Net vs IS-Net, each with and
without a discriminator) through the same experiment + worker path as real runs, evaluate every run and the
classical baselines on the held-out split, rank them, and interpolate a short clip to 2x.

Every run gets the same share of the budget as a time budget of its own (a fair ablation: the
same time per variant; the steps each reached are shown beside its scores), which its trainer keeps
however busy the machine is (afi.train.pace). What is not training is reserved in measured time:
the baselines are scored first, and the evaluation, the video and each run's set-up and final
validation get multiples of what that took on this machine, now.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from afi.config import BUDGET_ONLY_STEPS, DataConfig, RunConfig, StageConfig, default_variant
from afi.data.importers import ImportOptions
from afi.data.service import synth_dataset
from afi.data.split import SplitConfig
from afi.data.synth import SynthConfig
from afi.errors import AfiError, UsageError
from afi.evaluate import EvaluationReport, baseline_run, evaluate_run
from afi.launch.experiments import Placement, launch, plan_launch
from afi.launch.pricing import load_price_table
from afi.launch.spec import parse_spec
from afi.launch.worker import Worker, WorkerOptions
from afi.paths import afi_home, tensorboard_dir
from afi.video.engine import open_interpolator
from afi.video.interpolate import InterpolateRequest, InterpolateResult, interpolate_video
from registry import datasets as registry_datasets
from registry import leaderboard as registry_leaderboard
from registry import runs as registry_runs
from registry.db import mask_url, session_scope
from registry.errors import NotFound
from registry.records import LeaderboardRow

# Every run trains for the same time, so the queue order no longer decides when the job ends.
ARCHS = ("unet", "isnet")
DISCS = ("patchgan", "none")
RUNS = len(ARCHS) * len(DISCS)
# DIS-guided backbones: in the minutes of CPU training a quickstart run gets, a backbone without
# flow stays at the blend it starts from (measured on this data, test split, blend 26.07 dB:
# +0.001 dB after 150 steps) and a learned IFNet gets to 27.99 dB, while a DIS-guided one starts at
# the DIS flow baseline (31.75 dB) and learns occlusions and a residual on top of it. `dis+refine`
# is not used yet: at this budget and learning rate its four models ended 0.31-0.65 dB below
# `flow` (bench.quickstart --minutes 10, 463-587 steps), where `dis` models end within 0.05 dB.
FLOW = "dis"
DATASET = "quickstart-toons"
EVAL_SPLIT = "test"
# What is not training, in units of the time the baselines took to score (measured first, on this
# machine as it is now). The shares are means over bench/quickstart.py --minutes 3 runs on a 2-core
# machine shared with other jobs, which print planned against actual for every phase.
RUN_OVERHEAD_SHARE = 2.7  # per run: process start, set-up, final validation, checkpoint, images
EVALUATION_SHARE = 1.2  # per run: scoring its best checkpoint on the test split
VIDEO_SHARE = 1.5  # interpolating the 2x clip with the best model
MIN_RUN_S = 10.0  # the least training a run gets, even past the budget
WARMUP_STEPS = 10  # of the learning rate
ADV_WARMUP_STEPS = 40  # of reconstruction only, before a discriminator trains
LOG_EVERY = 5

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
    run_seconds: float  # each run's time budget
    seconds: float  # expected wall time of the training phase: its waves of runs, overheads included
    evaluation_seconds: float  # reserved for scoring the runs
    video_seconds: float  # reserved for the clip


@dataclass(frozen=True)
class QuickstartResult:
    experiment: str
    dataset: str
    plan: TrainingPlan
    steps: dict[str, int]  # run name -> the steps its time budget reached
    leaderboard: list[LeaderboardRow]
    evaluations: list[EvaluationReport]
    video: InterpolateResult
    clip: Path
    registry_url: str
    tensorboard: Path
    phases: dict[str, float]  # wall seconds per phase: start-up, data, baselines, training, evaluation, video

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


def base_config(options: QuickstartOptions, run_seconds: float) -> RunConfig:
    """The ablation's base run: as many steps as `run_seconds` of training afford."""
    stage = StageConfig(
        width=options.size, height=options.size, steps=BUDGET_ONLY_STEPS, batch=options.batch,
        lr=2e-3, warmup_steps=WARMUP_STEPS, minutes=run_seconds / 60.0,
    )
    # Short runs: validate, checkpoint and draw images once, at the end (each costs seconds on a
    # CPU). The EMA's warm-up (afi.train.ema) keeps its horizon at about a tenth of the steps so
    # far, so the evaluated weights are recent whatever the budget affords.
    return RunConfig(
        variant=replace(default_variant("unet", FLOW), width=options.width, depth=options.depth),
        data=DataConfig(dataset=DATASET, val_limit=16),
        stages=(stage,),
        seed=options.seed,
        val_every=BUDGET_ONLY_STEPS,
        ckpt_every=BUDGET_ONLY_STEPS,
        log_every=LOG_EVERY,
        image_every=BUDGET_ONLY_STEPS,
        keep_last=1,
        adv_warmup_steps=ADV_WARMUP_STEPS,
    ).validate()


def spec_for(options: QuickstartOptions, name: str, run_seconds: float) -> Any:
    raw = {
        "experiment": {"name": name, "kind": "ablation",
                       "description": "quickstart: DIS-guided unet vs isnet, with and without a PatchGAN"},
        **base_config(options, run_seconds).to_dict(),
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
    options: QuickstartOptions, baselines_s: float, elapsed_s: float, report: Report
) -> TrainingPlan:
    """Each run's time budget, the same for every run: the runs go in waves of `parallel`, and
    what the budget leaves after `elapsed_s` and the reserves (in multiples of `baselines_s`, the
    time the baselines took to score) is shared among the waves. Never under MIN_RUN_S, saying
    so when the budget is too short for it on this machine."""
    waves = math.ceil(RUNS / options.parallel)
    overhead_s = RUN_OVERHEAD_SHARE * baselines_s
    evaluation_s = EVALUATION_SHARE * baselines_s * RUNS
    video_s = VIDEO_SHARE * baselines_s
    left_s = options.budget_s - elapsed_s - evaluation_s - video_s
    run_s = left_s / waves - overhead_s
    if run_s < MIN_RUN_S:
        report(f"   --minutes {options.minutes:g} is too short on this machine for {MIN_RUN_S:g} s of "
               f"training per run: training {MIN_RUN_S:g} s anyway, so expect to overrun")
        run_s = MIN_RUN_S
    return TrainingPlan(run_seconds=run_s, seconds=waves * (run_s + overhead_s),
                        evaluation_seconds=evaluation_s, video_seconds=video_s)


def score_baselines(engine: Any, options: QuickstartOptions) -> float:
    """Score nearest, blend, dis and flow on the test split (recorded once: later runs reuse the
    rows) and return how long that takes on this machine now: the median batch's time times the
    batches, so that another process's burst during one batch does not move the whole plan."""
    with session_scope(engine) as session:
        dataset = registry_datasets.get_dataset(session, DATASET)
        blend = baseline_run(session, "blend", dataset, (options.size, options.size))
    marks = [time.perf_counter()]
    evaluate_run(engine, blend.id, DATASET, EVAL_SPLIT, baselines=True,
                 progress=lambda _phase, _done, _total: marks.append(time.perf_counter()))
    batches = [end - start for start, end in zip(marks, marks[1:])]
    return statistics.median(batches) * len(batches)


class PhaseClock:
    """Wall seconds per phase, in the order they ran."""

    def __init__(self, started: float | None = None) -> None:
        self.phases: dict[str, float] = {}
        self._started = time.perf_counter() if started is None else started

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.phases[phase] = now - self._started
        self._started = now

    @property
    def elapsed_s(self) -> float:
        return sum(self.phases.values()) + time.perf_counter() - self._started


def run_quickstart(engine: Any, db_url: str, options: QuickstartOptions, report: Report,
                   output_dir: Path | None = None, started: float | None = None) -> QuickstartResult:
    """The whole job; `started`: `time.perf_counter()` when it began (before the imports and the
    registry's set-up, which count against the budget: on a busy machine, seconds)."""
    options = options.validate()
    clock = PhaseClock(started)
    clock.lap("start-up")
    output_dir = output_dir or afi_home() / "quickstart"
    output_dir.mkdir(parents=True, exist_ok=True)
    # closing_evaluation off: step 4 below scores the runs and baselines itself, and times it.
    worker_options = WorkerOptions(max_parallel=options.parallel, mode="until-empty", poll_s=1.0,
                                   stale_after_s=60.0, closing_evaluation=False)
    # Score the baselines on the threads each run will get: their time measures the machine.
    torch.set_num_threads(worker_options.threads_per_run)

    report("1/5 data: synthesising cartoons")
    ensure_dataset(engine, options, report)
    clock.lap("data")

    report("2/5 baselines: nearest / blend / dis / flow on the test split (timed: the plan's unit)")
    baselines_s = score_baselines(engine, options)
    plan = plan_training(options, baselines_s, clock.elapsed_s, report)
    report(f"   {baselines_s:.1f} s -> {plan.run_seconds:.0f} s of training per run, about "
           f"{plan.seconds:.0f} s in all; {plan.evaluation_seconds + plan.video_seconds:.0f} s kept "
           "for evaluation and the video")
    clock.lap("baselines")

    name = f"quickstart-{time.strftime('%Y%m%d-%H%M%S')}"
    report(f"3/5 training: experiment {name}, {RUNS} runs of {plan.run_seconds:.0f} s each, "
           f"{options.parallel} at a time")
    table = load_price_table()
    launch(engine, plan_launch(spec_for(options, name, plan.run_seconds), Placement(), table), table, db_url)
    Worker(db_url, worker_options).run()
    clock.lap("training")

    report("4/5 evaluation: every run on the test split, beside the baselines")
    with session_scope(engine) as session:
        runs_done = registry_runs.list_runs(session, experiment=name)
    unfinished = [f"{r.name} ({r.status}: {r.message})" for r in runs_done if r.status != "completed"]
    if unfinished:
        raise AfiError(f"quickstart runs did not complete: {'; '.join(unfinished)}")
    evaluations = [evaluate_run(engine, run.id, DATASET, EVAL_SPLIT)
                   for run in sorted(runs_done, key=lambda r: r.id)]
    steps = {run.name: run.step for run in runs_done}
    for evaluation in evaluations:
        score = evaluation.scores[0]
        report(f"   {score.run}: {steps[score.run]} steps, PSNR {score.metrics['psnr']:.2f} dB")
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
        experiment=name, dataset=DATASET, plan=plan, steps=steps, leaderboard=rows,
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
