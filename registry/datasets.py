"""Datasets: the frames stored once under a root folder, and the triplets built from them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, aliased

from registry.clock import utcnow
from registry.errors import DuplicateName, RegistryError
from registry.lookup import find_row
from registry.records import DatasetRecord, FrameRecord, TripletRecord
from registry.schema import SqlDataset, SqlFrame, SqlRun, SqlTriplet


@dataclass(frozen=True)
class NewDataset:
    name: str
    format: str
    root: str
    source: str | None = None
    width: int | None = None
    height: int | None = None
    shot_count: int = 0
    frame_count: int = 0
    triplet_count: int = 0
    split_counts: dict[str, Any] | None = None
    filter_stats: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    content_hash: str | None = None
    disk_bytes: int = 0


@dataclass(frozen=True)
class NewFrame:
    shot: int
    idx: int
    path: str  # relative to the dataset root
    pts: float | None
    split: str


@dataclass(frozen=True)
class NewTriplet:
    key: str
    split: str
    shot: int
    frames: tuple[int, int, int]  # positions in the `frames` sequence passed alongside
    t: float


def add_dataset(
    s: Session, dataset: NewDataset, frames: Sequence[NewFrame], triplets: Sequence[NewTriplet]
) -> DatasetRecord:
    """Record a dataset with its frames and triplets in bulk (Core executemany, not the ORM)."""
    outside = next((t for t in triplets if any(not 0 <= i < len(frames) for i in t.frames)), None)
    if outside is not None:
        raise RegistryError(
            f"triplet {outside.key!r} points at frame positions {outside.frames} "
            f"but only {len(frames)} frames were given: use positions in the frames list"
        )
    if s.scalar(select(SqlDataset.id).where(SqlDataset.name == dataset.name)) is not None:
        raise DuplicateName(
            f"dataset {dataset.name!r} already exists: pick another name or `afi dataset rm` it"
        )
    row = SqlDataset(**asdict(dataset), created_at=utcnow())
    s.add(row)
    s.flush()
    if frames:
        s.execute(insert(SqlFrame), [{"dataset_id": row.id, **asdict(f)} for f in frames])
    if triplets:
        positions = select(SqlFrame.shot, SqlFrame.idx, SqlFrame.id).where(
            SqlFrame.dataset_id == row.id
        )
        frame_ids = {(shot, idx): frame_id for shot, idx, frame_id in s.execute(positions)}
        s.execute(insert(SqlTriplet), [_triplet_row(row.id, t, frames, frame_ids) for t in triplets])
    return DatasetRecord.from_row(row)


def _triplet_row(
    dataset_id: int,
    triplet: NewTriplet,
    frames: Sequence[NewFrame],
    frame_ids: dict[tuple[int, int], int],
) -> dict[str, Any]:
    ids = [frame_ids[(frames[i].shot, frames[i].idx)] for i in triplet.frames]
    return {
        "dataset_id": dataset_id,
        "key": triplet.key,
        "split": triplet.split,
        "shot": triplet.shot,
        "frame0_id": ids[0],
        "frame1_id": ids[1],
        "frame2_id": ids[2],
        "t": triplet.t,
    }


def _find(s: Session, name_or_id: str | int) -> SqlDataset:
    return find_row(s, SqlDataset, name_or_id, "dataset", "afi dataset list")


def get_dataset(s: Session, name_or_id: str | int) -> DatasetRecord:
    return DatasetRecord.from_row(_find(s, name_or_id))


def list_datasets(s: Session) -> list[DatasetRecord]:
    return [DatasetRecord.from_row(r) for r in s.scalars(select(SqlDataset).order_by(SqlDataset.id))]


def remove_dataset(s: Session, name: str, force: bool = False) -> DatasetRecord:
    """Delete the dataset's rows (frames, triplets, evaluations on it); the caller frees the disk.

    Runs that trained on it keep their rows with no dataset; without `force` that is refused.
    """
    row = _find(s, name)
    users = s.scalar(select(func.count(SqlRun.id)).where(SqlRun.dataset_id == row.id)) or 0
    if users and not force:
        raise RegistryError(
            f"dataset {row.name!r} is used by {users} run(s): remove them first or pass --force"
        )
    record = DatasetRecord.from_row(row)
    s.delete(row)
    s.flush()
    return record


def list_frames(s: Session, dataset_id: int, split: str | None = None) -> list[FrameRecord]:
    query = select(SqlFrame).where(SqlFrame.dataset_id == dataset_id)
    if split is not None:
        query = query.where(SqlFrame.split == split)
    query = query.order_by(SqlFrame.shot, SqlFrame.idx)
    return [FrameRecord.from_row(r) for r in s.scalars(query)]


def list_triplets(
    s: Session, dataset_id: int, split: str | None = None, limit: int | None = None
) -> list[TripletRecord]:
    frame0, frame1, frame2 = aliased(SqlFrame), aliased(SqlFrame), aliased(SqlFrame)
    query = (
        select(
            SqlTriplet.id,
            SqlTriplet.dataset_id,
            SqlTriplet.key,
            SqlTriplet.split,
            SqlTriplet.shot,
            frame0.path.label("frame0"),
            frame1.path.label("frame1"),
            frame2.path.label("frame2"),
            SqlTriplet.t,
        )
        .join(frame0, frame0.id == SqlTriplet.frame0_id)
        .join(frame1, frame1.id == SqlTriplet.frame1_id)
        .join(frame2, frame2.id == SqlTriplet.frame2_id)
        .where(SqlTriplet.dataset_id == dataset_id)
        .order_by(SqlTriplet.id)
        .limit(limit)
    )
    if split is not None:
        query = query.where(SqlTriplet.split == split)
    return [TripletRecord.from_row(r) for r in s.execute(query)]
