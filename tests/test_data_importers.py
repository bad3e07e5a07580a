"""Importers end to end on data the tests make: rows in the registry, files on disk, and clean
failures that leave neither behind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine

from afi.data.importers import ImportOptions
from afi.data.service import (
    add_dataset_from_path,
    dataset_details,
    open_split,
    remove_dataset_files,
    synth_dataset,
)
from afi.data.synth import SynthConfig
from afi.errors import UsageError
from afi.paths import datasets_dir
from data_factories import cartoon_frames, synth_video, write_rgb
from registry.datasets import list_datasets, list_frames, list_triplets
from registry.db import session_scope

# Most import tests exercise the pipeline, not SQL: one backend is enough for them.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])


def _rows(engine: Engine, name: str):
    with session_scope(engine) as s:
        record = next(r for r in list_datasets(s) if r.name == name)
        return record, list_frames(s, record.id), list_triplets(s, record.id)


def _nothing_left(engine: Engine) -> None:
    with session_scope(engine) as s:
        assert list_datasets(s) == []
    assert not datasets_dir().exists() or list(datasets_dir().iterdir()) == []


def test_video_shots_holds_and_no_triplet_across_a_cut(
    engine: Engine, afi_home: Path, tmp_path: Path
) -> None:
    truth = synth_video(tmp_path / "ep01.mp4", clips=4, frames_per_clip=20, seed=0, tone_hz=440.0)
    result = add_dataset_from_path(engine, "ep", tmp_path / "ep01.mp4", "videos")
    record, frames, triplets = _rows(engine, "ep")
    assert result.warnings == ()
    assert record.shot_count == 4 and record.triplet_count == len(triplets) > 0
    assert record.filter_stats["crossing_cut"] > 0  # there were windows across cuts, all discarded
    clip_of = lambda pts: int(round(pts * 24)) // 20  # noqa: E731 - which synth clip a time is in
    by_path = {f.path: f for f in frames}
    for triplet in triplets:
        members = [by_path[p] for p in (triplet.frame0, triplet.frame1, triplet.frame2)]
        assert len({m.shot for m in members}) == 1 and len({clip_of(m.pts) for m in members}) == 1
        assert members[0].pts < members[1].pts < members[2].pts
        assert 0 < triplet.t < 1
    # Held frames collapse: one stored frame per drawing used, never a repeat of the same drawing.
    assert len(frames) <= len(truth.hold_lengths)
    labels = json.loads((Path(record.root) / "shots.json").read_text())
    assert labels[0] == "ep01#000" and len(labels) == 4
    assert record.disk_bytes > 0 and record.content_hash


@sqlite_only
def test_on_twos_video_reports_its_cadence_and_mixed_holds_give_uneven_t(
    engine: Engine, afi_home: Path, tmp_path: Path
) -> None:
    synth_video(tmp_path / "twos.mp4", clips=1, frames_per_clip=24, cadences=(2,), seed=3)
    record = add_dataset_from_path(engine, "twos", tmp_path / "twos.mp4", "videos").record
    assert record.filter_stats["cadence"] == "on twos"
    assert record.filter_stats["hold_histogram"] == {"2": 11}
    synth_video(
        tmp_path / "mixed.mp4",
        clips=1,
        frames_per_clip=24,
        cadences=(2, 3),
        mixed_cadence_probability=1.0,
        seed=1,
    )
    add_dataset_from_path(engine, "mixed", tmp_path / "mixed.mp4", "videos")
    _, _, triplets = _rows(engine, "mixed")
    assert {round(t.t, 2) for t in triplets} >= {0.5, 0.4} or {round(t.t, 2) for t in triplets} >= {
        0.5,
        0.6,
    }


@sqlite_only
def test_stride_spaces_the_drawings(engine: Engine, afi_home: Path, tmp_path: Path) -> None:
    synth_video(tmp_path / "a.mp4", clips=1, frames_per_clip=16, cadences=(1,), seed=2)
    add_dataset_from_path(engine, "s2", tmp_path / "a.mp4", "videos", ImportOptions(stride=2))
    _, _, triplets = _rows(engine, "s2")
    assert triplets and all(
        t.key.endswith(f"{i}-{i + 2}-{i + 4}")
        for t in triplets
        for i in [int(t.key.split(":")[1].split("-")[0])]
    )


@sqlite_only
def test_truncated_video_registers_nothing(engine: Engine, afi_home: Path, tmp_path: Path) -> None:
    synth_video(tmp_path / "ok.mp4", clips=1, frames_per_clip=12)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes((tmp_path / "ok.mp4").read_bytes()[:3000])
    with pytest.raises(UsageError, match="broken.mp4"):
        add_dataset_from_path(engine, "bad", broken, "videos")
    _nothing_left(engine)


@sqlite_only
def test_a_corrupt_video_in_a_folder_is_skipped_with_a_warning(
    engine: Engine, afi_home: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "videos"
    synth_video(folder / "good.mp4", clips=2, frames_per_clip=16, seed=4)
    (folder / "bad.mp4").write_bytes(b"not a video at all" * 100)
    result = add_dataset_from_path(engine, "mixedbag", folder, "videos")
    assert (
        len(result.warnings) == 1
        and "skipped 1 video" in result.warnings[0]
        and "bad.mp4" in result.warnings[0]
    )
    assert result.record.shot_count == 2
    assert not (Path(result.record.root) / "bad").exists()


@sqlite_only
def test_a_folder_of_only_corrupt_videos_is_an_error(
    engine: Engine, afi_home: Path, tmp_path: Path
) -> None:
    for name in ("a.mp4", "b.mkv"):
        (tmp_path / name).write_bytes(b"\x00" * 500)
    with pytest.raises(UsageError, match="none of the 2 videos"):
        add_dataset_from_path(engine, "bad", tmp_path, "videos")
    _nothing_left(engine)


def _shot_folders(root: Path, shots: int = 2, count: int = 8, size: int = 64) -> None:
    for shot in range(shots):
        for i, image in enumerate(cartoon_frames(count, size=size, seed=10 + shot)):
            write_rgb(root / f"shot{shot}" / f"f{i}.png", image)


@sqlite_only
def test_frames_folders_become_shots_with_timestamps(
    engine: Engine, afi_home: Path, tmp_path: Path
) -> None:
    _shot_folders(tmp_path / "frames")
    options = ImportOptions(fps=12.0, image_format="png")
    record = add_dataset_from_path(engine, "seq", tmp_path / "frames", "frames", options).record
    _, frames, triplets = _rows(engine, "seq")
    assert record.shot_count == 2 and (record.width, record.height) == (64, 64)
    assert len(triplets) == 12  # 8 drawings -> 6 windows per shot
    assert sorted({f.pts for f in frames if f.shot == 0}) == [i / 12 for i in range(8)]
    assert all(f.path.endswith(".png") for f in frames)


@sqlite_only
def test_frames_with_mixed_sizes_is_a_clear_error(
    engine: Engine, afi_home: Path, tmp_path: Path
) -> None:
    _shot_folders(tmp_path / "frames", shots=1)
    write_rgb(tmp_path / "frames" / "shot0" / "f9.png", cartoon_frames(3, size=32)[0])
    with pytest.raises(UsageError, match=r"mixed image sizes .*f0.png is 64x64, f9.png is 32x32"):
        add_dataset_from_path(engine, "mixed", tmp_path / "frames", "frames")
    _nothing_left(engine)


@sqlite_only
def test_empty_folder_is_a_clear_error(engine: Engine, afi_home: Path, tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    for fmt in ("frames", "atd12k", "videos"):
        with pytest.raises(UsageError, match="(no images|no <clip>|no videos)"):
            add_dataset_from_path(engine, "empty", tmp_path / "empty", fmt)
    _nothing_left(engine)


@sqlite_only
def test_unreadable_image_is_skipped_with_a_count(
    engine: Engine, afi_home: Path, tmp_path: Path
) -> None:
    _shot_folders(tmp_path / "frames", shots=1, count=10)
    (tmp_path / "frames" / "shot0" / "f4.png").write_bytes(b"PNG? no")
    result = add_dataset_from_path(engine, "holes", tmp_path / "frames", "frames")
    assert result.warnings == (
        f"skipped 1 unreadable image(s); first: {tmp_path / 'frames' / 'shot0' / 'f4.png'}",
    )
    _, frames, _ = _rows(engine, "holes")
    assert 4 / 24 not in {f.pts for f in frames}  # its slot in time stays empty


@sqlite_only
def test_letterboxed_frames_are_cropped(engine: Engine, afi_home: Path, tmp_path: Path) -> None:
    for i, image in enumerate(cartoon_frames(8, size=64, seed=3)):
        boxed = image.copy()
        boxed[:8], boxed[-8:] = 0, 0
        write_rgb(tmp_path / "boxed" / f"{i}.png", boxed)
    record = add_dataset_from_path(engine, "boxed", tmp_path / "boxed", "frames").record
    assert (record.width, record.height) == (64, 48)
    assert record.filter_stats["letterboxed_sources"] == 1


def _vimeo(root: Path, names: list[str], test: list[str]) -> None:
    for n, name in enumerate(names + test):
        for i, image in enumerate(cartoon_frames(3, size=32, seed=n), start=1):
            write_rgb(root / "sequences" / name / f"im{i}.png", image)
    (root / "tri_trainlist.txt").write_text("\n".join(names) + "\n")
    (root / "tri_testlist.txt").write_text("\n".join(test) + "\n")


@sqlite_only
def test_vimeo_triplets_keep_their_test_split_and_carve_a_val(
    engine: Engine, afi_home: Path, tmp_path: Path
) -> None:
    _vimeo(
        tmp_path / "vimeo", [f"00001/{i:04d}" for i in range(1, 7)], ["00002/0001", "00002/0002"]
    )
    record = add_dataset_from_path(engine, "vimeo", tmp_path / "vimeo", "vimeo-triplet").record
    assert record.split_counts == {"train": 5, "val": 1, "test": 2}
    assert record.filter_stats["curated"] is False
    _, _, triplets = _rows(engine, "vimeo")
    assert {t.t for t in triplets} == {0.5}
    assert {t.key for t in triplets if t.split == "test"} == {
        "00002/0001:0-1-2",
        "00002/0002:0-1-2",
    }


@sqlite_only
def test_atd12k_split_folders_and_jpgs(engine: Engine, afi_home: Path, tmp_path: Path) -> None:
    for split, count in (("train_10k", 4), ("test_2k_540p", 2)):
        for c in range(count):
            for i, image in enumerate(cartoon_frames(3, size=32, seed=c), start=1):
                suffix = "jpg" if split.startswith("train") else "png"
                write_rgb(tmp_path / "atd" / split / f"clip{c}" / f"frame{i}.{suffix}", image)
    # A clip with a frame missing is skipped with a warning, not fatal.
    write_rgb(
        tmp_path / "atd" / "train_10k" / "broken" / "frame1.png", cartoon_frames(3, size=32)[0]
    )
    result = add_dataset_from_path(engine, "atd", tmp_path / "atd", "atd12k")
    assert result.record.split_counts == {"train": 3, "val": 1, "test": 2}
    assert result.warnings == ()  # a folder without frame1..3 is not a clip at all


def test_synth_show_and_rm_free_the_disk(engine: Engine, afi_home: Path, tmp_path: Path) -> None:
    video_path = tmp_path / "demo.mp4"
    result = synth_dataset(
        engine, "toy", SynthConfig(clips=3, frames_per_clip=16, seed=0), write_video_to=video_path
    )
    assert video_path.is_file()
    details = dataset_details(engine, "toy")
    assert details["shot_count"] == 3 and details["disk_bytes_now"] == details["disk_bytes"] > 0
    assert details["filter_stats"]["candidates"] >= details["triplet_count"] > 0
    assert sum(details["split_counts"].values()) == details["triplet_count"]
    root = Path(result.record.root)
    assert root.parent == datasets_dir() and root.is_dir()
    with pytest.raises(UsageError, match="already exists"):
        synth_dataset(engine, "toy", SynthConfig(clips=1, frames_per_clip=8))
    remove_dataset_files(engine, "toy")
    assert not root.exists()
    _nothing_left(engine)


@sqlite_only
def test_open_split_feeds_the_loader(engine: Engine, afi_home: Path) -> None:
    synth_dataset(engine, "toy", SynthConfig(clips=4, frames_per_clip=16, seed=1))
    dataset = open_split(engine, "toy", "train", crop=(64, 64), arbitrary_t=0.5)
    item = dataset[0]
    assert item["frame1"].shape == (3, 64, 64)
    assert np.isfinite(float(item["t"]))
    with pytest.raises(UsageError, match="unknown split"):
        open_split(engine, "toy", "holdout")


@sqlite_only
def test_bad_names_and_formats_are_usage_errors(
    engine: Engine, afi_home: Path, tmp_path: Path
) -> None:
    with pytest.raises(UsageError, match="bad dataset name"):
        synth_dataset(engine, "../evil", SynthConfig(clips=1, frames_per_clip=8))
    with pytest.raises(UsageError, match="start it with a letter"):
        synth_dataset(engine, "42", SynthConfig(clips=1, frames_per_clip=8))
    with pytest.raises(UsageError, match="unknown dataset format"):
        add_dataset_from_path(engine, "x", tmp_path, "gif-soup")
    with pytest.raises(UsageError, match="does not exist"):
        add_dataset_from_path(engine, "x", tmp_path / "nope", "frames")
