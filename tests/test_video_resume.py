"""Resumable jobs: a job killed mid-way continues with --resume and gives the same video."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner
from video_factories import decode, make_cartoon

from afi.cli.main import app
from afi.errors import UsageError
from afi.video.baselines import BaselineInterpolator
from afi.video.interpolate import InterpolateRequest, interpolate_video
from afi.video.resume import STATE_FILE, work_folder_for

runner = CliRunner()
SEGMENT = 8  # output frames per segment: the 64-frame output is 8 segments


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cartoon") / "cartoon.mp4"
    make_cartoon(path)
    return path


def min_psnr(a: np.ndarray, b: np.ndarray) -> float:
    """The worst per-frame PSNR between two (N, H, W, 3) uint8 videos."""
    mse = ((a.astype(np.float64) - b) ** 2).reshape(len(a), -1).mean(axis=1)
    return float(10 * np.log10(255**2 / np.maximum(mse, 1e-10)).min())


def killed_job(source: Path, output: Path, after_frames: int) -> subprocess.CompletedProcess:
    """Run the job in a child process that SIGKILLs itself once `after_frames` output frames are
    encoded: no handler, no cleanup, as when a machine dies."""
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from afi.video.baselines import BaselineInterpolator
        from afi.video.interpolate import InterpolateRequest, interpolate_video

        def progress(phase, done, total):
            if phase == "interpolate" and done >= {after_frames}:
                os.kill(os.getpid(), signal.SIGKILL)

        request = InterpolateRequest(Path({str(source)!r}), Path({str(output)!r}), factor=2, segment_frames={SEGMENT})
        interpolate_video(request, BaselineInterpolator("blend"), progress)
        """
    )
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)


def test_a_killed_job_resumes_to_the_same_video(source: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.mp4"
    child = killed_job(source, output, after_frames=3 * SEGMENT + 4)
    assert child.returncode == -9, child.stderr
    work = work_folder_for(output)
    assert not output.exists()
    state = json.loads((work / STATE_FILE).read_text())
    assert state["finished"] == [SEGMENT] * 3  # the fourth segment was being written

    again = runner.invoke(
        app, ["interpolate", str(source), "-o", str(output), "--method", "blend", "--segment-frames", str(SEGMENT)]
    )
    assert again.exit_code == 2 and "--resume" in again.stderr  # never silently thrown away

    resumed = runner.invoke(
        app,
        [
            "interpolate",
            str(source),
            "-o",
            str(output),
            "--method",
            "blend",
            "--segment-frames",
            str(SEGMENT),
            "--resume",
            "--json",
        ],
    )
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["resumed_frames"] == 3 * SEGMENT
    assert not work.exists()

    fresh = tmp_path / "fresh.mp4"
    request = InterpolateRequest(source, fresh, factor=2, segment_frames=SEGMENT)
    interpolate_video(request, BaselineInterpolator("blend"))
    resumed_frames, fresh_frames = decode(output).frames, decode(fresh).frames
    assert len(resumed_frames) == len(fresh_frames) == 64
    # Frame-threaded x264 is not bit-reproducible on these tiny frames: two fresh encodes of the
    # same pictures agree only to about 42 dB PSNR on some frames; a frame out of place scores 11 dB.
    assert min_psnr(resumed_frames, fresh_frames) > 38.0
    assert decode(output).audio == ("aac",)


def test_ctrl_c_keeps_finished_segments_and_no_partial_output(source: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.mp4"

    def interrupt(phase: str, done: int, total: int | None) -> None:
        if phase == "interpolate" and done > SEGMENT:
            raise KeyboardInterrupt

    request = InterpolateRequest(source, output, factor=2, segment_frames=SEGMENT)
    with pytest.raises(KeyboardInterrupt):
        interpolate_video(request, BaselineInterpolator("blend"), interrupt)
    work = work_folder_for(output)
    assert sorted(p.name for p in tmp_path.iterdir()) == [work.name]
    assert sorted(p.name for p in work.iterdir()) == ["segment-00000.mp4", STATE_FILE]
    result = interpolate_video(
        InterpolateRequest(source, output, factor=2, segment_frames=SEGMENT, resume=True), BaselineInterpolator("blend")
    )
    assert result.resumed_frames == SEGMENT and result.output_frames == 64


def test_resume_refuses_a_work_folder_of_other_settings(source: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.mp4"

    def interrupt(phase: str, done: int, total: int | None) -> None:
        if phase == "interpolate" and done > SEGMENT:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interpolate_video(
            InterpolateRequest(source, output, factor=2, segment_frames=SEGMENT),
            BaselineInterpolator("blend"),
            interrupt,
        )
    other = InterpolateRequest(source, output, factor=2, segment_frames=SEGMENT, resume=True)
    with pytest.raises(UsageError, match="another input or settings"):
        interpolate_video(other, BaselineInterpolator("nearest"))
