"""Triplets from the distinct drawings of one shot.

The importers slide a window (i, i + stride, i + 2 * stride) over a sequence's distinct drawings
(held frames collapsed), so the middle frame is never a copy of an end, and drop windows that
cross a cut. t comes from the drawings' timestamps: with mixed cadence (a drawing held for 2
frames, the next for 3) the middle drawing is not halfway, and t says so.
"""

from __future__ import annotations

from afi.errors import UsageError

MAX_STRIDE = 16


def check_stride(stride: int) -> int:
    if not 1 <= stride <= MAX_STRIDE:
        raise UsageError(f"stride must be between 1 and {MAX_STRIDE} drawings, got {stride}")
    return stride


def window_t(pts0: float, pts1: float, pts2: float) -> float:
    """Where frame1 sits between frame0 (0) and frame2 (1); 0.5 when timestamps do not say."""
    span = pts2 - pts0
    if span <= 0:
        return 0.5
    return min(max((pts1 - pts0) / span, 0.0), 1.0)


def triplet_key(shot_label: str, positions: tuple[int, int, int]) -> str:
    """A stable, readable key, unique within a dataset: '<shot label>:<i>-<j>-<k>'."""
    return f"{shot_label}:{positions[0]}-{positions[1]}-{positions[2]}"
