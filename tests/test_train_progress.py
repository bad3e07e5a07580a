"""Training that is not on a terminal prints plain progress lines at a steady pace."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from train_factories import DATASET, make_dataset
from typer.testing import CliRunner

from afi.cli.main import app
from afi.train.callbacks import ProgressLog
from afi.train.loop import StepReport

runner = CliRunner()


def report(step: int) -> StepReport:
    return StepReport(step, 100, {"loss/G/total": 0.5}, {"perf/samples_per_s": 12.0})


def test_lines_come_at_a_steady_interval_with_step_loss_speed_and_eta() -> None:
    now, lines = [0.0], []
    log = ProgressLog("run 7", lines.append, interval_s=30.0, clock=lambda: now[0])
    log.on_start(0, 100)
    for step in range(1, 101):
        now[0] = step * 1.0  # one step a second
        log.on_log(report(step))
    log.on_end(100, "completed")
    assert lines[0] == "run 7: step 1/100  loss 0.5000  12.0 samples/s  eta 1m39s"
    assert [line.split()[3] for line in lines[1:-1]] == ["31/100", "61/100", "91/100"]
    assert lines[-1] == "run 7: completed at step 100/100 after 1m40s"


def test_a_time_budgeted_stage_ends_at_its_replanned_total() -> None:
    lines: list[str] = []
    log = ProgressLog("run 8", lines.append, clock=lambda: 0.0)
    log.on_start(0, 10_000_000)  # a budget alone: the step cap, until the pace plans the end
    log.on_plan(522)
    log.on_end(522, "completed")
    assert lines[-1].startswith("run 8: completed at step 522/522 ")


def test_run_start_off_a_terminal_prints_progress_lines(engine: Engine, afi_home: Path) -> None:
    make_dataset(engine)
    url = engine.url.render_as_string(hide_password=False)
    result = runner.invoke(app, ["--db", url, "run", "create", "--dataset", DATASET, "--res", "32",
                                 "--steps", "3", "--batch", "2", "--width", "8", "--depth", "2", "--start"])
    assert result.exit_code == 0, result.output
    assert "/3  loss " in result.stderr and "samples/s  eta " in result.stderr
    assert ": completed at step 3/3 after " in result.stderr
