"""`afi dataset` commands over a real registry: synth, add, list, show, rm, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from afi.cli import dataset
from afi.cli.app import state
from data_factories import synth_video

runner = CliRunner()


@pytest.fixture
def afi(db_url: str, afi_home: Path):
    """Runs `afi --db URL dataset ...` (the sub-app, with the state `--db` would set)."""

    def invoke(*args: str):
        state.reset(db_url, debug=False)
        return runner.invoke(dataset.app, list(args))

    yield invoke
    state.reset(None, debug=False)


def test_synth_list_show_rm(afi, tmp_path: Path) -> None:
    video = tmp_path / "demo.mp4"
    result = afi(
        "synth",
        "toy",
        "--clips",
        "3",
        "--size",
        "96x64",
        "--frames",
        "16",
        "--write-video",
        str(video),
    )
    assert result.exit_code == 0, result.output
    assert "dataset toy:" in result.stdout and video.is_file()

    listed = afi("list", "--json")
    assert [d["name"] for d in json.loads(listed.stdout)] == ["toy"]
    table = afi("list")
    assert "toy" in table.stdout and "96x64" in table.stdout

    shown = json.loads(afi("show", "toy", "--json").stdout)
    assert shown["shot_count"] == 3 and shown["disk_bytes_now"] > 0
    text = afi("show", "toy").stdout
    for field in ("triplets", "splits", "dropped", "cadence", "disk"):
        assert field in text

    removed = afi("rm", "toy")
    assert removed.exit_code == 0 and "removed dataset toy" in removed.stdout
    assert json.loads(afi("list", "--json").stdout) == []


def test_add_video_with_options_and_json(afi, tmp_path: Path) -> None:
    synth_video(tmp_path / "clip.mp4", clips=2, frames_per_clip=16, width=128, height=96)
    result = afi(
        "add",
        "clip",
        str(tmp_path / "clip.mp4"),
        "--max-side",
        "64",
        "--detector",
        "adaptive",
        "--json",
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert (record["width"], record["height"]) == (64, 48) and record["shot_count"] == 2
    assert record["params"]["cuts"]["detector"] == "adaptive"
    # Two shots cannot fill three splits: the import says which split is missing, and what for.
    missing = [s for s in ("val", "test") if not (record["split_counts"] or {}).get(s)]
    assert missing and [w.split(" triplets")[0] for w in record["warnings"]] == [
        f"dataset clip has no {s}" for s in missing
    ]
    assert all("add footage, or raise --" in w for w in record["warnings"])


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (("add", "x", "{tmp}/missing", "--format", "frames"), 2, "does not exist"),
        (("add", "x", "{tmp}", "--format", "tarball"), 2, "unknown dataset format"),
        (("add", "x", "{tmp}", "--format", "frames"), 2, "no images"),
        (("add", "x", "{tmp}", "--letterbox", "stretch"), 2, "letterbox policy"),
        (("synth", "x", "--size", "33"), 2, "even"),
        (("show", "nope"), 1, "nope"),
        (("rm", "nope"), 1, "nope"),
    ],
)
def test_bad_input_is_one_line(
    afi, tmp_path: Path, args: tuple[str, ...], code: int, fragment: str
) -> None:
    result = afi(*(a.replace("{tmp}", str(tmp_path)) for a in args))
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in result.output
