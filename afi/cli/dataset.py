"""`afi dataset`: import videos and triplet sets, make synthetic cartoons, list, show, remove."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from afi.cli.app import (
    JsonOption,
    command,
    console,
    err_console,
    new_app,
    print_fields,
    print_json,
    print_table,
    state,
)
from afi.config import format_resolution, parse_resolution

if TYPE_CHECKING:
    from afi.data.importers import ProgressFn

app = new_app("Datasets: import videos or triplet sets, synthesise cartoons, show, remove.")

FORMAT_HELP = "videos | vimeo-triplet | atd12k | frames"
MaxGapOption = Annotated[
    int,
    typer.Option(
        help="Largest distance between a triplet's ends, in strides: above 2 also adds triplets "
        "at t = 1/3, 2/3, 1/4, ... from longer shots (2: only the middle drawing, t = 0.5)."
    ),
]


@contextmanager
def _progress_bar() -> Iterator[ProgressFn | None]:
    """One bar per source (video, shot folder); nothing when stdout is not a terminal."""
    if not console.is_terminal:
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        tasks: dict[str, Any] = {}

        def report(label: str, done: int, total: int | None) -> None:
            if label not in tasks:
                tasks[label] = progress.add_task(label, total=total)
            progress.update(tasks[label], completed=done)

        yield report


def _human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def missing_splits(record: Any) -> list[str]:
    """What a dataset without a val or test split cannot do, said at import."""
    counts, shots = record.split_counts or {}, record.shot_count
    why = {
        "val": "runs on it train without validation, so no checkpoint is picked as best",
        "test": "`afi eval` and an experiment's closing evaluation have nothing to score",
    }
    return [
        f"dataset {record.name} has no {split} triplets ({shots} shot(s): too few to hold one out "
        f"at --{split}'s share): {why[split]}; add footage, or raise --{split}"
        for split in ("val", "test") if not counts.get(split)
    ]


def _report(result: Any, as_json: bool) -> None:
    warnings = [*result.warnings, *missing_splits(result.record)]
    for warning in warnings:
        err_console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
    record = result.record
    if as_json:
        print_json({**record.to_dict(), "warnings": warnings})
        return
    stats = record.filter_stats or {}
    console.print(
        f"dataset {record.name}: {record.triplet_count} triplets from {record.shot_count} shots "
        f"({record.frame_count} frames, {format_resolution(record.width, record.height)}, "
        f"{_human_bytes(record.disk_bytes)}); kept {stats.get('kept')} of {stats.get('candidates')} candidates",
        highlight=False,
    )


@app.command()
@command
def add(
    name: Annotated[str, typer.Argument(help="Name for the new dataset.")],
    path: Annotated[
        Path, typer.Argument(help="A video, a folder of videos, or a folder in the given format.")
    ],
    fmt: Annotated[str, typer.Option("--format", "-f", help=FORMAT_HELP)] = "videos",
    max_side: Annotated[
        Optional[int], typer.Option(help="Shrink so the longer side is at most this.")
    ] = None,
    stride: Annotated[int, typer.Option(help="Distinct drawings between a triplet's frames.")] = 1,
    max_gap: MaxGapOption = 2,
    detector: Annotated[str, typer.Option(help="Cut detector: content | adaptive.")] = "content",
    threshold: Annotated[
        Optional[float], typer.Option(help="Cut threshold (default: the detector's).")
    ] = None,
    min_shot: Annotated[int, typer.Option(help="Shortest shot, in frames.")] = 8,
    fps: Annotated[
        float, typer.Option(help="Frame rate of image folders (--format frames).")
    ] = 24.0,
    image_format: Annotated[
        str, typer.Option(help="Stored frames: webp (lossless) | png.")
    ] = "webp",
    letterbox: Annotated[str, typer.Option(help="Black bars: crop | drop | keep.")] = "crop",
    min_contrast: Annotated[
        float, typer.Option(help="Drop frames with less luma std (0-255).")
    ] = 5.0,
    static_threshold: Annotated[
        float, typer.Option(help="Drop triplets whose ends differ less (mean, 0-255).")
    ] = 0.5,
    max_motion: Annotated[
        float, typer.Option(help="Drop triplets moving more (share of width per step).")
    ] = 0.15,
    dedupe: Annotated[bool, typer.Option(help="Drop near-duplicate triplets.")] = True,
    curate: Annotated[
        Optional[bool],
        typer.Option(help="Run the filters (default: yes for videos/frames, no for triplet sets)."),
    ] = None,
    val: Annotated[float, typer.Option(help="Share of shots for validation.")] = 0.05,
    test: Annotated[
        float, typer.Option(help="Share of shots for test (if the set has none).")
    ] = 0.05,
    split_seed: Annotated[int, typer.Option(help="Seed of the split by shot.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Import a dataset: videos are cut into shots, held frames collapsed, triplets curated."""
    from afi.data.curation import CurationConfig
    from afi.data.cuts import CutConfig
    from afi.data.importers import ImportOptions
    from afi.data.service import add_dataset_from_path
    from afi.data.split import SplitConfig

    triplet_set = fmt in ("vimeo-triplet", "atd12k")
    options = ImportOptions(
        max_side=max_side,
        stride=stride,
        max_gap=max_gap,
        cuts=CutConfig(detector=detector, threshold=threshold, min_shot_frames=min_shot),
        curation=CurationConfig(
            enabled=curate if curate is not None else True,
            min_contrast=min_contrast,
            static_threshold=static_threshold,
            max_motion=max_motion,
            dedupe=dedupe,
            letterbox=letterbox,
        ),
        split=SplitConfig(val=val, test=test, seed=split_seed),
        image_format=image_format,
        fps=fps,
        curate_triplet_sets=triplet_set and bool(curate),
    )
    with _progress_bar() as progress:
        result = add_dataset_from_path(state.engine(), name, path, fmt, options, progress)
    _report(result, as_json)


