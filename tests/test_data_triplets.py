"""Triplet windows at arbitrary t (`--max-gap`): the right t, and never across a cut."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from afi.data.cuts import shot_of_frame
from afi.data.importers import ImportOptions
from afi.data.service import synth_dataset
from afi.data.synth import SynthConfig, generate_cartoon
from afi.data.triplets import windows_ending
from afi.errors import UsageError
from registry.datasets import get_dataset, list_frames, list_triplets
from registry.db import session_scope

FPS = 24.0


def test_windows_ending_at_a_drawing() -> None:
    assert windows_ending(5, 1, 2) == [(3, 4, 5)]
    assert windows_ending(5, 2, 2) == [(1, 3, 5)]
    assert windows_ending(5, 1, 3) == [(3, 4, 5), (2, 3, 5), (2, 4, 5)]
    assert windows_ending(2, 1, 4) == [(0, 1, 2)]  # too early for the longer ones
    assert len(windows_ending(9, 1, 4)) == 1 + 2 + 3


def test_max_gap_out_of_range_is_a_usage_error() -> None:
    for bad in (1, 9):
        with pytest.raises(UsageError, match="max gap"):
            ImportOptions(max_gap=bad).validate()


def _triplets(engine: Engine, name: str) -> list[tuple[str, float, tuple[float, float, float]]]:
    """(key, t, frame indices of the three frames) of every triplet."""
    with session_scope(engine) as s:
        record = get_dataset(s, name)
        pts = {f.path: f.pts for f in list_frames(s, record.id)}
        return [
            (t.key, t.t, tuple(round(pts[p] * FPS) for p in (t.frame0, t.frame1, t.frame2)))
            for t in list_triplets(s, record.id)
        ]


@pytest.mark.parametrize("motion", ["easy", "hard"])
def test_max_gap_adds_triplets_at_other_t_inside_shots(
    engine: Engine, afi_home: Path, motion: str
) -> None:
    config = SynthConfig(clips=3, frames_per_clip=16, width=64, height=48, seed=2, motion=motion,
                         cadences=(1, 2))
    synth_dataset(engine, "halves", config)
    synth_dataset(engine, "thirds", config, options=ImportOptions(max_gap=3))
    halves, thirds = _triplets(engine, "halves"), _triplets(engine, "thirds")
    assert {key for key, _, _ in halves} < {key for key, _, _ in thirds}
    cuts = list(generate_cartoon(config).cuts)
    ts = []
    for _key, t, frames in thirds:
        i, j, k = frames
        assert i < j < k
        assert t == pytest.approx((j - i) / (k - i))  # from the timestamps, held frames included
        assert len({shot_of_frame(f, cuts) for f in frames}) == 1  # never across a cut
        ts.append(t)
    # Ends three drawings apart: t near 1/3 and 2/3 (exactly, on a steady cadence).
    assert any(t == pytest.approx(1 / 3) for t in ts) and any(t == pytest.approx(2 / 3) for t in ts)
