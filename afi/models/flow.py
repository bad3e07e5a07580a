"""Intermediate-flow estimators: a light IFNet (learned) and DIS (classical, no weights).

IFNet, after RIFE (Huang et al., ECCV 2022):
Blocks run coarse to fine (input scales 1/4, 1/2, 1). Each sees both frames, both frames warped by
the current estimate, the current flows and blend mask and the time t, and adds a correction to
the intermediate flows F_t->0, F_t->1 and to the mask logit. The frames are then backward-warped
with grid_sample and blended by the mask: occluded pixels take the frame where they are visible.

`dis+refine` starts the same blocks from DIS's flows instead of zero (a learned correction of a
classical estimate: the network fixes DIS where it is wrong, at occlusions, thin lines and large
motion, instead of learning flow from nothing); with zero-initialised corrections the untrained
estimator is exactly the plain bidirectional DIS baseline (`dis`: linear intermediate flows, no
time projection, which beat the projected `flow` on painted pans, on hard cel motion and on real
animation, and lost only on the easy cel cartoons the projection was tuned on). A privileged teacher block (RIFE's) also sees the
middle frame during training; the student's flows are pulled towards the teacher's where the
teacher reconstructs better (afi.losses: `distill`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from afi.models.blocks import resize_to, time_plane
from afi.opticalflow import intermediate_flows, intermediate_flows_and_cues, linear_intermediate_flows

BLOCK_SCALES = (4, 2, 1)
# frame0, frame1, warped0, warped1 (3 each), flows (4), mask logit (1), t (1)
BLOCK_IN_CHANNELS = 4 * 3 + 4 + 1 + 1
CUE_CHANNELS = 2
# correction_gate: a summed luma error of GATE_CUE_SCALE (of 1) lets 63% of a correction through
# (0.02, 0.05 and 0.15 measured: 0.15 kept the cel gains and lost the least on painted pans).
GATE_CUE_SCALE = 0.15
GATE_RADIUS = 3


@dataclass(frozen=True)
class FlowEstimate:
    flows: torch.Tensor  # (B, 4, H, W): (x, y) displacements t->0 then t->1, in pixels
    mask_logit: torch.Tensor  # (B, 1, H, W): sigmoid gives the weight of warped frame0
    # The privileged teacher's estimate (training with the middle frame only), else None.
    teacher: FlowEstimate | None = None
    # (B, CUE_CHANNELS, H, W) occlusion cues of DIS (afi.opticalflow.intermediate_flows_and_cues).
    cues: torch.Tensor | None = None


def backward_warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample `image` (B, C, H, W) at p + flow(p); flow (B, 2, H, W) in pixels, (x, y)."""
    _, _, height, width = image.shape
    ys, xs = torch.meshgrid(
        torch.arange(height, device=image.device, dtype=image.dtype),
        torch.arange(width, device=image.device, dtype=image.dtype),
        indexing="ij",
    )
    x = (xs + flow[:, 0]) * (2 / max(width - 1, 1)) - 1  # (B, H, W) in grid_sample's [-1, 1]
    y = (ys + flow[:, 1]) * (2 / max(height - 1, 1)) - 1
    grid = torch.stack([x, y], dim=-1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


def normalised_flows(flows: torch.Tensor) -> torch.Tensor:
    """Pixels -> fractions of the image size, so a network sees the same values at any resolution."""
    height, width = flows.shape[-2:]
    scale = flows.new_tensor([2 / width, 2 / height, 2 / width, 2 / height]).view(1, 4, 1, 1)
    return flows * scale


def conv_act(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    # No normalisation, as in RIFE: flow magnitudes carry meaning that a norm layer would rescale.
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1), nn.LeakyReLU(0.2, inplace=True)
    )


