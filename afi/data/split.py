"""Train/val/test by shot: frames of one shot are near-copies of each other, so a shot split across
train and test would leak. Deterministic: shots are ordered by a seeded hash of their label, so
the same shots land in the same split on every import, whatever order they were found in."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from afi.errors import UsageError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitConfig:
    val: float = 0.05
    test: float = 0.05
    seed: int = 0

    def validate(self) -> SplitConfig:
        if self.val < 0 or self.test < 0 or self.val + self.test >= 1:
            raise UsageError(
                f"val ({self.val}) and test ({self.test}) fractions must be >= 0 and sum below 1"
            )
        return self


def _share(count: int, fraction: float) -> int:
    """At least one shot for a non-zero fraction once there are 3 shots, so val/test exist."""
    if fraction <= 0 or count < 3:
        return 0
    return max(1, round(count * fraction))


def assign_splits(
    shot_labels: Sequence[str], config: SplitConfig = SplitConfig(), splits: Sequence[str] = SPLITS
) -> dict[str, str]:
    """shot label -> split name. `splits` names the (train, val, test) targets; pass
    ("train", "val") to carve only a validation set out of a set whose test split is given."""
    config = config.validate()
    ordered = sorted(
        set(shot_labels),
        key=lambda label: hashlib.sha256(f"{config.seed}:{label}".encode()).hexdigest(),
    )
    n_val = _share(len(ordered), config.val)
    n_test = _share(len(ordered), config.test) if len(splits) > 2 else 0
    assignment = {label: splits[0] for label in ordered}
    for label in ordered[:n_val]:
        assignment[label] = splits[1]
    for label in ordered[n_val : n_val + n_test]:
        assignment[label] = splits[2]
    return assignment