@app.command()
@command
def synth(
    name: Annotated[str, typer.Argument(help="Name for the new dataset.")],
    clips: Annotated[int, typer.Option(help="Shots (clips joined by hard cuts).")] = 8,
    size: Annotated[str, typer.Option(help="Frame size: 256 or 320x192 (even numbers).")] = "128",
    seed: Annotated[int, typer.Option(help="Generator seed: same seed, same cartoons.")] = 0,
    frames: Annotated[int, typer.Option(help="Frames per clip.")] = 24,
    motion: Annotated[
        str,
        typer.Option(
            help="easy | medium | hard: hard adds long arcs, overshoot, fast thin limbs, 1 px "
            "hatching and a parallax pan that occludes the characters (cel style only)."
        ),
    ] = "easy",
    style: Annotated[
        str,
        typer.Option(
            help="cel | painted: painted is a second generator (pans over painted artwork, "
            "gradient-filled vector animation) to check a gain off the training generator."
        ),
    ] = "cel",
    max_gap: MaxGapOption = 2,
    write_video: Annotated[
        Optional[Path], typer.Option(help="Also write the cartoon as an .mp4 with a tone track.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Generate 2D cartoons (outlined characters, pans, holds, cuts) and import them."""
    from afi.data.importers import ImportOptions
    from afi.data.service import synth_dataset
    from afi.data.synth import SynthConfig

    width, height = parse_resolution(size)
    config = SynthConfig(
        clips=clips, frames_per_clip=frames, width=width, height=height, seed=seed,
        motion=motion, style=style,
    )
    options = ImportOptions(max_gap=max_gap)
    with _progress_bar() as progress:
        result = synth_dataset(
            state.engine(), name, config, write_video_to=write_video, options=options,
            progress=progress,
        )
    if write_video is not None and not as_json:
        console.print(f"wrote {write_video}", highlight=False)
    _report(result, as_json)


@app.command("list")
@command
def list_datasets(as_json: JsonOption = False) -> None:
    """List registered datasets."""
    from afi.data.service import dataset_summaries

    records = dataset_summaries(state.engine())
    if as_json:
        print_json([r.to_dict() for r in records])
        return
    print_table(
        ["name", "format", "resolution", "shots", "frames", "triplets", "train/val/test", "disk"],
        (
            [
                r.name,
                r.format,
                format_resolution(r.width, r.height) if r.width and r.height else None,
                r.shot_count,
                r.frame_count,
                r.triplet_count,
                "/".join(str((r.split_counts or {}).get(s, 0)) for s in ("train", "val", "test")),
                _human_bytes(r.disk_bytes),
            ]
            for r in records
        ),
        title=f"{len(records)} dataset(s)",
    )


@app.command()
@command
def show(
    name: Annotated[str, typer.Argument(help="Dataset name (see `afi dataset list`).")],
    as_json: JsonOption = False,
) -> None:
    """Counts, resolution, splits, filter stats, cadence and disk use of a dataset."""
    from afi.data.service import dataset_details

    details = dataset_details(state.engine(), name)
    if as_json:
        print_json(details)
        return
    stats = details.get("filter_stats") or {}
    dropped = {k: v for k, v in (stats.get("dropped") or {}).items() if v}
    print_fields(
        [
            ("format", details["format"]),
            ("source", details["source"]),
            ("root", details["root"] + ("" if details["files_present"] else "  (missing!)")),
            (
                "resolution",
                format_resolution(details["width"], details["height"])
                if details["width"]
                else None,
            ),
            ("shots", details["shot_count"]),
            ("frames", details["frame_count"]),
            ("triplets", details["triplet_count"]),
            ("splits", details["split_counts"]),
            ("candidates", stats.get("candidates")),
            ("dropped", dropped or "none"),
            ("across cuts", stats.get("crossing_cut")),
            ("cadence", stats.get("cadence")),
            ("holds", stats.get("hold_histogram")),
            (
                "disk",
                f"{_human_bytes(details['disk_bytes_now'])} (at import {_human_bytes(details['disk_bytes'])})",
            ),
            ("created", details["created_at"]),
        ],
        title=f"dataset {name}",
    )


@app.command()
@command
def rm(
    name: Annotated[str, typer.Argument(help="Dataset to remove, rows and files.")],
    force: Annotated[
        bool, typer.Option(help="Remove even if runs used it (they keep their rows).")
    ] = False,
) -> None:
    """Remove a dataset's registry rows and free its disk."""
    from afi.data.service import remove_dataset_files

    record = remove_dataset_files(state.engine(), name, force=force)
    console.print(
        f"removed dataset {record.name} ({_human_bytes(record.disk_bytes)} freed)", highlight=False
    )
