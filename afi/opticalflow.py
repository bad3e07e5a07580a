"""Classical optical flow for in-betweening: OpenCV's DIS both ways, made intermediate.

Torch-free, so the `flow` baseline (afi.video.baselines) runs without it; the `dis` flow prior of
the interpolators (afi.models.flow.DISFlow) calls the same function, so an untrained DIS-guided
model starts exactly where the baseline is.
"""

from __future__ import annotations

import cv2
import numpy as np


def gray(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) uint8 luma, what DIS reads."""
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def intermediate_flows(gray0: np.ndarray, gray1: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    """Flows from time t back to each end, (H, W, 2) float32 pixels (x, y) each: the frame at t
    at pixel p is frame0 at p + flow_t0(p) and frame1 at p + flow_t1(p).

    DIS (Kroeger et al., ECCV 2016; medium preset) estimates flow0->1 and flow1->0; each is made
    intermediate linearly in time as in Super SloMo (Jiang et al., CVPR 2018): combining both
    directions cancels most of the error of reading a flow at the wrong pixel.
    """
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow01 = dis.calc(gray0, gray1, None)  # frame0 at x is frame1 at x + flow01(x)
    flow10 = dis.calc(gray1, gray0, None)
    flow_t0 = -(1 - t) * t * flow01 + t * t * flow10
    flow_t1 = (1 - t) * (1 - t) * flow01 - t * (1 - t) * flow10
    return flow_t0, flow_t1


def backward_warp(image: np.ndarray, flow_field: np.ndarray) -> np.ndarray:
    """image sampled at x + flow(x); (H, W, C) and (H, W, 2) float32 pixels."""
    h, w = flow_field.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(
        image,
        grid_x + flow_field[..., 0],
        grid_y + flow_field[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
