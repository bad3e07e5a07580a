"""Dataset services the CLI (and the trainer) call: add, synth, list, show, rm, open a split.

Every import is atomic: frames are written to a temporary folder, the registry rows are added in
one transaction, and the folder is renamed into place inside that transaction; any failure
removes the folder and rolls the rows back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from afi.data.importers import (
    FORMATS,
    Collection,
    ImportOptions,
    ProgressFn,
    assemble,
    atd_entries,
    collect_sequence,
    import_frames,
    import_triplet_set,
    import_videos,
    vimeo_entries,
)
from afi.data.split import SPLITS
from afi.data.storage import DatasetBuilder, check_dataset_name, discard_tree, disk_usage
from afi.data.synth import SynthConfig, generate_cartoon
from afi.data.video import frames_from_arrays, write_video
from afi.errors import UsageError
from registry.datasets import (
    NewDataset,
    NewFrame,
    NewTriplet,
    add_dataset,
    get_dataset,
    list_datasets,
    list_frames,
    list_triplets,
    remove_dataset,
)
from registry.db import session_scope
from registry.errors import NotFound
from registry.records import DatasetRecord

if TYPE_CHECKING:
    from afi.data.loader import AugmentConfig, TripletDataset

SHOTS_FILE = "shots.json"  # registry shot number -> source label (video#shot, clip folder)


@dataclass(frozen=True)
class ImportResult:
    record: DatasetRecord
    warnings: tuple[str, ...]  # per-file problems that were skipped, one line each


def _check_name_free(engine: Engine, name: str) -> None:
    check_dataset_name(name)
    if not name[0].isalpha():
        # get_dataset takes a name or an id: a name made of digits would read as an id.
        raise UsageError(f"bad dataset name {name!r}: start it with a letter")
    with session_scope(engine) as s:
        try:
            get_dataset(s, name)
        except NotFound:
            return
    raise UsageError(
        f"dataset {name!r} already exists: pick another name or `afi dataset rm {name}`"
    )


def _build(
    engine: Engine,
    name: str,
    fmt: str,
    source: str,
    options: ImportOptions,
    collect: Callable[[DatasetBuilder], Collection],
    extra_params: dict[str, Any] | None = None,
) -> ImportResult:
    options = options.validate()
    _check_name_free(engine, name)
    with DatasetBuilder(name, options.image_format) as builder:
        collection = collect(builder)
        assembled = assemble(collection, options)
        for path in assembled.unused_paths:
            builder.remove_frame(path)
        builder.write_text(SHOTS_FILE, json.dumps(list(assembled.shot_labels), indent=0))
        new = NewDataset(
            name=name,
            format=fmt,
            root=str(builder.final_root),
            source=source,
            width=assembled.size[0],
            height=assembled.size[1],
            shot_count=len(assembled.shot_labels),
            frame_count=len(assembled.frames),
            triplet_count=len(assembled.triplets),
            split_counts=assembled.split_counts,
            filter_stats=assembled.filter_stats,
            params={**options.to_dict(), **(extra_params or {})},
            content_hash=builder.content_hash([f.path for f in assembled.frames]),
            disk_bytes=builder.disk_bytes(),
        )
        frames = [
            NewFrame(shot=f.shot, idx=f.idx, path=f.path, pts=f.pts, split=f.split)
            for f in assembled.frames
        ]
        triplets = [
            NewTriplet(key=t.key, split=t.split, shot=t.shot, frames=t.frames, t=t.t)
            for t in assembled.triplets
        ]
        with session_scope(engine) as s:
            record = add_dataset(s, new, frames, triplets)
            builder.publish()
    return ImportResult(record=record, warnings=tuple(collection.warnings))


def add_dataset_from_path(
    engine: Engine,
    name: str,
    path: Path,
    fmt: str,
    options: ImportOptions = ImportOptions(),
    progress: ProgressFn | None = None,
) -> ImportResult:
    """`afi dataset add NAME PATH --format ...`."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown dataset format {fmt!r}: choose one of {', '.join(FORMATS)}")
    path = Path(path).expanduser()
    if not path.exists():
        raise UsageError(f"{path} does not exist: check the path")

    def collect(builder: DatasetBuilder) -> Collection:
        if fmt == "videos":
            return import_videos(path, builder, options, progress)
        if fmt == "frames":
            return import_frames(path, builder, options, progress)
        entries = vimeo_entries(path) if fmt == "vimeo-triplet" else atd_entries(path)
        return import_triplet_set(entries, builder, options, progress)

    return _build(engine, name, fmt, str(path.resolve()), options, collect)


