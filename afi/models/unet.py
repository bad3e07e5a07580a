"""U-Net synthesis backbone: an encoder-decoder with skip connections and GroupNorm."""

from __future__ import annotations

import torch
from torch import nn

from afi.models.blocks import BackboneOutput, ConvNormAct, ResBlock, level_widths, resize_to, zero_conv


class UNet(nn.Module):
    """`depth` stride-2 downsamplings, so H and W must divide by 2**depth (`stride`)."""

    def __init__(self, in_ch: int, out_ch: int, width: int, depth: int) -> None:
        super().__init__()
        widths = level_widths(width, depth + 1)
        self.stride = 2**depth
        self.stem = ResBlock(in_ch, widths[0])
        self.down = nn.ModuleList(
            nn.Sequential(
                ConvNormAct(widths[i], widths[i + 1], stride=2), ResBlock(widths[i + 1], widths[i + 1])
            )
            for i in range(depth)
        )
        self.up = nn.ModuleList(
            ResBlock(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(depth))
        )
        self.head = zero_conv(widths[0], out_ch)

    def forward(self, x: torch.Tensor) -> BackboneOutput:
        skips = [self.stem(x)]  # level i: (B, widths[i], H / 2**i, W / 2**i)
        for down in self.down:
            skips.append(down(skips[-1]))
        h = skips.pop()
        for up in self.up:
            skip = skips.pop()
            h = up(torch.cat([resize_to(h, skip.shape[-2:]), skip], dim=1))
        return BackboneOutput(main=self.head(h), sides=())
