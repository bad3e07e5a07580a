"""One evaluation protocol is ranked: training validation (centre crops) is stored under its own
split, the leaderboard ranks one split at a time and says which (SQLite and MariaDB)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine
from train_factories import make_dataset, new_run, tiny_config
from typer.testing import CliRunner

from afi.cli.main import app
from afi.train.service import start_run
from registry import evaluations as registry_evaluations
from registry.db import session_scope
from registry_factories import make_run

runner = CliRunner()


def afi(engine: Engine, *args: str):
    return runner.invoke(app, ["--db", engine.url.render_as_string(hide_password=False), *args])


def test_training_validation_is_its_own_split_never_ranked_by_default(engine: Engine, afi_home: Path) -> None:
    make_dataset(engine)
    run = start_run(engine, new_run(engine, tiny_config(steps=4)).id)
    with session_scope(engine) as s:
        splits = {e.split for e in registry_evaluations.list_evaluations(s, run.id)}
    assert splits == {"val-crop"}

    default = afi(engine, "leaderboard")
    assert default.exit_code == 0, default.output
    assert run.name not in default.stdout and "no evaluations on split test yet" in default.stdout
    training = afi(engine, "leaderboard", "--split", "val-crop")
    assert "split val-crop: centre crops" in training.stdout
    [row] = json.loads(afi(engine, "leaderboard", "--split", "val-crop", "--json").stdout)
    assert row["run"] == run.name and row["protocol"].startswith("centre crops")
    both = afi(engine, "leaderboard", "--all-splits", "--split", "val")
    assert both.exit_code == 2 and "not both" in both.output


def test_leaderboard_ranks_one_split_and_labels_a_mix(engine: Engine) -> None:
    model = make_run(engine, status="completed", arch="unet")
    baseline = make_run(engine, status="completed", arch="flow", kind="baseline")
    with session_scope(engine) as s:
        # Crops flatter the model by 11 dB: ranked beside full-frame scores it looked best.
        registry_evaluations.add_evaluations(s, model.id, {"psnr": 29.8}, split="val-crop")
        registry_evaluations.add_evaluations(s, model.id, {"psnr": 18.2}, split="test")
        registry_evaluations.add_evaluations(s, baseline.id, {"psnr": 18.75}, split="test")
    rows = json.loads(afi(engine, "leaderboard", "--json").stdout)
    assert [(r["run"], r["split"], r["psnr"]) for r in rows] == [
        (baseline.name, "test", 18.75), (model.name, "test", 18.2)
    ]
    text = afi(engine, "leaderboard").stdout
    assert "split test: full frames at native size (afi eval)" in text
    mixed = afi(engine, "leaderboard", "--all-splits", "--all")
    assert mixed.exit_code == 0 and "MIXED splits" in mixed.stdout
