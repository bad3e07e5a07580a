"""Classical optical flow for in-betweening: OpenCV's DIS both ways, made intermediate.

Torch-free, so the `flow` baseline (afi.video.baselines) runs without it; the `dis` flow prior of
the interpolators (afi.models.flow.DISFlow) calls the same function, so an untrained DIS-guided
model starts exactly where the baseline is.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

SMALL_MOTION_PX = 2.0  # motion at the in-between's time below which flows are not projected


def gray(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) uint8 luma, what DIS reads."""
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def intermediate_flows(gray0: np.ndarray, gray1: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    """Flows from time t back to each end, (H, W, 2) float32 pixels (x, y) each: the frame at t
    at pixel p is frame0 at p + flow_t0(p) and frame1 at p + flow_t1(p).

    DIS (Kroeger et al., ECCV 2016; medium preset) estimates flow0->1 and flow1->0; each is
    projected to time t (DAIN's flow projection, Bao et al., CVPR 2019): a pixel's motion is
    moved to where that pixel is at t. Where the motion at t is small, and where no pixel lands
    (disocclusions), the flows are made intermediate linearly as in Super SloMo (Jiang et al.,
    CVPR 2018), which reads each flow at the wrong pixel and so blurs edges that move far.
    Measured on synthetic cartoon triplets (flow baseline PSNR, linear -> this): 128x128 31.31 ->
    31.31, 256x256 31.06 -> 31.48, 854x480 30.43 -> 31.45; about 20 ms more per 480p pair.
    """
    return _projected(*bidirectional_flows(gray0, gray1), t)


def _projected(flow01: np.ndarray, flow10: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    linear_t0, linear_t1 = linear_intermediate(flow01, flow10, t)
    return (
        _projected_where_moving(linear_t0, project_flow(flow01, t, linear_t0)),
        _projected_where_moving(linear_t1, project_flow(flow10, 1 - t, linear_t1)),
    )


def intermediate_flows_and_cues(
    gray0: np.ndarray, gray1: np.ndarray, t: float, project: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`intermediate_flows` (`project` False: `linear_intermediate_flows`) plus occlusion cues
    (H, W, 2) float32 in [0, 1]: for each end, how
    badly DIS's end-to-end flow explains that end (|I0(x) - I1(x + flow01(x))|, and the same for
    frame1), read where the in-between's pixel comes from. A pixel of frame0 that its flow cannot
    find in frame1 is occluded or disoccluded there: the cue a network needs to choose between
    the two warped frames, which it could not compute from the intermediate flows alone."""
    flow01, flow10 = bidirectional_flows(gray0, gray1)
    flow_t0, flow_t1 = (_projected if project else linear_intermediate)(flow01, flow10, t)
    g0, g1 = gray0.astype(np.float32) / 255, gray1.astype(np.float32) / 255
    error0 = np.abs(g0 - backward_warp(g1, flow01))  # (H, W): frame0's pixels not found in frame1
    error1 = np.abs(g1 - backward_warp(g0, flow10))
    cues = np.dstack([backward_warp(error0, flow_t0), backward_warp(error1, flow_t1)])
    return flow_t0, flow_t1, cues


def bidirectional_flows(gray0: np.ndarray, gray1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV DIS (medium preset) both ways: flow0->1 (frame0 at x is frame1 at x + flow01(x))
    and flow1->0, (H, W, 2) float32 pixels each."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(gray0, gray1, None), dis.calc(gray1, gray0, None)


def linear_intermediate(flow01: np.ndarray, flow10: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    """Super SloMo's linear intermediate flows t->0 and t->1 from the two end-to-end flows: plain
    bidirectional DIS, with no time projection."""
    linear_t0 = cv2.addWeighted(flow01, -(1 - t) * t, flow10, t * t, 0.0)
    linear_t1 = cv2.addWeighted(flow01, (1 - t) * (1 - t), flow10, -t * (1 - t), 0.0)
    return linear_t0, linear_t1


def linear_intermediate_flows(gray0: np.ndarray, gray1: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    """Plain bidirectional DIS made intermediate linearly (no projection), as `intermediate_flows`
    returns them."""
    return linear_intermediate(*bidirectional_flows(gray0, gray1), t)


def _projected_where_moving(linear: np.ndarray, projected: np.ndarray) -> np.ndarray:
    """Below SMALL_MOTION_PX at t, reading a flow a pixel off (linear) costs less than the
    projection's rounding to whole pixels and averaging where pixels collide (measured: projecting
    everywhere lost 0.06 dB at 128x128)."""
    still = np.einsum("ijk,ijk->ij", linear, linear) < SMALL_MOTION_PX**2
    projected[still] = linear[still]
    return projected


def project_flow(flow: np.ndarray, t: float, fallback: np.ndarray) -> np.ndarray:
    """The flow back to `flow`'s first frame from time t, given `flow` from it to the other end:
    each pixel x moves to x + t flow(x) and brings -t flow(x) there (averaged where several land;
    `fallback` where none does). A 3x3 median removes the speckle of rounding to pixels."""
    h, w = flow.shape[:2]
    grid_x, grid_y = pixel_grid(h, w)
    flow_x, flow_y = cv2.split(flow)
    to_x = np.rint(grid_x + t * flow_x)
    to_y = np.rint(grid_y + t * flow_y)
    inside = (to_x >= 0) & (to_x < w) & (to_y >= 0) & (to_y < h)
    # Pixels that leave the frame all land in one extra bin, dropped below: cheaper than masking.
    # (Pixel indices are exact in float32 up to 16.7 M pixels: 4K frames have 8.3 M.)
    target = np.where(inside, to_y * w + to_x, h * w).astype(np.intp).ravel()
    landed = np.bincount(target, minlength=h * w + 1)[:-1]
    hit = landed > 0
    scale = np.zeros(h * w)
    scale[hit] = -t / landed[hit]
    projected = np.empty_like(flow)
    for axis, component in enumerate((flow_x, flow_y)):
        total = np.bincount(target, weights=component.ravel(), minlength=h * w + 1)[:-1]
        projected[..., axis] = np.where(hit, total * scale, fallback[..., axis].ravel()).reshape(h, w)
    return np.dstack([cv2.medianBlur(np.ascontiguousarray(projected[..., axis]), 3) for axis in range(2)])


@lru_cache(maxsize=8)
def pixel_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """x and y of every pixel, (H, W) float32 each; cached, as a video's frames share one size."""
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    grid_x.flags.writeable = grid_y.flags.writeable = False
    return grid_x, grid_y


def backward_warp(image: np.ndarray, flow_field: np.ndarray) -> np.ndarray:
    """image sampled at x + flow(x); (H, W, C) and (H, W, 2) float32 pixels."""
    h, w = flow_field.shape[:2]
    grid_x, grid_y = pixel_grid(h, w)
    return cv2.remap(
        image,
        grid_x + flow_field[..., 0],
        grid_y + flow_field[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
