"""`afi report`: the experiment's runs ranked beside the baselines of one split and protocol,
labelled, training validation on a board of its own; rendered in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from afi.cli.main import app
from afi.launch.experiments import evaluate_finished_experiment
from afi.report.html import write_report
from afi.train.service import start_run
from launch_factories import TINY, set_args, tiny_dataset

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
runner = CliRunner()
pytestmark = pytest.mark.slow


def afi(engine: Engine, *args: str):
    return runner.invoke(app, ["--db", engine.url.render_as_string(hide_password=False), *args])


@pytest.fixture
def finished_experiment(engine: Engine, afi_home: Path, tmp_path: Path) -> str:
    """Two tiny runs trained, then the experiment's closing test evaluation."""
    tiny_dataset(engine, test=0.33)
    spec = tmp_path / "pair.toml"
    spec.write_text('[experiment]\ndescription = "two tiny runs"\n[grid]\narch = ["unet", "isnet"]\n')
    launched = afi(engine, "experiment", "launch", str(spec), *set_args([*TINY, "stage.steps=2"]), "--json")
    assert launched.exit_code == 0, launched.output
    runs = json.loads(launched.stdout)["runs"]
    for run in runs:
        start_run(engine, run["id"])
    [first, second] = evaluate_finished_experiment(engine, "pair")
    assert len(first.scores) == 1 + 4 and len(second.scores) == 1  # baselines once per dataset
    assert evaluate_finished_experiment(engine, "pair") == []  # done once
    return "pair"


def test_report_warns_nothing(engine: Engine, finished_experiment: str, tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_report(engine, finished_experiment, tmp_path / "report.html", samples=1)
    assert [str(w.message) for w in caught] == []


def boards(page: str) -> dict[str, str]:
    """Each board's heading -> its table's HTML."""
    found = re.findall(r'<h3 data-split="([^"]+)">([^<]+)</h3>(.*?)(?=<h3|<h2)', page, re.S)
    return {split: label + body for split, label, body in found}


def test_report_ranks_runs_beside_baselines_of_one_split(engine: Engine, finished_experiment: str,
                                                         tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    result = afi(engine, "report", finished_experiment, "-o", str(page), "--samples", "1")
    assert result.exit_code == 0, result.output
    shown = boards(page.read_text())
    assert list(shown) == ["test", "val-crop"]
    test, training = shown["test"], shown["val-crop"]
    assert test.startswith("split test: full frames at native size (afi eval)")
    assert test.count('class="baseline"') == 4 and test.count("<tr>") == 1 + 2  # header + 2 runs
    assert training.startswith("split val-crop: centre crops") and 'class="baseline"' not in training
    # Every row of a board is of its split.
    assert all(re.findall(r'<td class="text">(test|val-crop)</td>', test)[i] == "test" for i in range(6))


@pytest.mark.skipif(CHROMIUM is None and os.environ.get("CI") != "true",
                    reason="Debian chromium is not installed (.ci/run installs it)")
def test_report_leaderboard_in_headless_chromium(
    engine: Engine, finished_experiment: str, tmp_path: Path
) -> None:
    assert CHROMIUM is not None, "chromium is required in CI: `apt-get install chromium`"
    page = tmp_path / "report.html"
    assert afi(engine, "report", finished_experiment, "-o", str(page), "--samples", "1").exit_code == 0
    browser = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000"]
    dom = subprocess.run([*browser, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    # What the browser laid out: the board's label, and its rows' splits, runs and baselines.
    shown = boards(dom.stdout)
    assert shown["test"].startswith("split test: full frames at native size (afi eval)"), dom.stderr[-2000:]
    assert shown["test"].count('class="baseline"') == 4
    assert re.search(r'data-images-loaded="(\d+)/\1"', dom.stdout)
    shot = tmp_path / "report.png"
    subprocess.run([*browser, f"--screenshot={shot}", "--window-size=1400,1200", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.stat().st_size > 10_000
    kept = os.environ.get("AFI_KEEP_REPORT_SCREENSHOT")
    if kept:
        shutil.copyfile(shot, kept)


def test_run_compare_shows_the_baselines_of_the_same_split(engine: Engine, finished_experiment: str,
                                                           tmp_path: Path) -> None:
    plot = str(tmp_path / "c.png")
    compared = afi(engine, "run", "compare", "pair-unet", "pair-isnet", "--plot", plot, "--json")
    assert compared.exit_code == 0, compared.output
    board = json.loads(compared.stdout)["leaderboard"]
    assert board["split"] == "test" and board["label"].startswith("split test: full frames")
    assert sorted(r["kind"] for r in board["rows"]) == ["baseline"] * 4 + ["interp"] * 2
    assert {r["split"] for r in board["rows"]} == {"test"}
    text = afi(engine, "run", "compare", "pair-unet", "pair-isnet", "--plot", str(tmp_path / "c.png")).stdout
    assert "scores beside the baselines, split test" in text
