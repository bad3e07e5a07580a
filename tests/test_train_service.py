"""The trainer end to end on a real registry (SQLite and MariaDB): exact resume after SIGKILL,
preemption by SIGTERM, a two-stage curriculum, a corrupt checkpoint, and time budgets.

Time-budgeted runs are checked on nothing tuned to a quiet machine: the margins scale with the
pace the run measured itself, and the assertions read the registry and the checkpoints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from afi.config import StageConfig
from afi.train.loop import Callback
from afi.train.schedule import MIN_LR_FRACTION
from afi.train.service import start_run
from registry import checkpoints as registry_checkpoints
from registry import evaluations as registry_evaluations
from registry.db import session_scope
from registry.leaderboard import LeaderboardQuery, leaderboard
from train_factories import (
    AFI,
    assert_same_weights,
    final_weights,
    get_run,
    make_dataset,
    metric_rows,
    new_run,
    start_afi,
    tiny_config,
)

STEPS = 16
CAP = 100_000  # more steps than any few-second budget reaches
LR = 1e-3


@pytest.fixture(autouse=True)
def one_thread():
    # Same thread count in this process and in the `afi` subprocesses: CPU kernels may split
    # reductions by thread, and bitwise comparisons need the same split.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def dataset(engine, afi_home):
    make_dataset(engine)


def wait_for_checkpoint(engine, run_id: int, process: subprocess.Popen, min_step: int) -> int:
    """Poll until the run has a checkpoint at `min_step` or later; returns its step."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        with session_scope(engine) as session:
            latest = registry_checkpoints.latest_checkpoint(session, run_id)
        if latest is not None and latest.step >= min_step:
            return latest.step
        time.sleep(0.1)  # each look is a write-locking transaction on SQLite: keep them rare
    raise AssertionError("no checkpoint within 120 s")


def evaluation_steps(engine, run_id: int) -> list[int]:
    with session_scope(engine) as session:
        rows = registry_evaluations.list_evaluations(session, run_id)
    return sorted(e.step for e in rows if e.metric == "psnr")


class Notices(Callback):
    def __init__(self) -> None:
        self.messages: list[str] = []

    def on_notice(self, message: str) -> None:
        self.messages.append(message)


def test_sigkill_halfway_then_resume_matches_an_uninterrupted_run(engine, dataset):
    config = tiny_config(steps=STEPS, ckpt_every=4, val_every=8)
    straight = start_run(engine, new_run(engine, config).id)
    assert straight.status == "completed" and straight.step == STEPS

    killed = new_run(engine, config)
    process = start_afi(engine, killed.id)
    wait_for_checkpoint(engine, killed.id, process, min_step=int(os.environ.get("KILL_AT", 4)))
    process.send_signal(signal.SIGKILL)
    process.wait()
    interrupted = get_run(engine, killed.id)
    assert interrupted.status == "running" and interrupted.step < STEPS, (
        "killed too late to test a resume"
    )

    notices = Notices()
    resumed = start_run(engine, killed.id, resume=True, callbacks=[notices])
    assert resumed.status == "completed" and resumed.step == STEPS
    assert resumed.attempt == 2
    print(f"killed at step {interrupted.step}; {notices.messages}")
    assert_same_weights(final_weights(engine, straight.id), final_weights(engine, killed.id))
    assert metric_rows(engine, killed.id) == metric_rows(engine, straight.id)
    assert evaluation_steps(engine, killed.id) == evaluation_steps(engine, straight.id) == [8, 16]


def test_sigterm_preempts_at_the_current_step_and_resume_completes(engine, dataset):
    run = new_run(engine, tiny_config(steps=STEPS, ckpt_every=5, val_every=5))
    process = start_afi(engine, run.id)
    wait_for_checkpoint(engine, run.id, process, min_step=5)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    preempted = get_run(engine, run.id)
    assert preempted.status == "preempted", stderr
    assert f"afi run start {run.name} --resume" in stderr and "SIGTERM" in preempted.message
    with session_scope(engine) as session:
        assert registry_checkpoints.latest_checkpoint(session, run.id).step == preempted.step
    assert 5 <= preempted.step < STEPS

    resumed = start_run(engine, run.id, resume=True)
    assert resumed.status == "completed" and resumed.step == STEPS


