"""VAE and VQ-VAE over single frames, for latent experiments and as frozen feature extractors.

A trained autoencoder's encoder gives AFI a perceptual feature space learnt on animation frames
(no ImageNet weights can be fetched here); IS-Net's "ground-truth encoder" idea maps to matching
the interpolator's output to the target in that space.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from afi.config import VariantConfig
from afi.errors import UsageError
from afi.models.blocks import ConvNormAct, ResBlock, level_widths, pad_to_stride
from afi.losses import kl_loss

# VQ-VAE paper defaults: commitment weight beta and the codebook EMA decay.
COMMITMENT_WEIGHT = 0.25
EMA_DECAY = 0.99
EMA_EPSILON = 1e-5


@dataclass(frozen=True)
class AutoencoderOutput:
    recon: torch.Tensor  # (B, 3, H, W) in [0, 1]
    latent: torch.Tensor  # (B, latent_channels, H / stride, W / stride), quantised for vqvae
    # Named loss terms, already reduced to scalars: {"kl"} for vae, {"vq"} for vqvae.
    losses: dict[str, torch.Tensor]
    # vqvae: perplexity of this batch's code assignments (1 = collapse, codebook_size = uniform).
    usage: torch.Tensor | None = None


class Encoder(nn.Module):
    """`depth` stride-2 levels; `features` returns each level's activation for perceptual use."""

    def __init__(self, out_ch: int, width: int, depth: int) -> None:
        super().__init__()
        widths = level_widths(width, depth + 1)
        self.stride = 2**depth
        self.stem = nn.Conv2d(3, widths[0], 3, padding=1)
        self.levels = nn.ModuleList(
            nn.Sequential(ResBlock(widths[i], widths[i]), ConvNormAct(widths[i], widths[i + 1], stride=2))
            for i in range(depth)
        )
        self.out = nn.Sequential(ResBlock(widths[-1], widths[-1]), nn.Conv2d(widths[-1], out_ch, 1))

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = self.stem(x * 2 - 1)
        found = []
        for level in self.levels:
            h = level(h)
            found.append(h)  # (B, widths[i + 1], H / 2**(i + 1), W / 2**(i + 1))
        return found

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x)[-1])


class Decoder(nn.Module):
    def __init__(self, in_ch: int, width: int, depth: int) -> None:
        super().__init__()
        widths = level_widths(width, depth + 1)
        self.inp = nn.Sequential(nn.Conv2d(in_ch, widths[-1], 3, padding=1), ResBlock(widths[-1], widths[-1]))
        self.levels = nn.ModuleList(
            nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"),
                ConvNormAct(widths[i + 1], widths[i]),
                ResBlock(widths[i], widths[i]),
            )
            for i in reversed(range(depth))
        )
        self.out = nn.Conv2d(widths[0], 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.inp(z)
        for level in self.levels:
            h = level(h)
        return torch.sigmoid(self.out(h))


class VAE(nn.Module):
    def __init__(self, latent_channels: int, width: int, depth: int) -> None:
        super().__init__()
        self.encoder = Encoder(2 * latent_channels, width, depth)
        self.decoder = Decoder(latent_channels, width, depth)
        self.stride = self.encoder.stride

    def forward(self, x: torch.Tensor) -> AutoencoderOutput:
        padded, (height, width) = pad_to_stride(x, self.stride)
        mean, logvar = self.encoder(padded).chunk(2, dim=1)
        logvar = logvar.clamp(-30, 20)  # keeps exp() finite early in training
        # Sample in training (reparameterisation); use the mean for deterministic evaluation.
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar) if self.training else mean
        recon = self.decoder(z)[..., :height, :width]
        return AutoencoderOutput(recon=recon, latent=z, losses={"kl": kl_loss(mean, logvar)})


class VectorQuantizer(nn.Module):
    """Nearest-code quantisation with a straight-through gradient.

    mode "ema": the codebook follows an exponential moving average of the encodings assigned to each
    code (VQ-VAE appendix; more stable, no codebook loss). mode "st": the codebook is a parameter
    trained by the codebook loss ||sg(z) - q||^2. Both add the commitment loss beta ||z - sg(q)||^2.
    """

    def __init__(self, codebook_size: int, dim: int, mode: str) -> None:
        super().__init__()
        self.mode = mode
        codebook = torch.randn(codebook_size, dim) / dim**0.5
        if mode == "ema":
            self.register_buffer("codebook", codebook)
            self.register_buffer("cluster_size", torch.zeros(codebook_size))
            self.register_buffer("embed_sum", codebook.clone())
        else:
            self.codebook = nn.Parameter(codebook)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z (B, D, h, w) -> (quantised z, vq loss, perplexity)."""
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])  # (N, D)
        codes = torch.cdist(flat, self.codebook).argmin(dim=1)  # (N,)
        one_hot = F.one_hot(codes, self.codebook.shape[0]).to(flat.dtype)  # (N, K)
        quantised = self.codebook[codes]
        if self.mode == "ema" and self.training:
            self._ema_update(flat.detach(), one_hot)
        loss = COMMITMENT_WEIGHT * F.mse_loss(flat, quantised.detach())
        if self.mode == "st":
            loss = loss + F.mse_loss(quantised, flat.detach())
        straight_through = flat + (quantised - flat).detach()
        probs = one_hot.mean(dim=0)
        perplexity = torch.exp(-(probs * torch.log(probs + 1e-10)).sum())
        out = straight_through.view(z.shape[0], z.shape[2], z.shape[3], -1).permute(0, 3, 1, 2)
        return out, loss, perplexity

    @torch.no_grad()
    def _ema_update(self, flat: torch.Tensor, one_hot: torch.Tensor) -> None:
        self.cluster_size.mul_(EMA_DECAY).add_(one_hot.sum(dim=0), alpha=1 - EMA_DECAY)
        self.embed_sum.mul_(EMA_DECAY).add_(one_hot.t() @ flat, alpha=1 - EMA_DECAY)
        # Laplace smoothing keeps unused codes from dividing by zero.
        total = self.cluster_size.sum()
        size = (self.cluster_size + EMA_EPSILON) / (total + len(self.cluster_size) * EMA_EPSILON) * total
        self.codebook.copy_(self.embed_sum / size.unsqueeze(1))


class VQVAE(nn.Module):
    def __init__(
        self, latent_channels: int, codebook_size: int, vq_mode: str, width: int, depth: int
    ) -> None:
        super().__init__()
        self.encoder = Encoder(latent_channels, width, depth)
        self.quantizer = VectorQuantizer(codebook_size, latent_channels, vq_mode)
        self.decoder = Decoder(latent_channels, width, depth)
        self.stride = self.encoder.stride

    def forward(self, x: torch.Tensor) -> AutoencoderOutput:
        padded, (height, width) = pad_to_stride(x, self.stride)
        quantised, vq_loss, perplexity = self.quantizer(self.encoder(padded))
        recon = self.decoder(quantised)[..., :height, :width]
        return AutoencoderOutput(recon=recon, latent=quantised, losses={"vq": vq_loss}, usage=perplexity)


Autoencoder = VAE | VQVAE


def build_autoencoder(variant: VariantConfig) -> Autoencoder:
    """The autoencoder a vae/vqvae variant describes; raises UsageError for an interpolator."""
    if variant.arch == "vae":
        return VAE(variant.latent_channels, variant.width, variant.depth)
    if variant.arch == "vqvae":
        return VQVAE(
            variant.latent_channels, variant.codebook_size, variant.vq_mode, variant.width, variant.depth
        )
    raise UsageError(f"variant arch {variant.arch!r} is an interpolator: build it with build_interpolator")
