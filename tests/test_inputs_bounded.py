"""Bounded inputs and expected failures as one-line errors: run options, interpolation rates, a
diverging loss, a truncated video, a checkpoint folder that cannot be written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from afi.cli.main import app
from afi.data.service import add_dataset_from_path
from afi.errors import AfiError
from afi.train import loop
from afi.train.checkpoint import save_checkpoint
from afi.train.service import start_run
from afi.data.synth import SynthConfig
from data_factories import synth_video
from video_factories import make_cartoon
from registry import runs as registry_runs
from registry.db import session_scope
from train_factories import make_dataset, new_run, tiny_config

runner = CliRunner()


def one_line(result, code: int) -> str:
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output and "internal error" not in lines[0], lines
    return lines[0]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--res", "100000"], "at most 4096"),
        (["--lr", "inf"], "learning rate must be at most 1"),
        (["--lr", "1e300"], "learning rate must be at most 1"),
        (["--lr", "nan"], "learning rate must be positive"),
        (["--batch", "100000"], "batch must be at most 1024"),
        (["--steps", "1000000000000"], "steps must be at most"),
        (["--stages", ""], "bad stage ''"),
    ],
)
def test_run_create_bounds_exit_2_and_write_nothing(db_url: str, afi_home, args, fragment) -> None:
    assert fragment in one_line(runner.invoke(app, ["--db", db_url, "run", "create", *args]), 2)
    counted = runner.invoke(app, ["--db", db_url, "sql", "SELECT COUNT(*) AS n FROM runs", "--json"])
    assert json.loads(counted.stdout) == [{"n": 0}]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--fps", "1e9"], "--fps must be in (0, 1000]"),
        (["--factor", "1000000"], "--factor must be in (0, 64]"),
    ],
)
def test_interpolate_rates_are_bounded(tmp_path: Path, afi_home, args, fragment) -> None:
    synth_video(tmp_path / "in.mp4", clips=1, frames_per_clip=6)
    out = tmp_path / "out.mp4"
    result = runner.invoke(
        app, ["interpolate", str(tmp_path / "in.mp4"), "-o", str(out), "--method", "blend", *args]
    )
    assert fragment in one_line(result, 2)
    assert not (tmp_path / "out.mp4").exists()


def test_a_diverging_loss_fails_the_run_with_its_step(
    engine, afi_home, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_dataset(engine)
    run = new_run(engine, tiny_config(steps=30, ckpt_every=10, val_every=10))
    # What --lr inf did before it was refused: every loss from the second step on is NaN.
    monkeypatch.setattr(loop, "learning_rate", lambda *args: float("inf"))
    with pytest.raises(AfiError, match="not finite"):
        start_run(engine, run.id)
    with session_scope(engine) as session:
        failed = registry_runs.get_run(session, run.id)
    assert failed.status == "failed", failed
    assert f"at step {1 + loop.NONFINITE_STEPS_LIMIT}" in failed.message and "--lr" in failed.message


def test_a_truncated_video_imports_with_a_counted_warning(engine, afi_home, tmp_path: Path) -> None:
    synth_video(tmp_path / "full.mkv", clips=1, frames_per_clip=60)
    data = (tmp_path / "full.mkv").read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[: len(data) * 6 // 10])
    result = add_dataset_from_path(engine, "cut", tmp_path / "cut.mkv", "videos")
    assert any("of the 60 frames" in w and "truncated" in w for w in result.warnings), result.warnings


def test_a_file_where_the_checkpoint_folder_goes_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "checkpoints").write_text("in the way")
    with pytest.raises(AfiError, match="a file is in the way") as info:
        save_checkpoint({"w": torch.zeros(4)}, tmp_path / "checkpoints" / "step-1.pt")
    assert str(tmp_path / "checkpoints") in str(info.value)


def test_a_full_disk_names_the_checkpoint_and_leaves_no_partial_file(tmp_path: Path) -> None:
    # A file-size limit fails the write as a full disk does (EFBIG, like ENOSPC), without root.
    script = (
        "import resource, sys, torch\n"
        "from pathlib import Path\n"
        "from afi.errors import AfiError\n"
        "from afi.train.checkpoint import save_checkpoint\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))\n"
        "try:\n"
        "    save_checkpoint({'w': torch.zeros(100_000)}, Path(sys.argv[1]))\n"
        "except AfiError as exc:\n"
        "    print(exc)\n"
    )
    target = tmp_path / "ckpt" / "step-1.pt"
    done = subprocess.run(
        [sys.executable, "-c", script, str(target)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert str(target) in done.stdout and "File too large" in done.stdout and "free space" in done.stdout
    assert list((tmp_path / "ckpt").iterdir()) == []


def test_a_full_disk_anywhere_is_one_line_naming_the_file(tmp_path: Path) -> None:
    """Not only checkpoints: `afi interpolate` writing its video past a file-size limit (as a
    full disk fails, EFBIG like ENOSPC) says which file and what to do, not "internal error"."""
    clip = tmp_path / "clip.mp4"
    make_cartoon(clip, SynthConfig(clips=1, frames_per_clip=24, width=256, height=256, seed=3))
    out = tmp_path / "out.mp4"
    script = (
        "import resource, sys\n"
        "from afi.cli.main import run\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4_000, 4_000))\n"
        f"sys.argv = ['afi', 'interpolate', {str(clip)!r}, '-o', {str(out)!r}, '--method', 'blend', '--factor', '2']\n"
        "run()\n"
    )
    env = {**os.environ, "AFI_HOME": str(tmp_path / "home")}
    env.pop("AFI_DB_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert "no room to write" in lines[-1] and "internal error" not in done.stderr, lines