class StopAt(Callback):
    """Sends this process SIGTERM at `step`, as a spot preemption notice would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step(self, step: int) -> None:
        if step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


def test_truncated_checkpoint_is_refused_and_the_one_before_is_used(engine, dataset):
    config = tiny_config(steps=12, ckpt_every=3, val_every=3, keep_last=3)
    straight = start_run(engine, new_run(engine, config).id)

    run = new_run(engine, config)
    stopped = start_run(engine, run.id, callbacks=[StopAt(7)])
    assert stopped.status == "preempted" and stopped.step == 7
    with session_scope(engine) as session:
        latest = registry_checkpoints.latest_checkpoint(session, run.id)
    assert latest.step == 7
    with open(latest.path, "r+b") as handle:
        handle.truncate(latest.size_bytes // 3)

    notices = Notices()
    resumed = start_run(engine, run.id, resume=True, callbacks=[notices])
    assert resumed.status == "completed"
    assert (
        "fails its sha256 check" in notices.messages[0]
        and "using the one before" in notices.messages[0]
    )
    assert "resumed from step 6" in notices.messages[1]
    assert Path(latest.path + ".corrupt").exists()
    assert_same_weights(final_weights(engine, straight.id), final_weights(engine, run.id))
    assert evaluation_steps(engine, run.id) == [3, 6, 9, 12]


def test_two_stage_curriculum_starts_the_child_from_the_parents_best_checkpoint(engine, dataset):
    stages = (
        StageConfig(width=32, height=32, steps=6, batch=2, lr=1e-3),
        # A negligible rate: the child ends where it started, so its weights show where that was.
        StageConfig(width=48, height=48, steps=2, batch=2, lr=1e-12, lr_schedule="constant"),
    )
    parent = new_run(engine, tiny_config(stages=stages, val_every=2, ckpt_every=2, keep_last=1))
    child = start_run(engine, parent.id)

    assert child.status == "completed" and child.parent_run_id == parent.id
    assert (child.stage, child.width, child.height, child.total_steps) == (1, 48, 48, 2)
    assert get_run(engine, parent.id).status == "completed"
    with session_scope(engine) as session:
        best = registry_checkpoints.best_checkpoint(session, parent.id)
        board = leaderboard(session, LeaderboardQuery(best_per_variant=False))
    parent_best = torch.load(best.path, weights_only=True)["model"]
    child_final = final_weights(engine, child.id)
    for key, value in parent_best.items():
        torch.testing.assert_close(child_final[f"model.{key}"], value, rtol=0, atol=1e-6)
    assert {row.run_id for row in board} == {parent.id, child.id}
    assert {row.resolution for row in board} == {"32", "48"}


def budgeted(seconds: float, **run):
    stage = StageConfig(
        width=32, height=32, steps=CAP, batch=2, lr=LR, warmup_steps=2, minutes=seconds / 60
    )
    settings = dict(val_every=CAP, ckpt_every=CAP, image_every=CAP)
    settings.update(run)
    return tiny_config(stages=(stage,), **settings)


def latest_payload(engine, run_id: int) -> dict | None:
    with session_scope(engine) as session:
        latest = registry_checkpoints.latest_checkpoint(session, run_id)
    if latest is None:
        return None
    try:
        return torch.load(latest.path, weights_only=True)
    except (FileNotFoundError, RuntimeError, EOFError):  # retention deleted it just now
        return None


def margin_s(payload: dict) -> float:
    """How far past its budget a run may end: its last step, and then some, at its own pace."""
    return max(1.0, 10 * payload["pace"]["step_s"])


def test_budgeted_run_completes_at_its_deadline_with_checkpoint_validation_and_lr_floor(
    engine, dataset
):
    budget_s = 3.0
    run = start_run(engine, new_run(engine, budgeted(budget_s)).id)
    assert run.status == "completed"
    assert 3 <= run.step < CAP and run.total_steps == run.step  # what the budget afforded
    assert f"{run.step} steps" in run.message and "time budget" in run.message

    payload = latest_payload(engine, run.id)
    assert payload["step"] == payload["planned_end"] == run.step
    elapsed = payload["pace"]["elapsed_s"]
    assert budget_s / 2 <= elapsed <= budget_s + margin_s(payload), payload["pace"]
    with session_scope(engine) as session:
        best = registry_checkpoints.best_checkpoint(session, run.id)
        evaluated = registry_evaluations.list_evaluations(session, run.id)
    assert best is not None and best.step == run.step
    assert {e.step for e in evaluated if e.metric == "psnr"} == {run.step}

    rates = {step: value for (key, step), value in metric_rows(engine, run.id).items()
             if key == "train/lr"}
    assert rates[run.step] == pytest.approx(LR * MIN_LR_FRACTION)  # the floor at the last step
    assert max(rates.values()) == pytest.approx(LR)  # after the warm-up, the peak
    assert min(rates.values()) == pytest.approx(LR * MIN_LR_FRACTION)


def test_sigkill_then_resume_keeps_the_remaining_budget(engine, dataset):
    budget_s = 10.0
    run = new_run(engine, budgeted(budget_s, ckpt_every=3))
    process = start_afi(engine, run.id)
    deadline = time.monotonic() + 180
    spent = None
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        payload = latest_payload(engine, run.id)
        if payload is not None and payload["pace"]["elapsed_s"] >= budget_s / 2:
            process.send_signal(signal.SIGKILL)
            process.wait()
            spent = payload["pace"]["elapsed_s"]
            break
        time.sleep(0.2)
    assert spent is not None, "no checkpoint past half the budget within 180 s"
    interrupted = get_run(engine, run.id)
    assert interrupted.status == "running", "finished before the kill: nothing to resume"

    resumed = start_run(engine, run.id, resume=True)
    assert resumed.status == "completed" and resumed.attempt == 2
    assert resumed.total_steps == resumed.step < CAP
    final = latest_payload(engine, run.id)
    assert final["step"] == resumed.step
    margin = margin_s(final)
    assert spent > margin, "killed too early to tell a kept budget from a fresh one"
    # A fresh budget would have trained `budget_s` more after the checkpoint it resumed from.
    assert spent <= final["pace"]["elapsed_s"] <= budget_s + margin, (spent, final["pace"])


@pytest.mark.skipif(
    not os.environ.get("AFI_TEST_DDP"),
    reason="two torchrun processes take ~30 s: AFI_TEST_DDP=1 runs it",
)
def test_torchrun_two_processes_on_gloo(engine, dataset):
    run = new_run(engine, tiny_config(steps=6, ckpt_every=3, val_every=3, disc="patchgan"))
    url = engine.url.render_as_string(hide_password=False)
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    finished = subprocess.run(
        [
            torchrun,
            "--standalone",
            "--nproc_per_node",
            "2",
            AFI,
            "--db",
            url,
            "run",
            "start",
            str(run.id),
        ],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    record = get_run(engine, run.id)
    assert (record.status, record.step) == ("completed", 6)
    assert evaluation_steps(engine, run.id) == [3, 6]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the registry is not what is tested
@pytest.mark.parametrize("arch", ["unet", "isnet"])
def test_a_refining_flow_run_resumes_exactly_after_a_preemption(engine, dataset, arch):
    """dis+refine with context features and the privileged teacher: DIS runs outside autograd
    and the teacher only in training, yet a preempted run resumed from its checkpoint ends with
    bitwise the same weights and metrics as one that was never stopped."""
    config = tiny_config(steps=8, arch=arch, flow="dis+refine", ckpt_every=4, val_every=4)
    variant = replace(config.variant, context=4, losses={**config.variant.losses, "distill": 0.1})
    config = replace(config, variant=variant.validate()).validate()
    straight = start_run(engine, new_run(engine, config).id)
    assert straight.status == "completed" and straight.step == 8

    stopped = new_run(engine, config)
    preempted = start_run(engine, stopped.id, callbacks=[StopAt(5)])
    assert preempted.status == "preempted" and preempted.step == 5
    resumed = start_run(engine, stopped.id, resume=True)
    assert resumed.status == "completed" and resumed.step == 8
    assert_same_weights(final_weights(engine, straight.id), final_weights(engine, stopped.id))
    assert metric_rows(engine, stopped.id) == metric_rows(engine, straight.id)
    assert {"loss/G/distill", "val/psnr"} <= {key for key, _ in metric_rows(engine, straight.id)}
