"""Splits are by shot, deterministic, and give val/test a shot as soon as there are three."""

from __future__ import annotations

import pytest

from afi.data.split import SplitConfig, assign_splits
from afi.errors import UsageError


def test_deterministic_whatever_the_order() -> None:
    shots = [f"clip#{i:03d}" for i in range(40)]
    assert assign_splits(shots) == assign_splits(list(reversed(shots)))
    assert assign_splits(shots, SplitConfig(seed=1)) != assign_splits(shots)


def test_fractions_and_minimums() -> None:
    counts = list(
        assign_splits([str(i) for i in range(100)], SplitConfig(val=0.1, test=0.2)).values()
    )
    assert (counts.count("train"), counts.count("val"), counts.count("test")) == (70, 10, 20)
    small = list(assign_splits(["a", "b", "c"]).values())
    assert sorted(small) == ["test", "train", "val"]
    assert set(assign_splits(["a", "b"]).values()) == {"train"}


def test_only_val_carved_when_test_is_given() -> None:
    assigned = assign_splits(
        [str(i) for i in range(20)], SplitConfig(val=0.1, test=0.3), ("train", "val")
    )
    assert sorted(set(assigned.values())) == ["train", "val"]


def test_bad_fractions_are_a_usage_error() -> None:
    with pytest.raises(UsageError):
        SplitConfig(val=0.6, test=0.5).validate()
