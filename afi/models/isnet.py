"""IS-Net synthesis backbone (Qin et al., "Highly Accurate Dichotomous Image Segmentation").

Stages are RSU blocks (residual U-blocks: a small U-Net inside each stage) nested in an outer U,
with a side prediction at every decoder stage for deep supervision. Adapted to RGB synthesis:
- GroupNorm instead of BatchNorm (batches of 1-8);
- IS-Net's stride-2 input conv would blur one-pixel line art, so a full-resolution conv branch on
  the raw input is fused with the upsampled decoder output before the head;
- `depth` stages (RSU-7, RSU-6, RSU-5, RSU-4, RSU-4F, RSU-4F at depth 6, as in the paper) and
  channels scaled from `width` (the paper's layout is width 64, depth 6).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from afi.models.blocks import BackboneOutput, ConvNormAct, level_widths, resize_to, zero_conv

# RSU heights of the encoder stages, top to bottom; 0 marks the dilated, unpooled RSU-4F.
STAGE_HEIGHTS = (7, 6, 5, 4, 0, 0)


class RSU(nn.Module):
    """Residual U-block of height L (pooled, L - 2 max-pools) or RSU-4F (dilations, no pooling)."""

    def __init__(self, height: int, in_ch: int, mid_ch: int, out_ch: int) -> None:
        super().__init__()
        self.pooled = height > 0
        # RSU-4F keeps the resolution and widens the receptive field with dilation instead.
        dilations = [1] * (height - 1) if self.pooled else [1, 2, 4]
        bottom_dilation = 2 if self.pooled else 8
        self.inp = ConvNormAct(in_ch, out_ch)
        self.encoders = nn.ModuleList(
            ConvNormAct(out_ch if i == 0 else mid_ch, mid_ch, dilation=d) for i, d in enumerate(dilations)
        )
        self.bottom = ConvNormAct(mid_ch, mid_ch, dilation=bottom_dilation)
        # decoders[i] pairs with encoders[i]; the top one maps back to out_ch for the residual.
        self.decoders = nn.ModuleList(
            ConvNormAct(2 * mid_ch, out_ch if i == 0 else mid_ch, dilation=d) for i, d in enumerate(dilations)
        )

    @property
    def pools(self) -> int:
        return len(self.encoders) - 1 if self.pooled else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top = self.inp(x)  # (B, out_ch, H, W)
        h, skips = top, []
        for i, encoder in enumerate(self.encoders):
            if i > 0 and self.pooled:
                h = F.max_pool2d(h, 2, ceil_mode=True)
            h = encoder(h)
            skips.append(h)
        h = self.bottom(h)
        for decoder, skip in zip(reversed(self.decoders), reversed(skips)):
            h = decoder(torch.cat([resize_to(h, skip.shape[-2:]), skip], dim=1))
        return h + top


class ISNet(nn.Module):
    """Nested-U backbone with side outputs at every decoder stage and the bridge."""

    def __init__(self, in_ch: int, out_ch: int, width: int, depth: int) -> None:
        super().__init__()
        heights = STAGE_HEIGHTS[:depth]
        outs = level_widths(width, depth)
        self.full_res = nn.Sequential(ConvNormAct(in_ch, width), ConvNormAct(width, width))
        self.stem = ConvNormAct(in_ch, width, stride=2)
        # Channels of the level above each stage (the stem's, for stage 0).
        above = [width] + outs[:-1]
        self.encoders = nn.ModuleList(
            RSU(heights[i], above[i], max(outs[i] // 2, 4), outs[i]) for i in range(depth)
        )
        # As in IS-Net, decoders[i] fuses encoder stage i with the result from below (the bridge
        # for the deepest decoder, else decoders[i + 1]'s above[i + 1] = outs[i] channels) and
        # hands above[i] channels up.
        below = outs[: depth - 2] + [outs[-1]]
        self.decoders = nn.ModuleList(
            RSU(heights[i], below[i] + outs[i], max(above[i] // 2, 4), above[i]) for i in range(depth - 1)
        )
        self.side_heads = nn.ModuleList(
            [zero_conv(above[i], out_ch) for i in range(depth - 1)] + [zero_conv(outs[-1], out_ch)]
        )
        self.head = nn.Sequential(ConvNormAct(2 * width, width), zero_conv(width, out_ch))
        # The stem halves, stage i adds i pools before it and its own RSU pools inside.
        self.stride = 2 ** max(1 + i + stage.pools for i, stage in enumerate(self.encoders))

    def forward(self, x: torch.Tensor) -> BackboneOutput:
        full = self.full_res(x)  # (B, width, H, W)
        h = self.stem(x)  # (B, width, H/2, W/2)
        skips = []
        for i, encoder in enumerate(self.encoders):
            if i > 0:
                h = F.max_pool2d(h, 2, ceil_mode=True)
            h = encoder(h)
            skips.append(h)
        decoded = [skips.pop()]  # the bridge, deepest first
        for decoder in reversed(self.decoders):
            skip = skips.pop()
            decoded.append(decoder(torch.cat([resize_to(decoded[-1], skip.shape[-2:]), skip], dim=1)))
        decoded.reverse()  # finest first, matching side_heads
        sides = tuple(head(d) for head, d in zip(self.side_heads, decoded))
        main = self.head(torch.cat([full, resize_to(decoded[0], full.shape[-2:])], dim=1))
        return BackboneOutput(main=main, sides=sides)
