"""`afi eval`: a run's checkpoint and the classical baselines scored on a dataset's test split,
recorded as evaluation rows the leaderboard ranks side by side (SQLite and MariaDB)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from typer.testing import CliRunner

from afi.cli.main import app
from afi.config import DataConfig, RunConfig, StageConfig, default_variant
from afi.data.importers import ImportOptions
from afi.data.service import synth_dataset
from afi.data.split import SplitConfig
from afi.data.synth import SynthConfig, generate_cartoon
from afi.data.video import write_video
from afi.evaluate import evaluate_run, file_stem
from afi.launch.runs import RunRequest, create_run
from afi.paths import runs_dir
from afi.train.checkpoint import checkpoint_path, save_checkpoint
from afi.train.device import setup_device
from afi.train.loop import Progress, StagePlan, build_parts, checkpoint_payload
from afi.video.engine import load_run_model
from registry import checkpoints as registry_checkpoints
from registry import datasets as registry_datasets
from registry import evaluations as registry_evaluations
from registry import runs as registry_runs
from registry.db import session_scope
from registry.leaderboard import LeaderboardQuery, leaderboard
from registry.records import RunRecord

DATASET = "toons"
runner = CliRunner()


def make_dataset(engine: Any) -> int:
    """Three 48x48 cartoon shots; one goes to test. Returns the number of test triplets."""
    options = ImportOptions(split=SplitConfig(val=0.0, test=0.34))
    synth_dataset(
        engine, DATASET, SynthConfig(clips=3, frames_per_clip=8, width=48, height=48, cadences=(1,)), options=options
    )
    with session_scope(engine) as s:
        dataset = registry_datasets.get_dataset(s, DATASET)
        return len(registry_datasets.list_triplets(s, dataset.id, split="test"))


def make_trained_run(engine: Any, step: int = 12) -> RunRecord:
    """A recorded run with a best checkpoint written by the trainer's own code (no steps taken:
    the generator is the blend baseline, its EMA copy nudged so the test can tell them apart)."""
    variant = replace(default_variant("unet"), width=8, depth=2)
    config = RunConfig(
        variant=variant, data=DataConfig(dataset=DATASET), stages=(StageConfig(width=32, height=32, steps=step),)
    ).validate()
    record = create_run(engine, RunRequest(config=config, name="tiny"))
    plan = StagePlan(config, 0, setup_device("fp32"))
    parts = build_parts(plan)
    with torch.no_grad():
        for parameter in parts.ema.module.parameters():
            parameter.add_(0.001)
    written = save_checkpoint(
        checkpoint_payload(plan, parts, Progress(step=step)),
        checkpoint_path(runs_dir() / str(record.id) / "checkpoints", step),
    )
    with session_scope(engine) as s:
        row = registry_checkpoints.add_checkpoint(
            s, record.id, step, str(written.path), written.size_bytes, written.sha256
        )
        registry_checkpoints.set_best(s, record.id, row.id)
    return record


def test_eval_records_the_model_and_the_baselines(engine: Any, afi_home: Path, tmp_path: Path) -> None:
    count = make_dataset(engine)
    run = make_trained_run(engine)
    predictions = tmp_path / "predictions"
    report = evaluate_run(engine, run.name, DATASET, split="test", save_predictions=predictions, baselines=True)

    assert [(s.kind, s.method) for s in report.scores] == [
        ("interp", "unet"),
        ("baseline", "nearest"),
        ("baseline", "blend"),
        ("baseline", "dis"),
        ("baseline", "flow"),
    ]
    assert all(s.triplets == count and s.recorded for s in report.scores)
    model, nearest, blend, dis, flow = report.scores
    assert {"psnr", "ssim", "lineart"} <= model.metrics.keys()
    assert blend.metrics["psnr"] > nearest.metrics["psnr"]
    assert model.step == 12

    with session_scope(engine) as s:
        dataset = registry_datasets.get_dataset(s, DATASET)
        best = registry_checkpoints.best_checkpoint(s, run.id)
        rows = registry_evaluations.list_evaluations(s, run.id)
        baselines = registry_runs.list_runs(s, kind="baseline")
        board = leaderboard(s, LeaderboardQuery(dataset=DATASET, split="test"))
    assert {r.metric for r in rows} >= {"psnr", "ssim", "lineart"}
    assert all(
        r.dataset_id == dataset.id and r.split == "test" and r.checkpoint_id == best.id and r.step == 12 for r in rows
    )
    assert sorted(b.arch for b in baselines) == ["blend", "dis", "flow", "nearest"]
    assert all(b.status == "completed" and b.dataset_id == dataset.id for b in baselines)
    assert sorted((row.arch, row.is_baseline) for row in board) == [
        ("blend", True),
        ("dis", True),
        ("flow", True),
        ("nearest", True),
        ("unet", False),
    ]

    with session_scope(engine) as s:
        keys = [t.key for t in registry_datasets.list_triplets(s, dataset.id, split="test")]
    assert sorted(p.name for p in predictions.glob("*.png")) == sorted(f"{file_stem(k)}.png" for k in keys)
    for method in ("nearest", "blend", "dis", "flow"):
        assert len(list((predictions / method).glob("*.png"))) == count

    again = evaluate_run(engine, run.id, DATASET, split="test", baselines=True)
    assert [s.recorded for s in again.scores] == [True, False, False, False, False]  # a baseline scores the same every time
    with session_scope(engine) as s:
        assert len(registry_runs.list_runs(s, kind="baseline")) == 4  # reused, not piled up
        assert len(registry_evaluations.list_evaluations(s, run.id)) == 2 * len(rows)
        for baseline in baselines:
            assert len(registry_evaluations.list_evaluations(s, baseline.id)) == len(nearest.metrics)


def test_the_ema_weights_are_the_ones_scored(engine: Any, afi_home: Path) -> None:
    make_dataset(engine)
    run = make_trained_run(engine)
    loaded = load_run_model(engine, run.name)
    with session_scope(engine) as s:
        best = registry_checkpoints.best_checkpoint(s, run.id)
    payload = torch.load(best.path, weights_only=True)
    name, value = next(iter(loaded.model.state_dict().items()))
    assert torch.equal(value, payload["ema"][f"module.{name}"])
    assert not torch.equal(value, payload["model"][name])


def afi(db_url: str, *args: str):
    return runner.invoke(app, ["--db", db_url, *args])


def test_eval_cli(db_url: str, engine: Any, afi_home: Path, tmp_path: Path) -> None:
    count = make_dataset(engine)
    run = make_trained_run(engine)
    result = afi(db_url, "eval", run.name, "--dataset", DATASET, "--baselines", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["split"] == "test" and len(report["scores"]) == 5
    assert all(score["triplets"] == count for score in report["scores"])
    table = afi(db_url, "eval", run.name, "--dataset", DATASET)
    assert table.exit_code == 0 and "psnr" in table.stdout

    missing = afi(db_url, "eval", run.name, "--dataset", "nope")
    assert missing.exit_code == 1 and len(missing.stderr.strip().splitlines()) == 1
    wrong = tmp_path / "isnet.pt"
    isnet = replace(default_variant("isnet"), width=8, depth=2)
    torch.save({"variant": isnet.to_dict(), "model": {}}, wrong)
    mismatch = afi(db_url, "eval", run.name, "--dataset", DATASET, "--checkpoint", str(wrong))
    assert mismatch.exit_code == 2, mismatch.output
    assert "holds variant isnet" in mismatch.stderr and len(mismatch.stderr.strip().splitlines()) == 1
    no_val = afi(db_url, "eval", run.name, "--dataset", DATASET, "--split", "val")
    assert no_val.exit_code == 2 and "no val triplets" in no_val.stderr


def test_interpolate_with_a_run(db_url: str, engine: Any, afi_home: Path, tmp_path: Path) -> None:
    """`afi interpolate --run` takes the run's best checkpoint, tiled at its training size (32 px)."""
    make_dataset(engine)
    run = make_trained_run(engine)
    source = tmp_path / "clip.mp4"
    write_video(source, generate_cartoon(SynthConfig(clips=1, frames_per_clip=6, width=64, height=48)).frames, 12.0)
    output = tmp_path / "clip-24.mp4"
    result = afi(db_url, "interpolate", str(source), "-o", str(output), "--run", run.name, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["output_frames"] == 12 and report["interpolator"] == "run tiny step 12"
    missing = afi(db_url, "interpolate", str(source), "-o", str(tmp_path / "x.mp4"), "--run", "nope")
    assert missing.exit_code == 1 and "nope" in missing.stderr
