"""Resumable jobs: the output is encoded in fixed-size segments inside a work folder beside it.

`OUT.afi-work/state.json` records the job's key (input file and every setting the pixels depend
on) and how many output frames each finished segment holds. A segment is listed only after its
file is complete, so a job killed at any moment loses at most the segment it was writing; a rerun
with --resume skips the listed segments. Joining them at the end is a copy of packets.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from afi.config import config_hash
from afi.errors import UsageError

STATE_FILE = "state.json"
STATE_VERSION = 1
WORK_SUFFIX = ".afi-work"


def work_folder_for(output: Path) -> Path:
    return output.with_name(output.name + WORK_SUFFIX)


def job_key(input_path: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """What a resumed job must share with the one it continues: the same input file, unchanged,
    and the same settings hash."""
    status = input_path.stat()
    return {
        "input": str(input_path.resolve()),
        "input_bytes": status.st_size,
        "input_mtime_ns": status.st_mtime_ns,
        "settings": config_hash(settings),
    }


@dataclass
class WorkFolder:
    path: Path
    key: dict[str, Any]
    segment_frames: int
    # Segments are written in the output's container format, so joining them copies packets.
    suffix: str
    finished: list[int] = field(default_factory=list)  # output frames in each finished segment

    @classmethod
    def open(cls, output: Path, key: dict[str, Any], segment_frames: int, resume: bool) -> WorkFolder:
        """A fresh work folder, or with `resume` the one an interrupted job with the same key left."""
        if segment_frames < 1:
            raise UsageError(f"segment size must be at least 1 frame, got {segment_frames}")
        path = work_folder_for(output)
        if path.exists() and not resume:
            raise UsageError(
                f"an interrupted job left {path}: pass --resume to continue it, or delete that folder to start over"
            )
        if path.exists():
            return cls._load(path, key, segment_frames, output.suffix)
        try:
            path.mkdir()
        except OSError as exc:
            raise UsageError(f"cannot write beside {output}: {exc.strerror} ({path})") from None
        folder = cls(path=path, key=key, segment_frames=segment_frames, suffix=output.suffix)
        folder._save()
        return folder

    @classmethod
    def _load(cls, path: Path, key: dict[str, Any], segment_frames: int, suffix: str) -> WorkFolder:
        try:
            state = json.loads((path / STATE_FILE).read_text())
        except (OSError, ValueError):
            raise UsageError(f"{path} has no readable {STATE_FILE}: delete that folder to start over") from None
        if (
            state.get("version") != STATE_VERSION
            or state.get("key") != key
            or state.get("segment_frames") != segment_frames
        ):
            raise UsageError(
                f"{path} belongs to a job with another input or settings: "
                "rerun with the same ones, or delete it to start over"
            )
        folder = cls(path=path, key=key, segment_frames=segment_frames, suffix=suffix, finished=list(state["finished"]))
        # Keep only the leading run of segments whose files are still there.
        present = 0
        while present < len(folder.finished) and folder.segment_path(present).is_file():
            present += 1
        folder.finished = folder.finished[:present]
        return folder

    @property
    def done_frames(self) -> int:
        return sum(self.finished)

    def segment_path(self, index: int) -> Path:
        return self.path / f"segment-{index:05d}{self.suffix}"

    def mark_finished(self, frames: int) -> None:
        """The next segment (number len(finished)) is complete on disk with `frames` frames."""
        self.finished.append(frames)
        self._save()

    def _save(self) -> None:
        state = {
            "version": STATE_VERSION,
            "key": self.key,
            "segment_frames": self.segment_frames,
            "finished": self.finished,
        }
        temporary = self.path / f".{STATE_FILE}.tmp"
        temporary.write_text(json.dumps(state, indent=1))
        os.replace(temporary, self.path / STATE_FILE)  # a reader sees the old state or the new one

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
