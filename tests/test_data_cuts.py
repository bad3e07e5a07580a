"""Scene cuts found by PySceneDetect on frames we decode from a video with known cuts."""

from __future__ import annotations

from pathlib import Path

import pytest

from afi.data.cuts import CutConfig, detect_cuts, shot_of_frame
from afi.data.video import iter_frames
from afi.errors import UsageError
from data_factories import synth_video


@pytest.mark.parametrize(("detector", "seed"), [("content", 0), ("content", 2), ("adaptive", 1)])
def test_known_cuts_give_the_right_shots(tmp_path: Path, detector: str, seed: int) -> None:
    truth = synth_video(tmp_path / "cuts.mp4", clips=4, frames_per_clip=20, seed=seed)
    images = [f.image for f in iter_frames(tmp_path / "cuts.mp4")]
    cuts = detect_cuts(images, fps=24.0, config=CutConfig(detector=detector))
    assert cuts == list(truth.cuts)
    assert len(cuts) + 1 == 4  # shots


def test_higher_threshold_finds_fewer_cuts(tmp_path: Path) -> None:
    synth_video(tmp_path / "cuts.mp4", clips=3, frames_per_clip=16, seed=0)
    images = [f.image for f in iter_frames(tmp_path / "cuts.mp4")]
    assert detect_cuts(images, 24.0, CutConfig(threshold=250.0)) == []


def test_shot_of_frame_counts_cuts_at_or_before() -> None:
    assert [shot_of_frame(i, [3, 6]) for i in (0, 2, 3, 5, 6, 9)] == [0, 0, 1, 1, 2, 2]


def test_unknown_detector_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="content, adaptive"):
        CutConfig(detector="magic").validate()
