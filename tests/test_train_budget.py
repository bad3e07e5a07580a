"""Time-budgeted runs on a real registry (SQLite and MariaDB): they end `completed` at their
deadline with a checkpoint and a validation, the LR schedule follows the re-planned end, and a
resume after SIGKILL keeps what is left of the budget.

Nothing here is tuned to a quiet machine: the margins scale with the pace the run measured
itself, and the assertions read the registry and the checkpoints.
"""

from __future__ import annotations

import signal
import time
import pytest
import torch

from afi.config import StageConfig
from afi.train.pace import Pace
from afi.train.schedule import MIN_LR_FRACTION
from afi.train.service import start_run
from registry import checkpoints as registry_checkpoints
from registry import evaluations as registry_evaluations
from registry.db import session_scope
from test_train_service import get_run, start_afi
from train_factories import make_dataset, metric_rows, new_run, tiny_config

CAP = 100_000  # more steps than any few-second budget reaches
LR = 1e-3


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def dataset(engine, afi_home):
    make_dataset(engine)


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


def test_pace_plans_what_the_budget_affords() -> None:
    unbudgeted = Pace(budget_s=None, max_steps=50)
    unbudgeted.observe_step(1.0)
    assert unbudgeted.end(10) == 50
    pace = Pace(budget_s=10.0, max_steps=1000)
    assert pace.end(0) == 1000  # nothing measured yet: the cap
    for _ in range(4):
        pace.observe_step(0.5)
    assert pace.end(4) == 4 + 16  # 8 s left at 0.5 s a step
    pace.observe_pause(1.0, every=4)  # a checkpoint every 4 steps costs 0.25 s a step
    assert pace.end(4) == 4 + 9  # 7 s left at 0.75 s a step
    pace.observe_step(20.0)  # past the deadline: one more step, never none
    assert pace.end(5) == 6
    assert Pace.from_dict(pace.to_dict()) == pace
    assert Pace(budget_s=1e9, max_steps=30, step_s=0.1).end(3) == 30


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
