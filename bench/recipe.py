"""Does a training recipe beat the classical baselines, on its own data and off it?

    .venv/bin/python -m bench.recipe [--minutes 60 | --steps N] [--spec experiments/recipe-cpu.toml]
        [--set key=value ...] [--home DIR] [--motion hard] [--clips 48] [--max-gap 2]

In a fresh AFI_HOME (embedded SQLite; `--home` to keep it), synthesises the training set (cel
cartoons at 128 px, `--motion` hard by default), records the spec's runs through the experiment
launch path and trains them one after another (`afi.train.service.start_run`), then scores each
run's best checkpoint and every baseline (nearest, blend, dis, flow) with `afi.evaluate.evaluate_run`
at full frame size, never crops, on three sets:

  (a) the test split of the training set,
  (b) cel cartoons with another seed and hard motion that no run saw (256x144 by default),
  (c) the painted generator (pans over painted artwork, vector animation; 480x270 by default),
      made by code that shares nothing with the training generator but the clip timing.

It prints one table per set: PSNR, SSIM and chamfer line distance (lineart, lower is better) over
all triplets and over the moving half (triplets where blend scores under 40 dB), and each model
minus the best classical baseline. `--minutes` is the training budget: the step count comes from
the measured speed of the first run's steps on this machine, shared evenly over the runs (and
stages); `--steps` sets it directly. Generation and evaluation are timed and not in the budget.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TRAIN_SET = "recipe-train"
UNSEEN_SET = "recipe-unseen"
PAINTED_SET = "recipe-painted"
METRICS = ("psnr", "ssim", "lineart")
LOWER_IS_BETTER = frozenset({"lineart"})
MOVING_BELOW_DB = 40.0  # a triplet blend scores this well on barely moves
BASELINES = ("nearest", "blend", "dis", "flow")


@dataclass(frozen=True)
class DataPlan:
    """The three sets the bench makes; sizes as (width, height)."""

    motion: str = "hard"  # of the training set; (b) is always hard
    clips: int = 48
    frames: int = 24
    train_size: int = 128
    max_gap: int = 2
    eval_clips: int = 8
    unseen_size: tuple[int, int] = (256, 144)
    painted_size: tuple[int, int] = (480, 270)
    seed: int = 0


@dataclass(frozen=True)
class EvalSet:
    label: str
    dataset: str
    split: str
    generate_s: float  # synthesis and import


@dataclass(frozen=True)
class MethodRow:
    method: str  # a run's name, or a baseline's
    is_model: bool
    all: dict[str, float]
    moving: dict[str, float]  # empty when no triplet moves


@dataclass(frozen=True)
class SetReport:
    eval_set: EvalSet
    size: tuple[int, int]
    triplets: int
    moving: int
    rows: tuple[MethodRow, ...]
    # evaluate_run's own means (all triplets) per method, to check the per-triplet scores against
    recorded: dict[str, dict[str, float]] = field(default_factory=dict)

    def best_baseline(self, metric: str, subset: str) -> tuple[str, float] | None:
        scored = [(r.method, getattr(r, subset)[metric]) for r in self.rows
                  if not r.is_model and metric in getattr(r, subset)]
        if not scored:
            return None
        pick = min if metric in LOWER_IS_BETTER else max
        return pick(scored, key=lambda pair: pair[1])


def synth_sets(engine: Any, plan: DataPlan, report: Any = print) -> list[EvalSet]:
    """Make the training set and the two unseen sets; each timed."""
    from afi.data.importers import ImportOptions
    from afi.data.service import synth_dataset
    from afi.data.split import SplitConfig
    from afi.data.synth import SynthConfig

    # Unseen sets are all test (0.99 of a few dozen shots rounds to all of them).
    held_out = ImportOptions(split=SplitConfig(val=0.0, test=0.99, seed=plan.seed))
    sets = [
        ("(a) test split of the training set", TRAIN_SET, "test",
         SynthConfig(clips=plan.clips, frames_per_clip=plan.frames, width=plan.train_size,
                     height=plan.train_size, seed=plan.seed, motion=plan.motion),
         ImportOptions(max_gap=plan.max_gap, split=SplitConfig(val=0.1, test=0.2, seed=plan.seed))),
        ("(b) unseen cel, hard motion, other seed", UNSEEN_SET, "test",
         SynthConfig(clips=plan.eval_clips, frames_per_clip=plan.frames, width=plan.unseen_size[0],
                     height=plan.unseen_size[1], seed=plan.seed + 1000, motion="hard"),
         held_out),
        ("(c) painted artwork and vector animation", PAINTED_SET, "test",
         SynthConfig(clips=plan.eval_clips, frames_per_clip=plan.frames, width=plan.painted_size[0],
                     height=plan.painted_size[1], seed=plan.seed + 2000, style="painted"),
         held_out),
    ]
    made = []
    for label, name, split, config, options in sets:
        started = time.perf_counter()
        record = synth_dataset(engine, name, config, options=options).record
        seconds = time.perf_counter() - started
        report(f"{name}: {record.triplet_count} triplets from {record.shot_count} shots at "
               f"{record.width}x{record.height} ({record.split_counts}) in {seconds:.1f} s")
        made.append(EvalSet(label, name, split, seconds))
    return made


def load_recipe(
    spec: Path, overrides: Sequence[tuple[str, Any]], steps: int | None, minutes: float | None = None
) -> Any:
    """The spec with the bench's training set set on every run, and `steps` (each stage's count)
    or `minutes` (the whole training budget, shared evenly by its runs and their stages, each a
    time-budgeted stage with no step cap) when given."""
    from afi.config import BUDGET_ONLY_STEPS
    from afi.launch.spec import load_spec

    forced: list[tuple[str, Any]] = [("data.dataset", TRAIN_SET)]
    if steps is not None:
        forced.append(("stage.steps", steps))
    name = f"{spec.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    loaded = load_spec(spec, overrides=[*overrides, *forced], name=name)
    if minutes is None:
        return loaded
    runs = loaded.expand()
    share = minutes / (len(runs) * len(runs[0].config.stages))
    forced += [("stage.minutes", share), ("stage.steps", BUDGET_ONLY_STEPS)]
    return load_spec(spec, overrides=[*overrides, *forced], name=name)


def train_runs(engine: Any, db_url: str, spec: Any, report: Any = print) -> list[Any]:
    """Queue the spec's runs through the launch path, then train each here; completed records."""
    from afi.errors import AfiError
    from afi.launch.experiments import Placement, launch, plan_launch
    from afi.launch.pricing import load_price_table
    from afi.train.service import start_run

    table = load_price_table()
    launched = launch(engine, plan_launch(spec, Placement(), table), table, db_url)
    trained = []
    for run in launched.runs:
        started = time.perf_counter()
        record = start_run(engine, run.id)
        if record.status != "completed":
            raise AfiError(f"run {record.name} ended {record.status}: {record.message}")
        report(f"trained {record.name}: {record.step} steps in {time.perf_counter() - started:.0f} s")
        trained.append(record)
    return trained