class IFBlock(nn.Module):
    """Downsample by 4 with strided convs, refine with a residual conv stack, predict 5 channels."""

    def __init__(self, in_ch: int, width: int) -> None:
        super().__init__()
        self.encode = nn.Sequential(
            conv_act(in_ch, width // 2, stride=2), conv_act(width // 2, width, stride=2)
        )
        self.body = nn.Sequential(*(conv_act(width, width) for _ in range(4)))
        self.decode = nn.ConvTranspose2d(width, 5, 4, stride=2, padding=1)
        # Zero corrections at initialisation: the untrained estimator is the linear blend.
        nn.init.zeros_(self.decode.weight)
        nn.init.zeros_(self.decode.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encode(x)  # (B, width, H/4, W/4)
        h = self.body(h) + h
        return resize_to(self.decode(h), x.shape[-2:])  # (B, 5, H, W)


class IFNet(nn.Module):
    """Coarse-to-fine intermediate flow + blend mask; H and W must divide by `stride`.

    `prior`: start from its estimate (DIS) instead of zero flows and the time blend. `teacher`:
    add RIFE's privileged block, run only when the middle frame is passed (training)."""

    def __init__(self, width: int, prior: DISFlow | None = None, teacher: bool = False) -> None:
        super().__init__()
        in_ch = BLOCK_IN_CHANNELS + (CUE_CHANNELS if prior is not None and prior.cues else 0)
        self.blocks = nn.ModuleList(IFBlock(in_ch, width * 2) for _ in BLOCK_SCALES)
        self.prior = prior
        # The teacher sees the middle frame too (3 more channels), at full scale.
        self.teacher = IFBlock(in_ch + 3, width * 2) if teacher else None
        self.stride = 4 * max(BLOCK_SCALES)

    def forward(
        self, frame0: torch.Tensor, frame1: torch.Tensor, t: torch.Tensor, truth: torch.Tensor | None = None
    ) -> FlowEstimate:
        start = self.start(frame0, frame1, t)
        return self.refine(frame0, frame1, t, start, truth)

    def start(self, frame0: torch.Tensor, frame1: torch.Tensor, t: torch.Tensor) -> FlowEstimate:
        """The estimate the blocks correct: the prior's, else zero flows and the time blend."""
        if self.prior is not None:
            return self.prior(frame0, frame1, t)
        batch, _, height, width = frame0.shape
        # sigmoid(blend logit) = 1 - t is frame0's weight.
        return FlowEstimate(frame0.new_zeros(batch, 4, height, width), blend_logit(t, frame0))

    def refine(
        self,
        frame0: torch.Tensor,
        frame1: torch.Tensor,
        t: torch.Tensor,
        start: FlowEstimate,
        truth: torch.Tensor | None = None,
    ) -> FlowEstimate:
        """`start`'s flows and mask corrected coarse to fine, at frame0's size."""
        flows, mask_logit, cues = start.flows, start.mask_logit, start.cues
        gate = None if cues is None else correction_gate(cues)
        for block, scale in zip(self.blocks, BLOCK_SCALES):
            delta = self._correction(block, scale, frame0, frame1, t, flows, mask_logit, cues)
            if gate is not None:
                delta = delta * gate
            flows = flows + delta[:, :4] * scale
            mask_logit = mask_logit + delta[:, 4:]
        teacher = None
        if self.teacher is not None and truth is not None:
            # The student's estimate is the teacher's start, not something it may push around.
            flows_s, logit_s = flows.detach(), mask_logit.detach()
            delta = self._correction(self.teacher, 1, frame0, frame1, t, flows_s, logit_s, cues, truth)
            teacher = FlowEstimate(flows=flows_s + delta[:, :4], mask_logit=logit_s + delta[:, 4:])
        return FlowEstimate(flows=flows, mask_logit=mask_logit, teacher=teacher, cues=cues)

    @staticmethod
    def _correction(
        block: IFBlock,
        scale: int,
        frame0: torch.Tensor,
        frame1: torch.Tensor,
        t: torch.Tensor,
        flows: torch.Tensor,
        mask_logit: torch.Tensor,
        cues: torch.Tensor | None,
        truth: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One block's (B, 5, H, W) correction of flows (pixels at 1/scale) and mask logit."""
        height, width = frame0.shape[-2:]
        warped0 = backward_warp(frame0, flows[:, :2])
        warped1 = backward_warp(frame1, flows[:, 2:])
        size = (height // scale, width // scale)
        images = [frame0, frame1, warped0, warped1]
        images += ([] if cues is None else [cues]) + ([] if truth is None else [truth])
        images_here = resize_to(torch.cat(images, dim=1), size)
        # Flows are in pixels of the resolution they are used at: divide going down, multiply up.
        flows_here = resize_to(flows, size) / scale
        x = torch.cat([images_here, flows_here, resize_to(mask_logit, size), time_plane(t, images_here)], dim=1)
        # x: (B, 18 (+2 with cues, +3 for the teacher), H / scale, W / scale)
        return resize_to(block(x), (height, width))


def correction_gate(cues: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W) DIS occlusion cues -> (B, 1, H, W) in [0, 1): how much a refining block may
    change DIS's estimate at each pixel. Where DIS's flows explain both ends (small cues) they are
    kept; where they do not (occlusions, large or fast motion) the learned corrections apply.
    Measured: corrections learned on cel cartoons, applied everywhere, cost 0.2 dB on painted pans
    that DIS tracks well. The cues are spread over GATE_RADIUS pixels, as a wrong flow is wrong
    around the pixels that reveal it."""
    spread = F.max_pool2d(cues.sum(dim=1, keepdim=True), 2 * GATE_RADIUS + 1, stride=1, padding=GATE_RADIUS)
    return 1 - torch.exp(-spread / GATE_CUE_SCALE)


def blend_logit(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) times -> (B, 1, H, W) mask logit of the time-weighted blend: sigmoid = 1 - t."""
    batch, _, height, width = like.shape
    return torch.log((1 - t) / t).view(-1, 1, 1, 1).to(like.dtype).expand(batch, 1, height, width)


class DISFlow(nn.Module):
    """Classical intermediate flows (afi.opticalflow: OpenCV DIS both ways) and the blend mask.

    No weights: a DIS-guided interpolator learns only where to trust each warped frame
    (occlusions) and a residual, which a CPU trains in minutes, where learning flow itself
    (IFNet) takes far longer. DIS runs on the CPU without gradients; on a GPU each forward pass
    copies the frames to the host.
    """

    stride = 1

    def __init__(self, cues: bool = False, project: bool = True) -> None:
        super().__init__()
        self.cues = cues  # also return DIS's occlusion cues (FlowEstimate.cues)
        # Flows projected to t (the `flow` baseline) or made intermediate linearly (`dis`).
        self.project = project

    def forward(self, frame0: torch.Tensor, frame1: torch.Tensor, t: torch.Tensor) -> FlowEstimate:
        gray0, gray1 = _luma_uint8(frame0), _luma_uint8(frame1)
        if self.cues:
            estimate = partial(intermediate_flows_and_cues, project=self.project)
        else:
            estimate = intermediate_flows if self.project else linear_intermediate_flows
        fields = np.stack(
            [np.dstack(estimate(a, b, float(w))) for a, b, w in zip(gray0, gray1, t.tolist())]
        )  # (B, H, W, 4 flows (+ 2 cues))
        fields_t = torch.from_numpy(fields).permute(0, 3, 1, 2).to(device=frame0.device, dtype=frame0.dtype)
        cues = fields_t[:, 4:] if self.cues else None
        return FlowEstimate(flows=fields_t[:, :4], mask_logit=blend_logit(t, frame0), cues=cues)


def _luma_uint8(frames: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [0, 1] -> (B, H, W) uint8 luma (BT.601, as cv2's RGB2GRAY)."""
    weights = frames.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    luma = (frames.detach() * weights).sum(dim=1).mul(255).round().clamp(0, 255)
    return luma.to(torch.uint8).cpu().numpy()
