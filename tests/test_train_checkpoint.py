from dataclasses import dataclass

import pytest
import torch

from afi.train.checkpoint import (
    CorruptCheckpoint,
    checkpoint_path,
    checkpoints_to_delete,
    file_sha256,
    load_checkpoint,
    save_checkpoint,
)


def test_save_is_atomic_and_hashed(tmp_path):
    state = {"step": 7, "weights": torch.arange(6.0).view(2, 3), "rng": (3, (1, 2), None)}
    written = save_checkpoint(state, checkpoint_path(tmp_path / "ckpt", 7))
    assert written.path.name == "step-00000007.pt"
    assert [p.name for p in written.path.parent.iterdir()] == [
        written.path.name
    ]  # no temp file left
    assert written.size_bytes == written.path.stat().st_size
    assert written.sha256 == file_sha256(written.path)
    loaded = load_checkpoint(written.path, written.sha256)
    assert loaded["step"] == 7 and torch.equal(loaded["weights"], state["weights"])


def test_truncated_or_missing_file_is_refused(tmp_path):
    written = save_checkpoint({"w": torch.zeros(100)}, tmp_path / "a.pt")
    with open(written.path, "r+b") as handle:
        handle.truncate(written.size_bytes // 2)
    with pytest.raises(CorruptCheckpoint, match="fails its sha256 check.*truncated"):
        load_checkpoint(written.path, written.sha256)
    with pytest.raises(CorruptCheckpoint, match="cannot be read"):
        load_checkpoint(tmp_path / "gone.pt", written.sha256)


class Unpicklable:
    def __reduce__(self):
        raise TypeError("cannot be saved")


def test_failed_write_leaves_no_file(tmp_path):
    with pytest.raises(TypeError, match="cannot be saved"):
        save_checkpoint({"bad": Unpicklable()}, tmp_path / "b.pt")
    assert list(tmp_path.iterdir()) == []


@dataclass
class Row:
    id: int
    step: int


def test_retention_keeps_last_k_and_best():
    rows = [Row(id=i, step=10 * i) for i in range(1, 7)]
    assert [r.id for r in checkpoints_to_delete(rows, keep_last=2, best_id=2)] == [4, 3, 1]
    assert checkpoints_to_delete(rows[:2], keep_last=2, best_id=None) == []
