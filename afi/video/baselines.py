"""Classical in-betweening, the floor every model must clear: nearest frame, cross-fade, optical flow
(`dis`: plain bidirectional DIS; `flow`: DIS projected to the in-between's time).

Each method maps frames0, frames1 (B, H, W, 3) uint8 and times (B,) in (0, 1) to the in-betweens
(B, H, W, 3) uint8: the `FrameInterpolator` contract, which a model run through afi.video.engine
meets too. This module needs no torch, so a video interpolated with a baseline never loads it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from afi.errors import UsageError
from afi.opticalflow import backward_warp, gray, intermediate_flows, linear_intermediate_flows

Method = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


class FrameInterpolator(Protocol):
    name: str  # what the output says it came from: a method, or a run and step
    identity: str  # changes whenever the output could: a method name or a weights file's sha256

    def __call__(self, frames0: np.ndarray, frames1: np.ndarray, times: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) uint8 twice and (B,) times in (0, 1) -> (B, H, W, 3) uint8."""
        ...


def nearest(frames0: np.ndarray, frames1: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The end closer in time (frame0 on a tie): what a frame-rate converter without
    interpolation shows, so every in-between is a duplicate."""
    pick_second = (times > 0.5).reshape(-1, 1, 1, 1)
    return np.where(pick_second, frames1, frames0)


def blend(frames0: np.ndarray, frames1: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Cross-fade (1 - t) * frame0 + t * frame1: right for static regions, ghosts on motion."""
    t = times.reshape(-1, 1, 1, 1).astype(np.float32)
    mixed = (1 - t) * frames0.astype(np.float32) + t * frames1.astype(np.float32)
    return _to_uint8(mixed)


def flow(frames0: np.ndarray, frames1: np.ndarray, times: np.ndarray) -> np.ndarray:
    """DIS optical flow both ways projected to time t, each end warped there, blended by
    closeness in time."""
    return np.stack([flow_pair(a, b, float(t)) for a, b, t in zip(frames0, frames1, times)])


def dis(frames0: np.ndarray, frames1: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Plain bidirectional DIS: the same, with linear intermediate flows (no time projection),
    the strongest classical method on some real animation, so it is always on the board."""
    return np.stack(
        [flow_pair(a, b, float(t), linear_intermediate_flows) for a, b, t in zip(frames0, frames1, times)]
    )


def flow_pair(frame0: np.ndarray, frame1: np.ndarray, t: float, flows_at=intermediate_flows) -> np.ndarray:
    """(H, W, 3) uint8 twice -> (H, W, 3) uint8 at time t, warped by `flows_at`'s flows."""
    flow_t0, flow_t1 = flows_at(gray(frame0), gray(frame1), t)
    warped0 = backward_warp(frame0, flow_t0).astype(np.float32)
    warped1 = backward_warp(frame1, flow_t1).astype(np.float32)
    return _to_uint8((1 - t) * warped0 + t * warped1)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


METHODS: dict[str, Method] = {"nearest": nearest, "blend": blend, "dis": dis, "flow": flow}


def baseline_method(name: str) -> Method:
    if name not in METHODS:
        raise UsageError(f"unknown method {name!r}: choose one of {', '.join(METHODS)}")
    return METHODS[name]


@dataclass(frozen=True)
class BaselineInterpolator:
    name: str

    def __post_init__(self) -> None:
        baseline_method(self.name)

    @property
    def identity(self) -> str:
        return f"method:{self.name}"

    def __call__(self, frames0: np.ndarray, frames1: np.ndarray, times: np.ndarray) -> np.ndarray:
        return METHODS[self.name](frames0, frames1, times)
