"""End to end: `afi quickstart --minutes 2` through the CLI, then the registry, video and report.

Marked `e2e`: `make test` runs it on its own after the parallel suite: its runs train to a time
budget, and on cores shared with other tests they would reach too few steps to mean much.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import av
import pytest

pytestmark = pytest.mark.e2e

AFI = str(Path(sys.executable).parent / "afi")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def afi(home: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AFI_HOME": str(home), "COLUMNS": "200"}
    env.pop("AFI_DB_URL", None)
    return subprocess.run([AFI, *args], env=env, capture_output=True, text=True, timeout=timeout)


def sql(home: Path, query: str) -> list[dict]:
    result = afi(home, "sql", query, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    home = tmp_path_factory.mktemp("quickstart") / "afi_home"
    result = afi(home, "quickstart", "--minutes", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the strongest baseline, " in result.stdout
    experiment = re.search(r"experiment\s+(quickstart-[\w-]+)", result.stdout)
    assert experiment, result.stdout
    print(result.stdout)
    return home, experiment.group(1)


def test_runs_completed_and_evaluated_beside_baselines(quickstart: tuple[Path, str]) -> None:
    home, experiment = quickstart
    runs = sql(home, f"SELECT id, status, arch, disc FROM run_summary WHERE experiment = '{experiment}'")
    assert len(runs) == 4
    assert {r["status"] for r in runs} == {"completed"}
    assert {(r["arch"], r["disc"]) for r in runs} == {
        ("unet", "none"), ("unet", "patchgan"), ("isnet", "none"), ("isnet", "patchgan")
    }
    board = sql(home, "SELECT run_id, is_baseline, arch, psnr FROM leaderboard WHERE split = 'test' "
                      "ORDER BY psnr DESC")
    models = [row for row in board if not row["is_baseline"]]
    baselines = {row["arch"]: row["psnr"] for row in board if row["is_baseline"]}
    assert {row["run_id"] for row in models} == {r["id"] for r in runs}
    assert set(baselines) == {"nearest", "blend", "dis", "flow"}
    # The bar: every trained model beats the cross-fade (DIS guidance: by about 5.7 dB).
    assert all(row["psnr"] > baselines["blend"] + 1.0 for row in models), (models, baselines)


def test_leaderboard_order_matches_the_metric(quickstart: tuple[Path, str]) -> None:
    home, _ = quickstart
    for metric, descending in (("psnr", True), ("lineart", False)):
        result = afi(home, "leaderboard", "--split", "test", "--metric", metric, "--all", "--json")
        assert result.returncode == 0, result.stderr
        values = [row[metric] for row in json.loads(result.stdout)]
        assert len(values) == 8  # four runs and four baselines
        assert values == sorted(values, reverse=descending)


def test_output_video_has_twice_the_frames(quickstart: tuple[Path, str]) -> None:
    home, _ = quickstart
    folder = home / "quickstart"
    with av.open(str(folder / "clip-12fps.mp4")) as source:
        source_frames = sum(1 for _ in source.decode(video=0))
    with av.open(str(folder / "clip-24fps.mp4")) as output:
        stream = output.streams.video[0]
        output_frames = sum(1 for _ in output.decode(video=0))
        assert float(stream.average_rate) == pytest.approx(24.0)
        assert output.streams.audio, "the audio track was dropped"
    assert abs(output_frames - 2 * source_frames) <= 1


@pytest.mark.skipif(CHROMIUM is None and os.environ.get("CI") != "true",
                    reason="Debian chromium is not installed (.ci/run installs it)")
def test_report_renders_in_headless_chromium(quickstart: tuple[Path, str], tmp_path: Path) -> None:
    assert CHROMIUM is not None, "chromium is required in CI: `apt-get install chromium`"
    home, experiment = quickstart
    page = tmp_path / "report.html"
    result = afi(home, "report", experiment, "-o", str(page))
    assert result.returncode == 0, result.stderr
    html = page.read_text()
    assert "http://" not in html and "https://" not in html  # self-contained: opens offline
    browser = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
               "--virtual-time-budget=10000"]
    dom = subprocess.run([*browser, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    loaded = re.search(r'data-images-loaded="(\d+)/(\d+)"', dom.stdout)
    assert loaded, dom.stdout[-2000:] + dom.stderr[-2000:]
    ok, total = map(int, loaded.groups())
    assert total >= 1 + 4 and ok == total  # curves + one sample grid per run
    shot = tmp_path / "report.png"
    subprocess.run([*browser, f"--screenshot={shot}", "--window-size=1280,2400", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.stat().st_size > 10_000
    kept = os.environ.get("AFI_KEEP_REPORT_SCREENSHOT")
    if kept:
        shutil.copyfile(shot, kept)
