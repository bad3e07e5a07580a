"""Local workers: two drain an ablation, each run completes once, the leaderboard groups it by
grid key; a worker SIGKILLed mid-run leaves a stale run that another worker resumes to the end."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from afi.cli.main import app
from afi.errors import UsageError
from afi.launch.worker import WorkerOptions
from launch_factories import (
    EXPERIMENTS, STALL_S, TINY, afi_process, communicate_while_progressing, set_args, tiny_dataset,
)
from registry import checkpoints as registry_checkpoints
from registry import runs as registry_runs
from registry.db import session_scope
from registry.schema import SqlEvaluation, SqlMetric

runner = CliRunner()
# No wall-clock limit: a loaded machine makes these minutes long. A stuck worker still fails
# them, through communicate_while_progressing's STALL_S without registry progress.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(0)]


def afi(db_url: str, *args: str):
    return runner.invoke(app, ["--db", db_url, *args])


def url_of(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def finish(process, engine: Engine) -> dict:
    [(out, err)] = communicate_while_progressing([process], engine)
    assert process.returncode == 0, err
    return json.loads(out)


def test_two_workers_drain_the_ablation_grid(engine: Engine, afi_home: Path) -> None:
    url = url_of(engine)
    tiny_dataset(engine, test=0.33)
    launched = afi(url, "experiment", "launch", str(EXPERIMENTS / "ablation-arch.toml"),
                   *set_args([*TINY, "stage.steps=2"]), "--json")
    assert launched.exit_code == 0, launched.output
    runs = json.loads(launched.stdout)["runs"]
    assert len(runs) == 6 and {r["status"] for r in runs} == {"queued"}
    assert {(r["arch"], r["disc"]) for r in runs} == {
        (a, d) for a in ("unet", "isnet") for d in ("none", "patchgan", "sn-resnet-sa")
    }
    # A three-stage curriculum shares the queue: its later stages are runs its worker creates.
    curriculum = afi(url, "experiment", "launch", str(EXPERIMENTS / "curriculum.toml"),
                     *set_args([*TINY, "stage.steps=2"]), "--json")
    assert curriculum.exit_code == 0, curriculum.output

    workers = [
        afi_process(url, afi_home, "worker", "--until-empty", "--poll", "0.5", "--stale-after", "30", "--json")
        for _ in range(2)
    ]
    outputs = communicate_while_progressing(workers, engine)
    # The workers' logs, with any training process's traceback: what a failed run below died of.
    logs = "\n".join(err[-4000:] for _, err in outputs)
    assert all(worker.returncode == 0 for worker in workers), logs
    reports = [json.loads(out) for out, _ in outputs]
    # Off a terminal, each run's training shows in the log as lines: step, loss, speed, ETA.
    assert "samples/s  eta " in logs and ": completed at step 2/2 after " in logs
    trained = [outcome["run_id"] for report in reports for outcome in report["runs"]]
    first_stage = json.loads(curriculum.stdout)["runs"][0]["id"]
    assert sorted(trained) == sorted([r["id"] for r in runs] + [first_stage])  # each once, by one
    assert all(report["runs"] for report in reports)  # both workers took a share
    with session_scope(engine) as s:
        stages = sorted(registry_runs.list_runs(s, experiment="curriculum"), key=lambda r: r.stage)
    assert [(r.stage, r.status) for r in stages] == [(0, "completed"), (1, "completed"), (2, "completed")]
    assert [r.parent_run_id for r in stages] == [None, stages[0].id, stages[1].id]

    with session_scope(engine) as s:
        records = registry_runs.list_runs(s, experiment="ablation-arch")
    assert {(r.status, r.attempt) for r in records} == {("completed", 1)}, (
        [(r.name, r.status, r.message) for r in records if r.status != "completed"], logs
    )
    assert {r.accelerator for r in records} == {"local:1"}

    shown = afi(url, "experiment", "show", "ablation-arch", "--json")
    assert shown.exit_code == 0, shown.output
    details = json.loads(shown.stdout)
    assert details["progress"]["by_status"] == {"completed": 6}
    # The experiment ended with a test evaluation of its runs and the baselines, by afi eval's
    # protocol; training validation (centre crops) is a board of its own, never ranked beside it.
    test, training = details["leaderboards"]
    assert (test["split"], training["split"]) == ("test", "val-crop")
    assert sorted(r["kind"] for r in test["rows"]) == ["baseline"] * 4 + ["interp"] * 6
    assert {r["arch"] for r in test["rows"] if r["kind"] == "baseline"} == {"nearest", "blend", "dis", "flow"}
    assert [r["kind"] for r in training["rows"]] == ["interp"] * 6
    assert details["groups_split"] == "test"
    groups = {(g["key"], g["value"]): g for g in details["groups"]}
    assert set(groups) == {("arch", "unet"), ("arch", "isnet"), ("disc", "none"),
                           ("disc", "patchgan"), ("disc", "sn-resnet-sa")}
    assert [groups[("arch", a)]["evaluated"] for a in ("unet", "isnet")] == [3, 3]
    assert [groups[("disc", d)]["evaluated"] for d in ("none", "patchgan", "sn-resnet-sa")] == [2, 2, 2]
    assert all(g["best_psnr"] is not None for g in groups.values())
    text = afi(url, "experiment", "show", "ablation-arch").stdout
    assert "leaderboard by psnr, split test: full frames at native size" in text
    assert "split val-crop: centre crops" in text


def test_killed_worker_run_is_requeued_and_resumed_without_duplicates(
    engine: Engine, afi_home: Path, tmp_path: Path
) -> None:
    url = url_of(engine)
    tiny_dataset(engine)
    spec = tmp_path / "long.toml"
    spec.write_text("[[stages]]\nsteps = 60\n")
    launched = afi(url, "experiment", "launch", str(spec),
                   *set_args([*TINY, "val_every=10", "ckpt_every=10"]), "--json")
    assert launched.exit_code == 0, launched.output
    run_id = json.loads(launched.stdout)["runs"][0]["id"]

    worker = ("worker", "--poll", "0.5", "--stale-after", "5")
    doomed = afi_process(url, afi_home, *worker, "--once")
    wait_for(lambda: _run(engine, run_id).status == "running", doomed)
    # Started now, the rescuer finds nothing queued and waits for the running run to end.
    rescuer = afi_process(url, afi_home, *worker, "--until-empty", "--json")
    wait_for(lambda: _checkpoint_steps(engine, run_id), doomed)  # mid-run: a checkpoint is written
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.communicate()
    killed = _run(engine, run_id)
    assert killed.status == "running" and 0 < killed.step < 60  # nobody told the registry

    report = finish(rescuer, engine)
    assert report["requeued"] == [run_id]
    assert [o["run_id"] for o in report["runs"]] == [run_id]
    with session_scope(engine) as s:
        run = registry_runs.get_run(s, run_id)
        loss_steps = s.scalars(
            select(SqlMetric.step).where(SqlMetric.run_id == run_id, SqlMetric.key == "loss/G/total")
        ).all()
        duplicates = s.scalar(
            select(func.count()).select_from(
                select(SqlEvaluation.metric, SqlEvaluation.step)
                .where(SqlEvaluation.run_id == run_id)
                .group_by(SqlEvaluation.metric, SqlEvaluation.step)
                .having(func.count() > 1)
                .subquery()
            )
        )
    assert (run.status, run.attempt, run.step) == ("completed", 2, 60)
    assert sorted(loss_steps) == list(range(1, 61))  # each step logged once, replays included
    assert duplicates == 0
    assert run.gpu_hours > 0  # both attempts accrued their time


def test_worker_stopped_with_sigterm_requeues_its_run(
    engine: Engine, afi_home: Path, tmp_path: Path
) -> None:
    url = url_of(engine)
    tiny_dataset(engine)
    spec = tmp_path / "long.toml"
    spec.write_text("[[stages]]\nsteps = 100000\n")
    launched = afi(url, "experiment", "launch", str(spec),
                   *set_args([*TINY, "val_every=1000"]), "--json")
    assert launched.exit_code == 0, launched.output
    run_id = json.loads(launched.stdout)["runs"][0]["id"]

    worker = afi_process(url, afi_home, "worker", "--once", "--poll", "0.5", "--stale-after", "5")
    wait_for(lambda: _checkpoint_steps(engine, run_id), worker)  # mid-run: training steps
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=STALL_S)
    assert worker.returncode == 0, err
    assert "could not requeue" not in err
    run = _run(engine, run_id)
    assert (run.status, run.attempt) == ("queued", 1)  # the trainer's preempted, then queued


def wait_for(condition, process, timeout: float = STALL_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _run(engine: Engine, run_id: int):
    with session_scope(engine) as s:
        return registry_runs.get_run(s, run_id)


def _checkpoint_steps(engine: Engine, run_id: int) -> list[int]:
    with session_scope(engine) as s:
        return [c.step for c in registry_checkpoints.list_checkpoints(s, run_id)]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (WorkerOptions(max_parallel=0), "--max-parallel must be at least 1"),
        (WorkerOptions(mode="sometimes"), "unknown worker mode"),
        (WorkerOptions(stale_after_s=5, poll_s=5), "must be at least 3 poll intervals"),
        (WorkerOptions(threads=0), "--threads must be at least 1"),
    ],
)
def test_bad_worker_options(options: WorkerOptions, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        options.validate()


def test_each_run_gets_its_share_of_the_cores() -> None:
    cores = os.cpu_count() or 1
    assert WorkerOptions(max_parallel=1).threads_per_run == cores
    assert WorkerOptions(max_parallel=2 * cores).threads_per_run == 1  # never zero
    assert WorkerOptions(max_parallel=2, threads=3).threads_per_run == 3
