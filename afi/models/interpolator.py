"""The interpolator: optional flow estimator + synthesis backbone, at any time t in (0, 1).

The backbone predicts a residual over a base image rather than the frame itself: the base is the
time-weighted blend (flow none) or the mask-blended warped frames (flow ifnet). Held backgrounds and
static regions, most of an animation frame, are then right from the first step, and with
zero-initialised heads the untrained model is exactly that baseline, so training only has to learn
the moving parts. As in RIFE, the sum is clamped to [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from afi.config import VariantConfig
from afi.errors import UsageError
from afi.models.blocks import pad_to_stride, resize_to, time_plane
from afi.models.flow import IFNet, backward_warp, normalised_flows
from afi.models.isnet import ISNet
from afi.models.unet import UNet

BACKBONES = {"unet": UNet, "isnet": ISNet}
# frame0, frame1, t
PLAIN_IN_CHANNELS = 3 + 3 + 1
# frame0, frame1, warped0, warped1, flows (4), mask (1), t (1)
FLOW_IN_CHANNELS = 4 * 3 + 4 + 1 + 1


@dataclass(frozen=True)
class InterpOutput:
    """What an interpolator predicts for frames (B, 3, H, W)."""

    rgb: torch.Tensor  # (B, 3, H, W) in [0, 1]
    # Deep-supervision predictions, each (B, 3, H, W) in [0, 1], finest first; empty for unet.
    side_outputs: tuple[torch.Tensor, ...]
    flows: torch.Tensor | None = None  # (B, 4, H, W) pixels, t->0 (x, y) then t->1
    mask: torch.Tensor | None = None  # (B, 1, H, W) weight of warped frame0
    warped: tuple[torch.Tensor, torch.Tensor] | None = None  # frame0, frame1 warped to t


def as_times(t: torch.Tensor | float, batch: int, like: torch.Tensor) -> torch.Tensor:
    """A float or (B,) tensor -> (B,) on `like`'s device and dtype.

    Only Python numbers are range-checked: checking a tensor would sync with the GPU every step,
    and the times a loader hands over come from triplets whose t the registry keeps in (0, 1).
    """
    if isinstance(t, (int, float)) and not 0 < t < 1:
        raise UsageError(f"interpolation time t must lie strictly between 0 and 1, got {t}")
    return torch.as_tensor(t, dtype=like.dtype, device=like.device).reshape(-1).expand(batch)


class Interpolator(nn.Module):
    def __init__(self, backbone: nn.Module, flow: IFNet | None) -> None:
        super().__init__()
        self.backbone = backbone
        self.flow = flow
        self.stride = max(backbone.stride, flow.stride if flow is not None else 1)

    def forward(self, frame0: torch.Tensor, frame1: torch.Tensor, t: torch.Tensor | float) -> InterpOutput:
        times = as_times(t, frame0.shape[0], frame0)
        x0, (height, width) = pad_to_stride(frame0, self.stride)
        x1, _ = pad_to_stride(frame1, self.stride)
        output = self._plain(x0, x1, times) if self.flow is None else self._with_flow(x0, x1, times)
        return crop_output(output, height, width)

    def _plain(self, x0: torch.Tensor, x1: torch.Tensor, times: torch.Tensor) -> InterpOutput:
        w = times.view(-1, 1, 1, 1)
        blend = (1 - w) * x0 + w * x1
        predicted = self.backbone(torch.cat([x0, x1, time_plane(times, x0)], dim=1))
        size = x0.shape[-2:]

        def compose(residual: torch.Tensor) -> torch.Tensor:
            return (blend + resize_to(residual, size)).clamp(0, 1)

        return InterpOutput(rgb=compose(predicted.main), side_outputs=tuple(map(compose, predicted.sides)))

    def _with_flow(self, x0: torch.Tensor, x1: torch.Tensor, times: torch.Tensor) -> InterpOutput:
        estimate = self.flow(x0, x1, times)
        warped0 = backward_warp(x0, estimate.flows[:, :2])
        warped1 = backward_warp(x1, estimate.flows[:, 2:])
        flows, flow_mask = normalised_flows(estimate.flows), torch.sigmoid(estimate.mask_logit)
        inputs = [x0, x1, warped0, warped1, flows, flow_mask, time_plane(times, x0)]
        predicted = self.backbone(torch.cat(inputs, dim=1))  # input (B, FLOW_IN_CHANNELS, H, W)
        size = x0.shape[-2:]

        def compose(head: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            # head: residual RGB (3) + a correction to the flow estimator's mask logit (1)
            head = resize_to(head, size)
            mask = torch.sigmoid(estimate.mask_logit + head[:, 3:])
            return (mask * warped0 + (1 - mask) * warped1 + head[:, :3]).clamp(0, 1), mask

        rgb, mask = compose(predicted.main)
        return InterpOutput(
            rgb=rgb,
            side_outputs=tuple(compose(side)[0] for side in predicted.sides),
            flows=estimate.flows,
            mask=mask,
            warped=(warped0, warped1),
        )


def crop_output(output: InterpOutput, height: int, width: int) -> InterpOutput:
    def crop(x: torch.Tensor) -> torch.Tensor:
        return x[..., :height, :width]

    return InterpOutput(
        rgb=crop(output.rgb),
        side_outputs=tuple(map(crop, output.side_outputs)),
        flows=None if output.flows is None else crop(output.flows),
        mask=None if output.mask is None else crop(output.mask),
        warped=None if output.warped is None else (crop(output.warped[0]), crop(output.warped[1])),
    )


def build_interpolator(variant: VariantConfig) -> Interpolator:
    """The interpolator a variant describes; raises UsageError for an autoencoder variant."""
    if variant.kind != "interp":
        raise UsageError(f"variant arch {variant.arch!r} is an autoencoder: build it with build_autoencoder")
    has_flow = variant.flow == "ifnet"
    in_ch, out_ch = (FLOW_IN_CHANNELS, 4) if has_flow else (PLAIN_IN_CHANNELS, 3)
    backbone = BACKBONES[variant.arch](in_ch, out_ch, variant.width, variant.depth)
    return Interpolator(backbone, IFNet(variant.width) if has_flow else None)