def _read_prediction(path: Path) -> Any:
    import cv2
    import torch

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"evaluate_run wrote no prediction {path}")
    return torch.from_numpy(image[..., ::-1].copy()).permute(2, 0, 1).float().div_(255)


def _mean(scores: Sequence[dict[str, float]]) -> dict[str, float]:
    if not scores:
        return {}
    return {m: math.fsum(s[m] for s in scores) / len(scores) for m in METRICS}


def evaluate_set(engine: Any, runs: Sequence[Any], eval_set: EvalSet, work: Path) -> SetReport:
    """Every run (best checkpoint) and every baseline on one set, per triplet, via evaluate_run's
    saved predictions; means over all triplets and over the moving ones."""
    from afi.data.service import open_split
    from afi.evaluate import evaluate_run, file_stem
    from afi.metrics import chamfer_line_distance, psnr, ssim

    scorers = {"psnr": psnr, "ssim": ssim, "lineart": chamfer_line_distance}

    folders: dict[str, tuple[Path, bool]] = {}
    recorded: dict[str, dict[str, float]] = {}
    for index, run in enumerate(runs):
        folder = work / f"{eval_set.dataset}-run{run.id}"
        shutil.rmtree(folder, ignore_errors=True)
        result = evaluate_run(engine, run.id, eval_set.dataset, eval_set.split,
                              save_predictions=folder, baselines=index == 0)
        for score in result.scores:
            recorded[score.run if score.kind != "baseline" else score.method] = score.metrics
        folders[run.name] = (folder, True)
        if index == 0:
            folders.update({method: (folder / method, False) for method in BASELINES})
    triplets = open_split(engine, eval_set.dataset, eval_set.split)
    per_triplet: dict[str, list[dict[str, float]]] = {name: [] for name in folders}
    for index in range(len(triplets)):
        item = triplets[index]
        truth = item["frame1"][None]  # (1, 3, H, W)
        for name, (folder, _) in folders.items():
            predicted = _read_prediction(folder / f"{file_stem(item['key'])}.png")[None]
            per_triplet[name].append({m: float(scorers[m](predicted, truth)[0]) for m in METRICS})
    moving = [i for i, s in enumerate(per_triplet["blend"]) if s["psnr"] < MOVING_BELOW_DB]
    rows = tuple(
        MethodRow(name, is_model, _mean(per_triplet[name]),
                  _mean([per_triplet[name][i] for i in moving]))
        for name, (_, is_model) in folders.items()
    )
    first = triplets[0]["frame1"]
    size = (int(first.shape[2]), int(first.shape[1]))
    return SetReport(eval_set, size, len(triplets), len(moving), rows, recorded)