def synth_dataset(
    engine: Engine,
    name: str,
    config: SynthConfig = SynthConfig(),
    write_video_to: Path | None = None,
    tone_hz: float | None = 440.0,
    options: ImportOptions = ImportOptions(),
    progress: ProgressFn | None = None,
) -> ImportResult:
    """`afi dataset synth`: generate cartoons and import them through the same pipeline as a
    video (cuts, holds, curation), straight from memory so no codec noise is added. With
    `write_video_to`, the same frames are also written as an .mp4 (with a tone track)."""
    config = config.validate()
    video = generate_cartoon(config)
    # The newer generators' shots are split at their own cuts: the detector misses some cuts
    # between two painted pans, putting triplets across them. The original (easy cel) cartoons
    # keep the detector, so datasets made before stay as they were.
    known_cuts = None if config.motion == "easy" and config.style == "cel" else video.cuts
    if write_video_to is not None:
        write_video(Path(write_video_to), video.frames, config.fps, tone_hz=tone_hz)

    def collect(builder: DatasetBuilder) -> Collection:
        collection = Collection()
        frames = frames_from_arrays(video.frames, config.fps, options.max_side)
        collect_sequence(
            frames,
            "synth",
            config.fps,
            builder,
            options,
            collection,
            detect_cuts=known_cuts is None,
            progress=progress,
            total=len(video.frames),
            known_cuts=known_cuts,
        )
        return collection

    params = {"synth": {**asdict(config), "cuts": list(video.cuts)}}
    return _build(engine, name, "synth", f"synth:seed={config.seed}", options, collect, params)


def dataset_summaries(engine: Engine) -> list[DatasetRecord]:
    with session_scope(engine) as s:
        return list_datasets(s)


def dataset_details(engine: Engine, name: str) -> dict[str, Any]:
    """What `afi dataset show` prints: the record, plus the disk use measured now."""
    with session_scope(engine) as s:
        record = get_dataset(s, name)
    details = record.to_dict()
    root = Path(record.root)
    details["disk_bytes_now"] = disk_usage(root)
    details["files_present"] = root.is_dir()
    return details


def remove_dataset_files(engine: Engine, name: str, force: bool = False) -> DatasetRecord:
    """Delete the rows, then the folder. The folder goes after the commit: a failed delete of rows
    must not leave a registered dataset without its frames."""
    with session_scope(engine) as s:
        record = remove_dataset(s, name, force=force)
    discard_tree(Path(record.root))
    return record


def open_split(
    engine: Engine,
    name: str,
    split: str,
    crop: tuple[int, int] | None = None,
    augment: AugmentConfig | None = None,
    seed: int = 0,
    limit: int | None = None,
    arbitrary_t: float = 0.0,
) -> TripletDataset:
    """A TripletDataset over one split of a registered dataset. `arbitrary_t` > 0: with that
    probability a training sample is re-drawn from its shot's frames at an arbitrary t."""
    # Imported here: torch costs seconds to import, and add/synth/show never need it.
    from afi.data.loader import ShotSampler, TripletDataset

    if split not in SPLITS:
        raise UsageError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    with session_scope(engine) as s:
        record = get_dataset(s, name)
        triplets = list_triplets(s, record.id, split=split, limit=limit)
        frames = list_frames(s, record.id, split=split) if arbitrary_t > 0 else []
    if not Path(record.root).is_dir():
        raise UsageError(
            f"dataset {name!r} has no files at {record.root}: `afi dataset rm {name}` and import it again"
        )
    sampler = ShotSampler.from_frames(frames, probability=arbitrary_t) if arbitrary_t > 0 else None
    return TripletDataset(
        record.root,
        triplets,
        crop=crop,
        augment=augment,
        seed=seed,
        split=split,
        shot_sampler=sampler,
    )
