"""`afi run create --start`, `afi run start` and `afi tensorboard` through the real CLI."""

from __future__ import annotations

import json

import torch
from typer.testing import CliRunner

from afi.cli.main import app
from registry_factories import make_dataset_row
from train_factories import DATASET, make_dataset

runner = CliRunner()


def afi(url: str, *args: str):
    return runner.invoke(app, ["--db", url, *args])


def one_line_error(result, code: int, fragment: str) -> None:
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and fragment in lines[0], result.stderr


def test_create_start_trains_logs_to_tensorboard_and_refuses_a_second_start(engine, afi_home):
    torch.set_num_threads(1)
    make_dataset(engine)
    url = engine.url.render_as_string(hide_password=False)
    created = afi(
        url,
        "run",
        "create",
        "--dataset",
        DATASET,
        "--res",
        "32",
        "--steps",
        "3",
        "--batch",
        "2",
        "--width",
        "8",
        "--depth",
        "2",
        "--start",
        "--json",
    )
    assert created.exit_code == 0, created.output
    record = json.loads(created.stdout)
    assert (record["status"], record["step"]) == ("completed", 3)
    assert list((afi_home / "tb" / str(record["id"])).glob("events.out.tfevents.*"))

    shown = json.loads(afi(url, "run", "show", str(record["id"]), "--json").stdout)
    assert {"val/psnr", "loss/G/total"} <= {m["key"] for m in shown["metrics"]}
    assert [c["is_best"] for c in shown["checkpoints"]] == [True]
    assert {e["metric"] for e in shown["evaluations"]} >= {"psnr", "ssim", "lineart"}

    one_line_error(
        afi(url, "run", "start", str(record["id"])), 2, "is completed: nothing left to train"
    )


def test_bad_start_requests_are_one_line_errors(engine, afi_home):
    url = engine.url.render_as_string(hide_password=False)
    one_line_error(
        afi(url, "run", "create", "--start", "--queue"), 2, "--start trains the run here"
    )
    one_line_error(afi(url, "run", "create", "--width", "8", "--depth", "2"), 2, "no dataset registered")
    make_dataset_row(engine)  # a dataset of no frames: enough to record a run
    run_id = afi(url, "run", "create", "--width", "8", "--depth", "2").stdout.strip().splitlines()[-1]
    assert (
        json.loads(afi(url, "run", "show", run_id, "--json").stdout)["run"]["status"] == "created"
    )
    one_line_error(afi(url, "tensorboard", "--run", run_id), 2, "no TensorBoard logs")


def test_create_with_minutes_trains_to_its_deadline_and_records_the_steps(engine, afi_home):
    torch.set_num_threads(1)
    make_dataset(engine)
    url = engine.url.render_as_string(hide_password=False)
    tiny = ["--dataset", DATASET, "--res", "32", "--batch", "2", "--width", "8", "--depth", "2"]
    created = afi(url, "run", "create", *tiny, "--minutes", "0.03", "--start", "--json")
    assert created.exit_code == 0, created.output
    record = json.loads(created.stdout)
    assert record["status"] == "completed" and 1 <= record["step"] == record["total_steps"]
    stage = record["config"]["stages"][0]
    assert stage["minutes"] == 0.03 and stage["steps"] > record["step"]  # no step cap given
    shown = json.loads(afi(url, "run", "show", str(record["id"]), "--json").stdout)
    assert f"{record['step']} steps" in shown["run"]["message"]
    assert [c["step"] for c in shown["checkpoints"]] == [record["step"]]

    capped = json.loads(afi(url, "run", "create", "--minutes", "5", "--steps", "7", "--json").stdout)
    assert capped["config"]["stages"][0] == {**capped["config"]["stages"][0], "steps": 7, "minutes": 5}
    one_line_error(afi(url, "run", "create", "--minutes", "0"), 2, "minutes must be positive")
