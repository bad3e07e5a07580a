"""PyAV decode and encode: timestamps, resizing, audio, and clear errors on broken files."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from afi.data.video import iter_frames, probe_video, resize_to_max_side, write_video
from afi.errors import UsageError
from data_factories import cartoon_frames, synth_video


def test_roundtrip_keeps_count_timestamps_and_pixels(tmp_path: Path) -> None:
    frames = cartoon_frames(12, size=64)
    path = write_video(tmp_path / "clip.mp4", frames, fps=24.0)
    decoded = list(iter_frames(path))
    assert len(decoded) == 12
    assert [round(f.pts * 24) for f in decoded] == list(range(12))
    error = np.abs(decoded[5].image.astype(int) - frames[5]).mean()
    assert error < 8  # lossy (4:2:0 chroma on thin outlines), but close


def test_audio_track_is_written(tmp_path: Path) -> None:
    path = tmp_path / "tone.mp4"
    synth_video(path, tone_hz=440.0, clips=1, frames_per_clip=12, width=64, height=64)
    info = probe_video(path)
    assert (
        info.has_audio and (info.width, info.height) == (64, 64) and info.fps == pytest.approx(24.0)
    )
    with av.open(str(path)) as container:
        assert container.streams.audio[0].codec_context.name == "aac"


def test_max_side_shrinks_and_never_enlarges() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    assert resize_to_max_side(image, 50).shape == (25, 50, 3)
    assert resize_to_max_side(image, 400) is image


def test_truncated_video_is_a_usage_error(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.mp4", cartoon_frames(12, size=64), fps=24.0)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UsageError, match="truncated.mp4"):
        list(iter_frames(truncated))


def test_garbage_file_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(UsageError, match="cannot open video"):
        probe_video(path)


def test_odd_size_is_refused_before_encoding(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="even"):
        write_video(tmp_path / "odd.mp4", np.zeros((2, 33, 32, 3), np.uint8), fps=24.0)
