"""Triplets from the distinct drawings of one shot.

The importers slide a window (i, i + stride, i + 2 * stride) over a sequence's distinct drawings
(held frames collapsed), so the middle frame is never a copy of an end, and drop windows that
cross a cut. t comes from the drawings' timestamps: with mixed cadence (a drawing held for 2
frames, the next for 3) the middle drawing is not halfway, and t says so.

With `max_gap` above 2 the ends may also be 3, 4, ... strides apart, with the middle at every
stride between them: triplets at t = 1/3, 2/3, 1/4, ... (and larger motion at t = 1/2), so a
model learns to interpolate at any t, not only halfway.
"""

from __future__ import annotations

from afi.errors import UsageError

MAX_STRIDE = 16
MAX_GAP = 8


def check_stride(stride: int) -> int:
    if not 1 <= stride <= MAX_STRIDE:
        raise UsageError(f"stride must be between 1 and {MAX_STRIDE} drawings, got {stride}")
    return stride


def check_max_gap(max_gap: int) -> int:
    if not 2 <= max_gap <= MAX_GAP:
        raise UsageError(
            f"max gap must be between 2 and {MAX_GAP} strides between a triplet's ends (2: only "
            f"the middle drawing), got {max_gap}"
        )
    return max_gap


def windows_ending(n: int, stride: int, max_gap: int) -> list[tuple[int, int, int]]:
    """Positions (i, j, k) of every window whose last drawing is `n`: ends `gap` strides apart for
    each gap in 2..max_gap, the middle at each stride between them. max_gap=2 gives the single
    window (n - 2 * stride, n - stride, n)."""
    return [
        (n - gap * stride, n - (gap - middle) * stride, n)
        for gap in range(2, max_gap + 1)
        if n - gap * stride >= 0
        for middle in range(1, gap)
    ]


def window_t(pts0: float, pts1: float, pts2: float) -> float:
    """Where frame1 sits between frame0 (0) and frame2 (1); 0.5 when timestamps do not say."""
    span = pts2 - pts0
    if span <= 0:
        return 0.5
    return min(max((pts1 - pts0) / span, 0.0), 1.0)


def triplet_key(shot_label: str, positions: tuple[int, int, int]) -> str:
    """A stable, readable key, unique within a dataset: '<shot label>:<i>-<j>-<k>'."""
    return f"{shot_label}:{positions[0]}-{positions[1]}-{positions[2]}"