def format_report(report: SetReport) -> str:
    """One table: a row per method, all triplets then the moving half; then model - best."""
    s = report.eval_set
    lines = [
        f"\n{s.label}: {s.dataset}/{s.split}, {report.triplets} triplets at "
        f"{report.size[0]}x{report.size[1]} (full frames), {report.moving} moving "
        f"(blend < {MOVING_BELOW_DB:g} dB); generated in {s.generate_s:.1f} s",
        f"{'method':<36}{'PSNR':>8}{'SSIM':>8}{'lineart':>9} |{'PSNR':>8}{'SSIM':>8}{'lineart':>9}",
        f"{'':<36}{'all triplets':>25} |{'moving half':>25}",
    ]

    def cells(values: dict[str, float]) -> str:
        if not values:
            return f"{'-':>8}{'-':>8}{'-':>9}"
        return f"{values['psnr']:>8.2f}{values['ssim']:>8.4f}{values['lineart']:>9.4f}"

    for row in report.rows:
        name = row.method if row.is_model else f"{row.method} (baseline)"
        lines.append(f"{name:<36}{cells(row.all)} |{cells(row.moving)}")
    for row in (r for r in report.rows if r.is_model):
        parts = []
        for subset in ("all", "moving"):
            for metric in ("psnr", "lineart"):
                best = report.best_baseline(metric, subset)
                if best is None or metric not in getattr(row, subset):
                    continue
                delta = getattr(row, subset)[metric] - best[1]
                parts.append(f"{metric} {subset} {delta:+.{2 if metric == 'psnr' else 4}f} (vs {best[0]})")
        lines.append(f"{row.method} minus the best baseline: " + ", ".join(parts))
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, default=60.0, help="Training budget (default 60).")
    budget.add_argument("--steps", type=int, help="Steps per run and stage, instead of a budget.")
    parser.add_argument("--spec", type=Path, default=Path("experiments/recipe-cpu.toml"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="Override a spec field, as `afi experiment launch --set` (repeatable).")
    parser.add_argument("--home", type=Path, help="Use and keep this AFI_HOME (default: a temporary one).")
    parser.add_argument("--motion", default="hard", help="Training set motion: easy | medium | hard.")
    parser.add_argument("--clips", type=int, default=DataPlan.clips, help="Training set clips.")
    parser.add_argument("--max-gap", type=int, default=DataPlan.max_gap,
                        help="Training triplets with ends up to this many drawings apart (t != 0.5).")
    parser.add_argument("--eval-clips", type=int, default=DataPlan.eval_clips)
    parser.add_argument("--unseen-size", default="256x144", help="Size of set (b).")
    parser.add_argument("--painted-size", default="480x270", help="Size of set (c).")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="afi-bench-recipe-")) if args.home is None else args.home
    os.environ["AFI_HOME"] = str(home)
    os.environ.pop("AFI_DB_URL", None)
    from afi.config import parse_resolution
    from afi.db import open_registry
    from afi.errors import AfiError
    from afi.launch.spec import parse_set
    from registry.db import resolve_url

    engine = open_registry(None)
    try:
        plan = DataPlan(clips=args.clips, motion=args.motion, max_gap=args.max_gap,
                        eval_clips=args.eval_clips, unseen_size=parse_resolution(args.unseen_size),
                        painted_size=parse_resolution(args.painted_size))
        overrides = parse_set(args.set)
        load_recipe(args.spec, overrides, args.steps)  # a bad spec fails before data is made
        sets = synth_sets(engine, plan)
        minutes = None if args.steps is not None else args.minutes
        started = time.perf_counter()
        runs = train_runs(engine, resolve_url(), load_recipe(args.spec, overrides, args.steps, minutes))
        for run in runs:
            print(f"{run.name}: {run.step} steps")
        print(f"training: {time.perf_counter() - started:.0f} s")
        for eval_set in sets:
            started = time.perf_counter()
            report = evaluate_set(engine, runs, eval_set, home / "recipe-predictions")
            print(format_report(report))
            print(f"evaluated in {time.perf_counter() - started:.0f} s")
    except AfiError as exc:
        sys.exit(f"error: {exc}")
    finally:
        engine.dispose()
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
