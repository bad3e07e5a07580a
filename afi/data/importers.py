"""Importers: a path on disk -> stored frames + candidate triplets, then curated rows to register.

Sequences (videos, image folders, synth cartoons) go through one streaming pipeline: each frame is
decoded once, fed to the cut detector and the hold tracker, and only new drawings are written;
candidate triplets are measured while their drawings are still in memory, and those that cross a
cut are discarded once the cuts are known. Triplet sets (Vimeo-90K triplets, ATD-12K) are taken as
they are: three images, t = 0.5, their own train/test split.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from afi.data.curation import (
    CurationConfig,
    FrameStats,
    TripletStats,
    crop_letterbox,
    curate,
    flow_motion,
    triplet_stats,
)
from afi.data.cuts import CutConfig, CutDetector, shot_of_frame
from afi.data.held import HoldConfig, HoldTracker, detect_cadence
from afi.data.split import SPLITS, SplitConfig, assign_splits
from afi.data.storage import IMAGE_FORMATS, DatasetBuilder
from afi.data.triplets import check_max_gap, check_stride, triplet_key, window_t, windows_ending
from afi.data.video import (
    VIDEO_SUFFIXES,
    DecodedFrame,
    iter_frames,
    probe_video,
    resize_to_max_side,
)
from afi.errors import UsageError

FORMATS = ("videos", "vimeo-triplet", "atd12k", "frames")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")

# (source label, units done, units total or None): importers report progress through this.
ProgressFn = Callable[[str, int, "int | None"], None]


@dataclass(frozen=True)
class ImportOptions:
    max_side: int | None = None
    stride: int = 1  # distance in drawings between a triplet's frames
    max_gap: int = 2  # largest distance between a triplet's ends, in strides (2: t = 0.5 only)
    cuts: CutConfig = field(default_factory=CutConfig)
    hold: HoldConfig = field(default_factory=HoldConfig)
    curation: CurationConfig = field(default_factory=CurationConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    image_format: str = "webp"
    fps: float = 24.0  # for image folders, which carry no timestamps
    # Standard triplet sets are imported as they are unless this asks for curation too.
    curate_triplet_sets: bool = False

    def validate(self) -> ImportOptions:
        if self.max_side is not None and self.max_side < 16:
            raise UsageError(f"--max-side must be at least 16 pixels, got {self.max_side}")
        check_stride(self.stride)
        check_max_gap(self.max_gap)
        if self.image_format not in IMAGE_FORMATS:
            raise UsageError(
                f"unknown image format {self.image_format!r}: choose one of {', '.join(IMAGE_FORMATS)}"
            )
        if not self.fps > 0:
            raise UsageError(f"--fps must be positive, got {self.fps}")
        self.cuts.validate()
        self.hold.validate()
        self.curation.validate()
        self.split.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Shot:
    label: str
    paths: list[str]  # stored drawings, in time order
    pts: list[float | None]
    size: tuple[int, int]  # (width, height)
    split: str | None = None  # given by the source (triplet sets); else assigned by shot


@dataclass(frozen=True)
class Candidate:
    shot: int  # position in Collection.shots
    members: tuple[int, int, int]  # positions in the shot's drawings
    t: float
    stats: TripletStats | None  # None when the triplet is not to be curated


@dataclass
class Collection:
    """Everything the importers found, before curation; filled source by source."""

    shots: list[Shot] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    holds: Counter[int] = field(default_factory=Counter)
    crossing_cut: int = 0
    letterboxed_sources: int = 0
    warnings: list[str] = field(default_factory=list)


def safe_label(text: str) -> str:
    """A source name usable as a folder and in triplet keys."""
    return re.sub(r"[^A-Za-z0-9._/-]+", "_", text).strip("/") or "source"


def natural_key(path: Path) -> list[Any]:
    """frame2 before frame10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def read_image(path: Path) -> np.ndarray | None:
    """(H, W, 3) uint8 RGB, or None when the file is not a readable image."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class _WindowMaker:
    """Candidate windows and their stats, measured as a sequence's drawings arrive. Keeps the
    last drawings, and the flow between two of them while windows can still use it (each
    serves several windows)."""

    def __init__(self, stride: int, max_gap: int, hold: HoldConfig) -> None:
        self.stride, self.max_gap, self.hold = stride, max_gap, hold
        self.span = max_gap * stride  # the farthest back a window reaches
        self.recent: deque[np.ndarray] = deque(maxlen=self.span + 1)
        self.stats: list[FrameStats] = []
        self.pair_motion: dict[tuple[int, int], float] = {}
        self.windows: list[tuple[tuple[int, int, int], TripletStats]] = []

    def _drawing(self, position: int) -> np.ndarray:
        return self.recent[position - len(self.stats)]

    def _motion(self, a: int, b: int) -> float:
        if (a, b) not in self.pair_motion:
            self.pair_motion[(a, b)] = flow_motion(self._drawing(a), self._drawing(b))
        return self.pair_motion[(a, b)]

    def push(self, image: np.ndarray) -> None:
        self.recent.append(image)
        self.stats.append(FrameStats.of(image))
        n = len(self.stats) - 1
        for positions in windows_ending(n, self.stride, self.max_gap):
            i, j, k = positions
            images = [self._drawing(p) for p in positions]
            frames = [self.stats[p] for p in positions]
            motions = (self._motion(i, j), self._motion(j, k))
            self.windows.append((positions, triplet_stats(images, frames, self.hold, motions)))
        for pair in [pair for pair in self.pair_motion if pair[0] <= n - self.span]:
            del self.pair_motion[pair]


def collect_sequence(
    frames: Iterable[DecodedFrame],
    label: str,
    fps: float,
    builder: DatasetBuilder,
    options: ImportOptions,
    collection: Collection,
    detect_cuts: bool,
    progress: ProgressFn | None = None,
    total: int | None = None,
    known_cuts: Sequence[int] | None = None,
) -> None:
    """Store a sequence's distinct drawings and add its shots and candidate triplets.

    `known_cuts`: frame indices where shots begin, for a source that knows them (synthetic
    cartoons) and is read with `detect_cuts=False`.

    `collection` is only changed once the whole sequence has been read, so a sequence that fails
    halfway leaves it as it was (its files are the caller's to remove).
    """
    tracker = HoldTracker(options.hold)
    cutter = CutDetector(options.cuts, fps) if detect_cuts else None
    paths: list[str] = []
    windows = _WindowMaker(options.stride, options.max_gap, options.hold)
    box, stream = (
        crop_letterbox(frames, options.curation.min_contrast)
        if options.curation.letterbox == "crop"
        else (None, iter(frames))
    )
    size = (0, 0)
    for frame in stream:
        image = frame.image
        size = (image.shape[1], image.shape[0])
        if cutter is not None:
            cutter.push(frame.index, image)
        if tracker.push(frame.index, frame.pts, image):
            paths.append(builder.frame_path(f"{label}/{frame.index:06d}"))
            builder.write_frame(paths[-1], image)
            windows.push(image)
        if progress is not None:
            progress(label, frame.index + 1, total)
    cuts = list(known_cuts or []) if cutter is None else cutter.finish()
    drawings = tracker.drawings
    shot_of = [shot_of_frame(d.frame, cuts) for d in drawings]  # non-decreasing
    members_of: dict[int, list[int]] = {}
    for i, shot in enumerate(shot_of):
        members_of.setdefault(shot, []).append(i)
    local = {i: k for members in members_of.values() for k, i in enumerate(members)}
    first_shot: dict[int, int] = {}
    for shot, members in members_of.items():
        first_shot[shot] = len(collection.shots)
        collection.shots.append(
            Shot(
                label=f"{label}#{shot:03d}",
                paths=[paths[i] for i in members],
                pts=[drawings[i].pts for i in members],
                size=size,
            )
        )
        # The last drawing of a shot is cut short by the cut (or the end): not a cadence sample.
        collection.holds.update(drawings[i].hold for i in members[:-1])
    for positions, triplet in windows.windows:
        if len({shot_of[p] for p in positions}) > 1:
            collection.crossing_cut += 1
            continue
        i, j, k = positions
        collection.candidates.append(
            Candidate(
                shot=first_shot[shot_of[i]],
                members=(local[i], local[j], local[k]),
                t=window_t(drawings[i].pts, drawings[j].pts, drawings[k].pts),
                stats=triplet,
            )
        )
    collection.letterboxed_sources += box is not None


# --- videos -------------------------------------------------------------------------------------


def find_videos(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    videos = sorted(
        p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
    )
    if not videos:
        raise UsageError(
            f"no videos ({', '.join(VIDEO_SUFFIXES)}) found under {path}: check the path or --format"
        )
    return videos


def import_videos(
    path: Path, builder: DatasetBuilder, options: ImportOptions, progress: ProgressFn | None
) -> Collection:
    """One file: any decode problem is an error. A folder: a video that fails to decode is skipped
    with a warning (its frames removed), and it is an error only when none decodes."""
    videos = find_videos(path)
    collection = Collection()
    failed: list[str] = []
    for video in videos:
        label = safe_label(
            str(video.relative_to(path).with_suffix("")) if video != path else video.stem
        )
        try:
            info = probe_video(video)
            decoded: list[int] = []  # indices of the frames read, counted on the way through
            frames = _tally(iter_frames(video, options.max_side), decoded)
            collect_sequence(
                frames,
                label,
                info.fps,
                builder,
                options,
                collection,
                detect_cuts=True,
                progress=progress,
                total=info.frame_count,
            )
        except UsageError as exc:
            if len(videos) == 1:
                raise
            builder.remove_tree(label)
            failed.append(f"{video.name} ({exc})")
            continue
        if info.frame_count and len(decoded) < info.frame_count - 1:  # 1: rounding of a duration
            # A file cut short decodes cleanly up to where it ends: say so, with the count.
            collection.warnings.append(
                f"{video.name}: decoded {len(decoded)} of the {info.frame_count} frames its header "
                "promises; the file looks truncated (imported what was there)"
            )
    if failed:
        if len(failed) == len(videos):
            raise UsageError(
                f"none of the {len(videos)} videos under {path} could be decoded; first: {failed[0]}"
            )
        collection.warnings.append(
            f"skipped {len(failed)} video(s) that could not be decoded; first: {failed[0]}"
        )
    return collection


def _tally(frames: Iterator[DecodedFrame], seen: list[int]) -> Iterator[DecodedFrame]:
    for frame in frames:
        seen.append(frame.index)
        yield frame


# --- image folders ------------------------------------------------------------------------------


def list_images(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
        key=natural_key,
    )


def _shot_images(
    path: Path, fps: float, max_side: int | None, unreadable: list[Path]
) -> Iterator[DecodedFrame]:
    """One folder's images as a frame stream; pts from the position in the listing so a skipped
    unreadable image leaves its gap in time. Mixed sizes are an error: resizing would distort."""
    first: tuple[Path, tuple[int, ...]] | None = None
    for index, image_path in enumerate(list_images(path)):
        image = read_image(image_path)
        if image is None:
            unreadable.append(image_path)
            continue
        if first is None:
            first = (image_path, image.shape)
        elif image.shape != first[1]:
            raise UsageError(
                f"mixed image sizes in {path}: {first[0].name} is {first[1][1]}x{first[1][0]}, "
                f"{image_path.name} is {image.shape[1]}x{image.shape[0]}; resize them to one size"
            )
        yield DecodedFrame(index=index, pts=index / fps, image=resize_to_max_side(image, max_side))


def import_frames(
    path: Path, builder: DatasetBuilder, options: ImportOptions, progress: ProgressFn | None
) -> Collection:
    """PATH holds one folder of images per shot (or images directly: a single shot)."""
    _require_dir(path)
    folders = sorted((p for p in path.iterdir() if p.is_dir()), key=natural_key)
    shots = [f for f in folders if list_images(f)] or ([path] if list_images(path) else [])
    if not shots:
        raise UsageError(
            f"no images ({', '.join(IMAGE_SUFFIXES)}) in {path} or its subfolders: check the path"
        )
    collection = Collection()
    unreadable: list[Path] = []
    for folder in shots:
        label = safe_label(folder.name if folder != path else path.name)
        frames = _shot_images(folder, options.fps, options.max_side, unreadable)
        collect_sequence(
            frames,
            label,
            options.fps,
            builder,
            options,
            collection,
            detect_cuts=False,
            progress=progress,
            total=len(list_images(folder)),
        )
    _warn_unreadable(collection, unreadable, path)
    return collection


def _warn_unreadable(collection: Collection, unreadable: list[Path], path: Path) -> None:
    if unreadable:
        collection.warnings.append(
            f"skipped {len(unreadable)} unreadable image(s); first: {unreadable[0]}"
        )
    if not collection.shots:
        raise UsageError(f"no readable images under {path}: the files are damaged or not images")


def _require_dir(path: Path) -> None:
    if not path.is_dir():
        raise UsageError(f"{path} is not a folder: this format imports a folder")


# --- triplet sets -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TripletEntry:
    label: str  # e.g. '00001/0001' (Vimeo) or the clip folder (ATD-12K)
    paths: tuple[Path, Path, Path]
    split: str | None  # as the set defines it, None when it does not say


def vimeo_entries(path: Path) -> list[TripletEntry]:
    """`sequences/<a>/<b>/im1..3.png` listed in `tri_trainlist.txt` / `tri_testlist.txt`; without
    the lists every sequence folder is taken and split by shot."""
    _require_dir(path)
    sequences = path / "sequences"
    if not sequences.is_dir():
        raise UsageError(
            f"{path} has no sequences/ folder: a Vimeo-90K triplet set has sequences/<a>/<b>/im1.png"
        )
    listed: dict[str, str] = {}
    for split, list_name in (("train", "tri_trainlist.txt"), ("test", "tri_testlist.txt")):
        list_file = path / list_name
        if list_file.is_file():
            listed.update(
                {line.strip(): split for line in list_file.read_text().splitlines() if line.strip()}
            )
    if not listed:
        listed = {
            f"{a.name}/{b.name}": ""
            for a in sorted(sequences.iterdir())
            if a.is_dir()
            for b in sorted(a.iterdir())
            if b.is_dir()
        }
    entries = [
        TripletEntry(
            label=name,
            paths=tuple(sequences / name / f"im{i}.png" for i in (1, 2, 3)),
            split=split or None,
        )  # type: ignore[arg-type]
        for name, split in sorted(listed.items())
    ]
    if not entries:
        raise UsageError(f"no sequences under {sequences}: expected sequences/<a>/<b>/im1..3.png")
    return entries


def _atd_clip(folder: Path) -> tuple[Path, Path, Path] | None:
    found = []
    for i in (1, 2, 3):
        matches = [folder / f"frame{i}{suffix}" for suffix in (".png", ".jpg", ".jpeg")]
        existing = [m for m in matches if m.is_file()]
        if not existing:
            return None
        found.append(existing[0])
    return found[0], found[1], found[2]


def atd_entries(path: Path) -> list[TripletEntry]:
    """`<clip>/frame1..3.(png|jpg)`, directly under PATH or under split folders (a folder whose
    name contains 'test' or 'val' is that split, e.g. ATD-12K's test_2k_540p; others are train)."""
    _require_dir(path)

    def clips(folder: Path, split: str | None, prefix: str) -> list[TripletEntry]:
        entries = []
        for clip in sorted(p for p in folder.iterdir() if p.is_dir()):
            frames = _atd_clip(clip)
            if frames is not None:
                entries.append(
                    TripletEntry(label=f"{prefix}{clip.name}", paths=frames, split=split)
                )
        return entries

    entries = clips(path, None, "")
    if not entries:
        for group in sorted(p for p in path.iterdir() if p.is_dir()):
            name = group.name.lower()
            split = "test" if "test" in name else "val" if "val" in name else "train"
            entries.extend(clips(group, split, f"{group.name}/"))
    if not entries:
        raise UsageError(
            f"no <clip>/frame1..3.(png|jpg) folders under {path}: check the path or --format"
        )
    return entries


def import_triplet_set(
    entries: Sequence[TripletEntry],
    builder: DatasetBuilder,
    options: ImportOptions,
    progress: ProgressFn | None,
) -> Collection:
    """Each entry becomes a shot of three frames. An entry with a missing or unreadable image, or
    with images of different sizes, is skipped with a warning."""
    collection = Collection()
    skipped: list[str] = []
    for done, entry in enumerate(entries, start=1):
        read = [read_image(p) for p in entry.paths]
        images = [
            resize_to_max_side(image, options.max_side) for image in read if image is not None
        ]
        if len(images) < 3:
            skipped.append(f"{entry.label} (missing or unreadable image)")
            continue
        if len({image.shape for image in images}) > 1:
            skipped.append(f"{entry.label} (images of different sizes)")
            continue
        label = safe_label(entry.label)
        paths = [builder.frame_path(f"{label}/im{i}") for i in (1, 2, 3)]
        for relative, image in zip(paths, images, strict=True):
            builder.write_frame(relative, image)
        stats = None
        if options.curate_triplet_sets:
            stats = triplet_stats(images, [FrameStats.of(image) for image in images], options.hold)
        h, w = images[0].shape[:2]
        collection.shots.append(
            Shot(label=label, paths=paths, pts=[None, None, None], size=(w, h), split=entry.split)
        )
        collection.candidates.append(
            Candidate(shot=len(collection.shots) - 1, members=(0, 1, 2), t=0.5, stats=stats)
        )
        if progress is not None:
            progress("triplets", done, len(entries))
    if skipped:
        if len(skipped) == len(entries):
            raise UsageError(
                f"none of the {len(entries)} triplets could be read; first: {skipped[0]}"
            )
        collection.warnings.append(f"skipped {len(skipped)} triplet(s); first: {skipped[0]}")
    return collection


# --- assembly -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameRow:
    shot: int
    idx: int
    path: str
    pts: float | None
    split: str


@dataclass(frozen=True)
class TripletRow:
    key: str
    split: str
    shot: int
    frames: tuple[int, int, int]  # positions in Assembled.frames
    t: float


@dataclass(frozen=True)
class Assembled:
    """Curated rows ready to register, and what was measured on the way."""

    frames: tuple[FrameRow, ...]
    triplets: tuple[TripletRow, ...]
    shot_labels: tuple[str, ...]  # registry shot number -> source label
    unused_paths: tuple[str, ...]  # stored files no kept triplet uses: to delete
    size: tuple[int, int]  # the most common (width, height)
    split_counts: dict[str, int]
    filter_stats: dict[str, Any]


def assemble(collection: Collection, options: ImportOptions) -> Assembled:
    """Curate the candidates, split by shot, number shots and frames for the registry."""
    stats = [c.stats for c in collection.candidates if c.stats is not None]
    if len(stats) == len(collection.candidates):
        result = curate(stats, options.curation)
        kept = [collection.candidates[i] for i in result.kept]
        filter_stats: dict[str, Any] = result.to_stats(len(collection.candidates))
    else:
        kept = list(collection.candidates)
        filter_stats = {"candidates": len(kept), "kept": len(kept), "dropped": {}, "curated": False}
    if not kept:
        raise UsageError(
            f"no triplets left out of {len(collection.candidates)} candidates (dropped: "
            f"{filter_stats.get('dropped')}): the source is too short, or loosen the filters"
        )
    filter_stats.update(
        crossing_cut=collection.crossing_cut,
        letterboxed_sources=collection.letterboxed_sources,
        hold_histogram={str(k): v for k, v in sorted(collection.holds.items())},
    )
    if collection.holds:
        filter_stats["cadence"] = detect_cadence(list(collection.holds.elements())).name

    used_shots = sorted({c.shot for c in kept})
    given = {collection.shots[s].label: collection.shots[s].split for s in used_shots}
    free = [label for label, split in given.items() if split is None]
    given_train = [label for label, split in given.items() if split == "train"]
    # A set that defines its test split (Vimeo lists, ATD folders) only needs a val carved out.
    has_test = any(split == "test" for split in given.values())
    assigned = assign_splits(free, options.split, ("train", "val") if has_test else SPLITS)
    assigned.update(assign_splits(given_train, options.split, ("train", "val")))

    shot_number = {s: n for n, s in enumerate(used_shots)}
    used_members: dict[int, set[int]] = {}
    for c in kept:
        used_members.setdefault(c.shot, set()).update(c.members)
    frames: list[FrameRow] = []
    position: dict[tuple[int, int], int] = {}
    for s in used_shots:
        shot = collection.shots[s]
        split = assigned.get(shot.label) or shot.split or "train"
        for member in sorted(used_members[s]):
            position[(s, member)] = len(frames)
            frames.append(
                FrameRow(shot_number[s], member, shot.paths[member], shot.pts[member], split)
            )
    triplets = tuple(
        TripletRow(
            key=triplet_key(collection.shots[c.shot].label, c.members),
            split=frames[position[(c.shot, c.members[0])]].split,
            shot=shot_number[c.shot],
            frames=(
                position[(c.shot, c.members[0])],
                position[(c.shot, c.members[1])],
                position[(c.shot, c.members[2])],
            ),
            t=c.t,
        )
        for c in kept
    )
    used_paths = {f.path for f in frames}
    unused = tuple(p for shot in collection.shots for p in shot.paths if p not in used_paths)
    sizes = Counter(collection.shots[s].size for s in used_shots)
    return Assembled(
        frames=tuple(frames),
        triplets=triplets,
        shot_labels=tuple(collection.shots[s].label for s in used_shots),
        unused_paths=unused,
        size=sizes.most_common(1)[0][0],
        split_counts=dict(Counter(t.split for t in triplets)),
        filter_stats=filter_stats,
    )
