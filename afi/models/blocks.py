"""Layers shared by the backbones, flow estimator, discriminators and autoencoders."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


# Channel growth stops at width * 8, as in most U-Nets: deeper levels are small spatially anyway.
MAX_WIDTH_MULTIPLIER = 8


@dataclass(frozen=True)
class BackboneOutput:
    """A backbone's full-resolution prediction plus coarser side predictions (deep supervision)."""

    main: torch.Tensor  # (B, out_ch, H, W)
    sides: tuple[torch.Tensor, ...]  # each (B, out_ch, h, w), finest first


def level_widths(width: int, levels: int) -> list[int]:
    """Channels per resolution level: width doubling per level, capped at width * 8."""
    return [width * min(2**i, MAX_WIDTH_MULTIPLIER) for i in range(levels)]


def group_norm(channels: int) -> nn.GroupNorm:
    # GroupNorm rather than BatchNorm: statistics do not depend on the batch, which is 1-8 here.
    # Up to 8 groups of at least 2 channels, so a 1x1 map at a U's bottom still normalises.
    return nn.GroupNorm(math.gcd(8, max(channels // 2, 1)), channels)


class ConvNormAct(nn.Sequential):
    """3x3 conv (optionally dilated or strided) -> GroupNorm -> SiLU; keeps H, W when stride is 1."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=dilation, dilation=dilation),
            group_norm(out_ch),
            nn.SiLU(inplace=True),
        )


class ResBlock(nn.Module):
    """Two ConvNormAct with an identity (or 1x1) shortcut."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(ConvNormAct(in_ch, out_ch), ConvNormAct(out_ch, out_ch))
        self.skip = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


def zero_conv(in_ch: int, out_ch: int) -> nn.Conv2d:
    """A 3x3 output conv initialised to zero, so a residual head starts as the identity."""
    conv = nn.Conv2d(in_ch, out_ch, 3, padding=1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


def resize_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize to an exact (H, W); a no-op when the size already matches."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def pad_to_stride(x: torch.Tensor, stride: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Replicate-pad bottom/right so H and W divide by `stride`; returns the original (H, W)."""
    height, width = x.shape[-2:]
    pad_h, pad_w = -height % stride, -width % stride
    if pad_h or pad_w:
        # Replicate, not zeros: a black border would read as a line-art stroke.
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    return x, (height, width)


def time_plane(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) times -> a (B, 1, H, W) constant plane matching `like`."""
    return t.view(-1, 1, 1, 1).to(like.dtype).expand(like.shape[0], 1, *like.shape[-2:])
