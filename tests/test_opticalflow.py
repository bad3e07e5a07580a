"""Intermediate flows for in-betweening: DIS both ways, projected to the in-between's time."""

from __future__ import annotations

import numpy as np

from afi.opticalflow import backward_warp, gray, intermediate_flows, project_flow

HOLE = 99.0  # the fallback's value, to tell where no pixel landed


def test_projection_moves_each_motion_to_where_the_pixel_is_at_t() -> None:
    flow = np.zeros((40, 60, 2), np.float32)
    flow[10:30, 10:30, 0] = 8.0  # a 20x20 square moving 8 px right over a still background
    projected = project_flow(flow, 0.5, np.full_like(flow, HOLE))
    assert np.allclose(projected[20, 24], (-4.0, 0.0))  # the square's middle, 4 px on at t = 0.5
    assert np.allclose(projected[20, 50], (0.0, 0.0))  # still background
    assert np.allclose(projected[20, 11], (HOLE, HOLE))  # uncovered at t, seen by no pixel of frame 0
    assert np.allclose(project_flow(flow, 0.0, np.full_like(flow, HOLE)), 0.0)  # at 0 nothing moved


def test_a_moving_drawing_is_warped_to_its_place_at_t() -> None:
    """A flat disc with an outline moving 6 px: the in-between shows it 3 px on."""
    def frame(shift: float) -> np.ndarray:
        yy, xx = np.mgrid[0:64, 0:96]
        distance = np.hypot(xx - 40 - shift, yy - 32)
        image = np.full((64, 96, 3), 230, np.uint8)
        image[distance < 14] = (200, 80, 60)
        image[(distance >= 14) & (distance < 16)] = 20
        return image

    frame0, frame1, truth = frame(0), frame(6), frame(3)
    flow_t0, flow_t1 = intermediate_flows(gray(frame0), gray(frame1), 0.5)
    middle = 0.5 * backward_warp(frame0, flow_t0).astype(np.float32) + 0.5 * backward_warp(frame1, flow_t1)
    blend = 0.5 * frame0.astype(np.float32) + 0.5 * frame1
    error, blend_error = np.abs(middle - truth).mean(), np.abs(blend - truth).mean()
    assert error < blend_error / 3, (error, blend_error)


def test_still_frames_have_no_motion() -> None:
    image = np.random.default_rng(0).integers(0, 255, (48, 64), dtype=np.uint8)
    flow_t0, flow_t1 = intermediate_flows(image, image, 0.5)
    assert np.abs(flow_t0).max() < 0.5 and np.abs(flow_t1).max() < 0.5
