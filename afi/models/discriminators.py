"""Patch discriminators: PatchGAN (70x70 receptive field) and a spectral-norm residual one with
self-attention, optionally conditioned on the two input frames."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from afi.config import VariantConfig
from afi.models.blocks import group_norm, level_widths


@dataclass(frozen=True)
class DiscOutput:
    logits: torch.Tensor  # (B, 1, h, w): one real/fake logit per patch
    features: tuple[torch.Tensor, ...]  # intermediate activations, for feature matching / perceptual


class PatchGAN(nn.Module):
    """pix2pix's 70x70 PatchGAN: 4x4 convs, strides 2, 2, 2, 1, then a 1-channel 4x4 conv.

    GroupNorm instead of BatchNorm so that R1 and gradient penalties see per-sample gradients.
    """

    def __init__(self, in_ch: int, width: int) -> None:
        super().__init__()
        widths = level_widths(width, 4)
        layers = [nn.Sequential(nn.Conv2d(in_ch, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, inplace=True))]
        for i, stride in zip(range(1, 4), (2, 2, 1)):
            layers.append(
                nn.Sequential(
                    nn.Conv2d(widths[i - 1], widths[i], 4, stride, 1),
                    group_norm(widths[i]),
                    nn.LeakyReLU(0.2, inplace=True),
                )
            )
        self.layers = nn.ModuleList(layers)
        self.out = nn.Conv2d(widths[-1], 1, 4, 1, 1)

    def forward(self, x: torch.Tensor) -> DiscOutput:
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return DiscOutput(logits=self.out(x), features=tuple(features))


class SelfAttention(nn.Module):
    """SAGAN self-attention: every position attends to every other, gated by a learned gamma."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = max(channels // 8, 1)
        self.query = spectral_norm(nn.Conv2d(channels, inner, 1))
        self.key = spectral_norm(nn.Conv2d(channels, inner, 1))
        self.value = spectral_norm(nn.Conv2d(channels, channels, 1))
        # Starts at 0 so the block is the identity until attention proves useful.
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)  # (B, HW, C')
        k = self.key(x).flatten(2).transpose(1, 2)  # (B, HW, C')
        v = self.value(x).flatten(2).transpose(1, 2)  # (B, HW, C)
        attended = F.scaled_dot_product_attention(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1)).squeeze(1)
        return x + self.gamma * attended.transpose(1, 2).reshape(batch, channels, height, width)


class SNResBlock(nn.Module):
    """Spectral-norm residual block (BigGAN discriminator style), halving H and W."""

    def __init__(self, in_ch: int, out_ch: int, first: bool = False) -> None:
        super().__init__()
        # The first block sees the image itself: no activation before its first conv.
        self.body = nn.Sequential(
            *([] if first else [nn.LeakyReLU(0.2)]),
            spectral_norm(nn.Conv2d(in_ch, out_ch, 3, padding=1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(out_ch, out_ch, 3, padding=1)),
            nn.AvgPool2d(2),
        )
        self.skip = nn.Sequential(nn.AvgPool2d(2), spectral_norm(nn.Conv2d(in_ch, out_ch, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


class SNResNetSA(nn.Module):
    """Three spectral-norm residual downsamplings, then self-attention at 1/8 resolution.

    Attention sits at the coarsest level, as in SAGAN, where it costs (HW/64)^2 rather than
    (HW/16)^2 and still relates distant parts of a character (two ends of a moving limb).
    """

    def __init__(self, in_ch: int, width: int) -> None:
        super().__init__()
        widths = level_widths(width, 3)
        self.layers = nn.ModuleList(
            [
                SNResBlock(in_ch, widths[0], first=True),
                SNResBlock(widths[0], widths[1]),
                nn.Sequential(SNResBlock(widths[1], widths[2]), SelfAttention(widths[2])),
            ]
        )
        self.out = nn.Sequential(nn.LeakyReLU(0.2), spectral_norm(nn.Conv2d(widths[2], 1, 3, padding=1)))

    def forward(self, x: torch.Tensor) -> DiscOutput:
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return DiscOutput(logits=self.out(x), features=tuple(features))


class Discriminator(nn.Module):
    """Judges a candidate middle frame, seeing the two input frames too when conditional."""

    def __init__(self, body: nn.Module, conditional: bool) -> None:
        super().__init__()
        self.body = body
        self.conditional = conditional

    def forward(
        self, candidate: torch.Tensor, frame0: torch.Tensor | None = None, frame1: torch.Tensor | None = None
    ) -> DiscOutput:
        if not self.conditional:
            return self.body(candidate)
        if frame0 is None or frame1 is None:
            raise ValueError("a conditional discriminator needs frame0 and frame1")
        return self.body(torch.cat([frame0, candidate, frame1], dim=1))  # (B, 9, H, W)


DISCRIMINATORS = {"patchgan": PatchGAN, "sn-resnet-sa": SNResNetSA}


def build_discriminator(variant: VariantConfig) -> Discriminator | None:
    """The variant's discriminator, or None when it trains without one."""
    if variant.disc == "none":
        return None
    in_ch = 9 if variant.disc_conditional else 3
    return Discriminator(DISCRIMINATORS[variant.disc](in_ch, variant.width), variant.disc_conditional)
