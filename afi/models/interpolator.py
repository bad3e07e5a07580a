"""The interpolator: optional flow estimator + synthesis backbone, at any time t in (0, 1).

The backbone predicts a residual over a base image rather than the frame itself: the base is the
time-weighted blend (flow none) or the mask-blended warped frames (flow ifnet, dis or dis+refine). Held backgrounds and
static regions, most of an animation frame, are then right from the first step, and with
zero-initialised heads the untrained model is exactly that baseline, so training only has to learn
the moving parts. As in RIFE, the sum is clamped to [0, 1].

`scale` < 1 runs the networks on frames resized by that factor and composes the full-size frame
from the upsampled flows, mask and residual (RIFE's `scale` for 4K input): the warping and blending
keep full-resolution edges, large motions shrink to the range the model was trained on, and the
convolutions cost scale^2 as much. This is how a model trained on 128 px crops runs on 1080p video.
DIS runs on the full frame up to DIS_FULL_PIXELS (at least half size above), and a refining
model upsamples only its correction of DIS's flows, so DIS's fine motion edges survive the scale.

With `context` > 0, a small feature extractor (RIFE's ContextNet, one level) encodes each frame,
the features are warped with the frames, and the backbone sees them beside the warped pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from afi.config import VariantConfig
from afi.errors import UsageError
from afi.models.blocks import pad_to_stride, resize_to, time_plane
from afi.models.flow import CUE_CHANNELS, DISFlow, FlowEstimate, IFNet, backward_warp, blend_logit, normalised_flows
from afi.models.isnet import ISNet
from afi.models.unet import UNet

BACKBONES = {"unet": UNet, "isnet": ISNet}
# frame0, frame1, t
PLAIN_IN_CHANNELS = 3 + 3 + 1
# frame0, frame1, warped0, warped1, flows (4), mask (1), t (1); plus 2 x context warped features
FLOW_IN_CHANNELS = 4 * 3 + 4 + 1 + 1
# DIS runs on frames at least this fraction of the full size under `scale` (see _at_scale), and on
# the full frame up to this many pixels (640x360): there it costs little next to the networks.
DIS_MIN_SCALE = 0.5
DIS_FULL_PIXELS = 640 * 360


@dataclass(frozen=True)
class InterpOutput:
    """What an interpolator predicts for frames (B, 3, H, W)."""

    rgb: torch.Tensor  # (B, 3, H, W) in [0, 1]
    # Deep-supervision predictions, each (B, 3, H, W) in [0, 1], finest first; empty for unet.
    side_outputs: tuple[torch.Tensor, ...]
    flows: torch.Tensor | None = None  # (B, 4, H, W) pixels, t->0 (x, y) then t->1
    mask: torch.Tensor | None = None  # (B, 1, H, W) weight of warped frame0
    warped: tuple[torch.Tensor, torch.Tensor] | None = None  # frame0, frame1 warped to t
    # (B, 3, H, W): what the backbone adds to the blended base before clamping
    residual: torch.Tensor | None = None
    # The privileged teacher's in-between and flows (training with the middle frame only).
    teacher_rgb: torch.Tensor | None = None
    teacher_flows: torch.Tensor | None = None


def as_times(t: torch.Tensor | float, batch: int, like: torch.Tensor) -> torch.Tensor:
    """A float or (B,) tensor -> (B,) on `like`'s device and dtype.

    Only Python numbers are range-checked: checking a tensor would sync with the GPU every step,
    and the times a loader hands over come from triplets whose t the registry keeps in (0, 1).
    """
    if isinstance(t, (int, float)) and not 0 < t < 1:
        raise UsageError(f"interpolation time t must lie strictly between 0 and 1, got {t}")
    return torch.as_tensor(t, dtype=like.dtype, device=like.device).reshape(-1).expand(batch)


class ContextNet(nn.Module):
    """Per-frame features (B, channels, H, W) that are warped beside the pixels (RIFE's ContextNet)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        return self.layers(frame)


Flow = IFNet | DISFlow


class Interpolator(nn.Module):
    def __init__(self, backbone: nn.Module, flow: Flow | None, context: ContextNet | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.flow = flow
        self.context = context
        self.stride = max(backbone.stride, flow.stride if flow is not None else 1)

    def forward(
        self,
        frame0: torch.Tensor,
        frame1: torch.Tensor,
        t: torch.Tensor | float,
        scale: float = 1.0,
        truth: torch.Tensor | None = None,
    ) -> InterpOutput:
        """frames (B, 3, H, W) in [0, 1] and t -> the frame at t; `scale` in (0, 1]: see the module
        doc. `truth`, the real middle frame, runs the privileged teacher (training only)."""
        times = as_times(t, frame0.shape[0], frame0)
        if scale != 1.0:
            return self._at_scale(frame0, frame1, times, scale)
        x0, (height, width) = pad_to_stride(frame0, self.stride)
        x1, _ = pad_to_stride(frame1, self.stride)
        if self.flow is None:
            output = self._plain(x0, x1, times)
        else:
            truth_padded = None if truth is None else pad_to_stride(truth, self.stride)[0]
            estimate = self._estimate(x0, x1, times, truth_padded)
            output = self._with_flow(x0, x1, times, estimate)
        return crop_output(output, height, width)

    def _estimate(
        self, x0: torch.Tensor, x1: torch.Tensor, times: torch.Tensor, truth: torch.Tensor | None
    ) -> FlowEstimate:
        if isinstance(self.flow, IFNet):
            return self.flow(x0, x1, times, truth)
        return self.flow(x0, x1, times)

    def _plain(self, x0: torch.Tensor, x1: torch.Tensor, times: torch.Tensor) -> InterpOutput:
        predicted = self.backbone(torch.cat([x0, x1, time_plane(times, x0)], dim=1))
        size = x0.shape[-2:]

        def compose(residual: torch.Tensor) -> torch.Tensor:
            return (time_blend(x0, x1, times) + resize_to(residual, size)).clamp(0, 1)

        return InterpOutput(
            rgb=compose(predicted.main),
            side_outputs=tuple(map(compose, predicted.sides)),
            residual=resize_to(predicted.main, size),
        )

    def _with_flow(self, x0: torch.Tensor, x1: torch.Tensor, times: torch.Tensor, estimate: FlowEstimate) -> InterpOutput:
        warped0 = backward_warp(x0, estimate.flows[:, :2])
        warped1 = backward_warp(x1, estimate.flows[:, 2:])
        flows, flow_mask = normalised_flows(estimate.flows), torch.sigmoid(estimate.mask_logit)
        inputs = [x0, x1, warped0, warped1, flows, flow_mask, time_plane(times, x0)]
        if estimate.cues is not None:
            inputs.append(estimate.cues)
        if self.context is not None:
            inputs.append(backward_warp(self.context(x0), estimate.flows[:, :2]))
            inputs.append(backward_warp(self.context(x1), estimate.flows[:, 2:]))
        predicted = self.backbone(torch.cat(inputs, dim=1))  # input (B, in_channels, H, W)
        size = x0.shape[-2:]

        def compose(head: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            # head: residual RGB (3) + a correction to the flow estimator's mask logit (1)
            head = resize_to(head, size)
            mask = torch.sigmoid(estimate.mask_logit + head[:, 3:])
            return (mask * warped0 + (1 - mask) * warped1 + head[:, :3]).clamp(0, 1), mask, head[:, :3]

        rgb, mask, residual = compose(predicted.main)
        teacher = estimate.teacher
        return InterpOutput(
            rgb=rgb,
            side_outputs=tuple(compose(side)[0] for side in predicted.sides),
            flows=estimate.flows,
            mask=mask,
            warped=(warped0, warped1),
            residual=residual,
            teacher_rgb=None if teacher is None else warp_blend(x0, x1, teacher),
            teacher_flows=None if teacher is None else teacher.flows,
        )

    def _at_scale(self, frame0: torch.Tensor, frame1: torch.Tensor, times: torch.Tensor, scale: float) -> InterpOutput:
        if not 0 < scale <= 1:
            raise UsageError(f"scale must lie in (0, 1], got {scale}")
        full = tuple(frame0.shape[-2:])
        # A multiple of the stride, so no padding blurs the small frames' borders.
        size = tuple(max(self.stride, round(n * scale / self.stride) * self.stride) for n in full)
        residual_of = lambda small: resize_to(small.residual, full)  # noqa: E731
        if self.flow is None:
            residual = residual_of(self._plain(shrink(frame0, size), shrink(frame1, size), times))
            rgb = (time_blend(frame0, frame1, times) + residual).clamp(0, 1)
            return InterpOutput(rgb=rgb, side_outputs=(), residual=residual)
        dis = self.flow if isinstance(self.flow, DISFlow) else self.flow.prior
        x0, x1 = shrink(frame0, size), shrink(frame1, size)
        if dis is None:  # a learned flow from nothing: all of it at the small size
            small = self._with_flow(x0, x1, times, self.flow(x0, x1, times))
            flows = resize_flows(small.flows, full)
        else:
            # DIS costs little next to the networks but loses motion edges at low resolution: it
            # runs on the full frame, or at least half size, and the warps use its flows, not the
            # small ones; a refining model's correction is upsampled on top of them.
            dis_estimate = dis(*dis_frames(frame0, frame1, scale), times)
            dis_full, dis_small = dis_estimate.flows, resize_flows(dis_estimate.flows, size)
            cues = None if dis_estimate.cues is None else shrink(dis_estimate.cues, size)
            start = FlowEstimate(dis_small, blend_logit(times, x0), cues=cues)
            estimate = start if isinstance(self.flow, DISFlow) else self.flow.refine(x0, x1, times, start)
            small = self._with_flow(x0, x1, times, estimate)
            flows = resize_flows(dis_full, full) + resize_flows(estimate.flows - dis_small, full)
        mask, residual = resize_to(small.mask, full), residual_of(small)
        warped0 = backward_warp(frame0, flows[:, :2])
        warped1 = backward_warp(frame1, flows[:, 2:])
        rgb = torch.lerp(warped1, warped0, mask).add_(residual).clamp_(0, 1)  # mask: weight of warped0
        return InterpOutput(
            rgb=rgb, side_outputs=(), flows=flows, mask=mask, warped=(warped0, warped1), residual=residual
        )


def dis_frames(frame0: torch.Tensor, frame1: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The frames DIS reads under `scale`: whole up to DIS_FULL_PIXELS, else at least half size."""
    full = frame0.shape[-2:]
    if full[0] * full[1] <= DIS_FULL_PIXELS:
        return frame0, frame1
    size = tuple(round(n * max(scale, DIS_MIN_SCALE)) for n in full)
    return shrink(frame0, size), shrink(frame1, size)


def warp_blend(x0: torch.Tensor, x1: torch.Tensor, estimate: FlowEstimate) -> torch.Tensor:
    """Both frames warped by the estimate's flows and blended by its mask, (B, 3, H, W)."""
    mask = torch.sigmoid(estimate.mask_logit)
    warped0 = backward_warp(x0, estimate.flows[:, :2])
    warped1 = backward_warp(x1, estimate.flows[:, 2:])
    return (mask * warped0 + (1 - mask) * warped1).clamp(0, 1)


def time_blend(x0: torch.Tensor, x1: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    w = times.view(-1, 1, 1, 1)
    return (1 - w) * x0 + w * x1


def shrink(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize to (H, W), antialiased when it shrinks (enlarging, it would only cost:
    measured 45 ms against 24 ms for 4 channels to 1080p on one CPU thread); a no-op at the same size."""
    if tuple(frames.shape[-2:]) == tuple(size):
        return frames
    smaller = size[0] < frames.shape[-2] or size[1] < frames.shape[-1]
    return F.interpolate(frames, size=size, mode="bilinear", antialias=smaller, align_corners=False)


def resize_flows(flows: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, 4, h, w) pixel flows -> (B, 4, H, W), their vectors stretched with the frame."""
    height, width = flows.shape[-2:]
    if (height, width) == tuple(size):
        return flows
    stretch = flows.new_tensor([size[1] / width, size[0] / height] * 2).view(1, 4, 1, 1)
    return shrink(flows, size) * stretch


def crop_output(output: InterpOutput, height: int, width: int) -> InterpOutput:
    def crop(x: torch.Tensor) -> torch.Tensor:
        return x[..., :height, :width]

    return InterpOutput(
        rgb=crop(output.rgb),
        side_outputs=tuple(map(crop, output.side_outputs)),
        flows=None if output.flows is None else crop(output.flows),
        mask=None if output.mask is None else crop(output.mask),
        warped=None if output.warped is None else (crop(output.warped[0]), crop(output.warped[1])),
        residual=None if output.residual is None else crop(output.residual),
        teacher_rgb=None if output.teacher_rgb is None else crop(output.teacher_rgb),
        teacher_flows=None if output.teacher_flows is None else crop(output.teacher_flows),
    )


def build_interpolator(variant: VariantConfig) -> Interpolator:
    """The interpolator a variant describes; raises UsageError for an autoencoder variant."""
    if variant.kind != "interp":
        raise UsageError(f"variant arch {variant.arch!r} is an autoencoder: build it with build_autoencoder")
    flow = build_flow(variant)
    context = ContextNet(variant.context) if flow is not None and variant.context > 0 else None
    cues = CUE_CHANNELS if variant.flow == "dis+refine" else 0
    in_ch, out_ch = (PLAIN_IN_CHANNELS, 3) if flow is None else (FLOW_IN_CHANNELS + cues + 2 * variant.context, 4)
    backbone = BACKBONES[variant.arch](in_ch, out_ch, variant.width, variant.depth)
    return Interpolator(backbone, flow, context)


def build_flow(variant: VariantConfig) -> Flow | None:
    """The flow estimator of `--flow`: none, a learned IFNet, DIS, or IFNet blocks refining DIS
    (with RIFE's privileged teacher when the variant weights the `distill` loss)."""
    teacher = variant.losses.get("distill", 0) > 0
    if variant.flow == "ifnet":
        return IFNet(variant.width, teacher=teacher)
    if variant.flow == "dis":
        return DISFlow()
    if variant.flow == "dis+refine":
        return IFNet(variant.width, prior=DISFlow(cues=True, project=False), teacher=teacher)
    return None
