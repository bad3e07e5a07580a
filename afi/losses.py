"""Loss terms as small pure tensor functions, and the modules that weight them from a variant.

Images are (B, 3, H, W) in [0, 1]. Every term returns a scalar tensor. `GeneratorLoss` and
`discriminator_loss` report stats keyed `loss/G/<term>` and `loss/D/<term>` (stylegan2-ada style).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import pytorch_msssim
import torch
import torch.nn.functional as F
from torch import nn

from afi.config import VariantConfig
from afi.errors import UsageError
from afi.metrics import line_art, luminance

if TYPE_CHECKING:
    from afi.models.autoencoders import AutoencoderOutput
    from afi.models.discriminators import Discriminator
    from afi.models.interpolator import InterpOutput

# A feature extractor maps images in [0, 1] to a list of activations (VGG16, a frozen AFI
# encoder, or the discriminator).
FeatureExtractor = Callable[[torch.Tensor], Sequence[torch.Tensor]]

CHARBONNIER_EPS = 1e-3
# Laplacian pyramid: FILM weighs level i (finer first) by 2**i so coarse structure counts.
PYRAMID_LEVELS = 5
# Census: 7x7 patches, as in UnFlow and FILM.
CENSUS_PATCH = 7
# Line-art weighting: pixels on an outline weigh 1 + EDGE_STRENGTH, falling linearly to 1 at
# EDGE_RADIUS + 1 pixels away.
EDGE_STRENGTH = 4.0
EDGE_RADIUS = 4
# Distillation: the teacher must beat the student by this much (of 1) at a pixel to pull its flow,
# a flow gap counts up to this many pixels, and the flow term's weight beside the teacher's own
# reconstruction (RIFE weighs its flow term 0.01 on pixel flows summed over blocks).
DISTILL_MARGIN = 0.01
DISTILL_MAX_GAP_PX = 8.0
DISTILL_FLOW_WEIGHT = 0.05


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred - target).abs().mean()


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = CHARBONNIER_EPS) -> torch.Tensor:
    """A smooth L1: sqrt(d^2 + eps^2), differentiable at 0."""
    return torch.sqrt((pred - target).pow(2) + eps**2).mean()


def _binomial_blur(x: torch.Tensor) -> torch.Tensor:
    """5x5 binomial blur per channel, replicate-padded."""
    taps = x.new_tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16
    kernel = (taps[:, None] * taps[None, :]).expand(x.shape[1], 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), kernel, groups=x.shape[1])


def laplacian_pyramid(x: torch.Tensor, levels: int = PYRAMID_LEVELS) -> list[torch.Tensor]:
    """Band-pass images, finest first, ending with the low-pass residual; stops below 8 pixels."""
    pyramid = []
    for _ in range(levels - 1):
        if min(x.shape[-2:]) < 8:
            break
        low = F.avg_pool2d(_binomial_blur(x), 2, ceil_mode=True)
        up = F.interpolate(low, size=x.shape[-2:], mode="bilinear", align_corners=False)
        pyramid.append(x - up)
        x = low
    pyramid.append(x)
    return pyramid


def laplacian_pyramid_loss(
    pred: torch.Tensor, target: torch.Tensor, levels: int = PYRAMID_LEVELS
) -> torch.Tensor:
    pairs = zip(laplacian_pyramid(pred, levels), laplacian_pyramid(target, levels))
    return sum(2**i * l1(p, t) for i, (p, t) in enumerate(pairs))


def _ternary(image: torch.Tensor, patch: int) -> torch.Tensor:
    """Soft census transform: (B, 3, H, W) -> (B, patch^2, H, W) signs of neighbour - centre."""
    gray = luminance(image) * 255
    neighbours = F.unfold(gray, patch, padding=patch // 2)  # (B, patch^2, H * W)
    neighbours = neighbours.view(gray.shape[0], patch * patch, *gray.shape[-2:])
    diff = neighbours - gray
    return diff / torch.sqrt(0.81 + diff.pow(2))


def census_loss(pred: torch.Tensor, target: torch.Tensor, patch: int = CENSUS_PATCH) -> torch.Tensor:
    """Ternary census loss (Meister et al., UnFlow): robust to brightness, sharp on structure."""
    diff = (_ternary(pred, patch) - _ternary(target, patch)).pow(2)
    # Averaged over the patch, as RIFE does, so the term lies in [0, 1).
    distance = (diff / (0.1 + diff)).mean(dim=1, keepdim=True)  # (B, 1, H, W)
    # Zero padding makes border patches meaningless: score only pixels whose patch fits.
    border = patch // 2
    return distance[..., border:-border, border:-border].mean()


def ssim_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return 1 - pytorch_msssim.ssim(pred, target, data_range=1.0)


def perceptual_loss(
    pred_features: Sequence[torch.Tensor], target_features: Sequence[torch.Tensor]
) -> torch.Tensor:
    """Mean L1 distance between matching activations."""
    return sum(l1(p, t) for p, t in zip(pred_features, target_features)) / len(pred_features)


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C), normalised by C * H * W."""
    batch, channels, height, width = features.shape
    flat = features.reshape(batch, channels, height * width)
    return flat @ flat.transpose(1, 2) / (channels * height * width)


def style_loss(
    pred_features: Sequence[torch.Tensor], target_features: Sequence[torch.Tensor]
) -> torch.Tensor:
    """Gram-matrix (style) loss: FILM finds it matters most for animation."""
    pairs = zip(pred_features, target_features)
    return sum(F.mse_loss(gram_matrix(p), gram_matrix(t)) for p, t in pairs) / len(pred_features)


@torch.no_grad()
def line_distance_weights(
    target: torch.Tensor, radius: int = EDGE_RADIUS, strength: float = EDGE_STRENGTH
) -> torch.Tensor:
    """(B, 1, H, W) per-pixel weights, highest on the target's line art (as in EISAI).

    The distance to the nearest line pixel is grown by repeated 3x3 dilation (a chessboard
    distance, capped at `radius`): it stays on the device, unlike OpenCV's exact transform,
    which the chamfer metric uses.
    """
    covered = line_art(target).float()  # (B, 1, H, W), 1 on lines
    weights = covered
    for _ in range(radius):
        covered = F.max_pool2d(covered, 3, stride=1, padding=1)
        weights = weights + covered
    # weights = radius + 1 - distance, for pixels within the radius, else 0
    return 1 + strength * weights / (radius + 1)


def edge_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 weighted towards the target's outlines, normalised by the weights' sum."""
    weights = line_distance_weights(target)
    return (weights * (pred - target).abs()).sum() / (weights.sum() * pred.shape[1])


def hinge_d(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def hinge_g(fake_logits: torch.Tensor) -> torch.Tensor:
    return -fake_logits.mean()


def nonsat_d(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def nonsat_g(fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake_logits).mean()


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ||d D(real) / d real||^2; `real` must require grad (Mescheder 2018)."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(dim=1).mean()


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor
) -> torch.Tensor:
    """WGAN-GP: (||grad||_2 - 1)^2 at random points between real and fake samples."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


def kl_loss(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, var) || N(0, 1)) summed over latent channels, averaged over batch and positions."""
    return (0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar)).sum(dim=1).mean()


def feature_matching_loss(
    fake_features: Sequence[torch.Tensor], real_features: Sequence[torch.Tensor]
) -> torch.Tensor:
    """pix2pixHD feature matching: L1 between discriminator activations, real side detached."""
    return perceptual_loss(fake_features, [r.detach() for r in real_features])


def distillation_loss(
    student_rgb: torch.Tensor,
    teacher_rgb: torch.Tensor,
    student_flows: torch.Tensor,
    teacher_flows: torch.Tensor,
    target: torch.Tensor,
) -> torch.Tensor:
    """RIFE's privileged distillation: the teacher (which saw the middle frame) learns to
    reconstruct it, and the student's flows (B, 4, H, W, pixels) are pulled towards the teacher's
    where the teacher's in-between is closer to the truth. Flow gaps are counted in pixels and
    capped, so one wild teacher vector cannot dominate."""
    teacher_error = (teacher_rgb - target).abs().mean(dim=1, keepdim=True)
    student_error = (student_rgb.detach() - target).abs().mean(dim=1, keepdim=True)
    better = (teacher_error + DISTILL_MARGIN < student_error).to(student_flows.dtype)  # (B, 1, H, W)
    gap = (student_flows - teacher_flows.detach()).abs().clamp(max=DISTILL_MAX_GAP_PX)
    return laplacian_pyramid_loss(teacher_rgb, target) + DISTILL_FLOW_WEIGHT * (gap * better).mean()


# Terms that compare an image with its target directly.
PIXEL_TERMS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l1": l1,
    "charbonnier": charbonnier,
    "laplacian": laplacian_pyramid_loss,
    "census": census_loss,
    "ssim": ssim_loss,
    "edge": edge_loss,
}
FEATURE_TERMS = ("perceptual", "style")
DISC_TERMS = ("adversarial", "feature_match")
INTERP_ONLY_TERMS = (*DISC_TERMS, "distill")
AUTOENCODER_ONLY_TERMS = ("kl", "vq")
GENERATOR_ADV = {"hinge": hinge_g, "nonsat": nonsat_g}
DISCRIMINATOR_ADV = {"hinge": hinge_d, "nonsat": nonsat_d}


def _weighted_terms(variant: VariantConfig, forbidden: tuple[str, ...]) -> dict[str, float]:
    weights = {term: weight for term, weight in variant.losses.items() if weight > 0}
    for term in weights:
        if term in forbidden:
            raise UsageError(
                f"loss term {term} does not apply to a {variant.arch} variant: remove it from losses"
            )
    if not weights:
        raise UsageError("the variant weights no loss term: give at least one a positive weight")
    return weights


def _check_extractor(
    variant: VariantConfig, weights: dict[str, float], extractor: FeatureExtractor | None
) -> None:
    needs_one = any(term in weights for term in FEATURE_TERMS) and variant.perceptual_source != "disc"
    if needs_one and extractor is None:
        raise UsageError(
            f"perceptual/style losses with source {variant.perceptual_source} need a feature extractor: "
            "pass afi.weights.load_feature_extractor(variant, ...)"
        )


def _reconstruction_terms(
    weights: dict[str, float],
    pred: torch.Tensor,
    target: torch.Tensor,
    extractor: FeatureExtractor | None,
) -> dict[str, torch.Tensor]:
    terms = {term: PIXEL_TERMS[term](pred, target) for term in weights if term in PIXEL_TERMS}
    if extractor is not None and any(term in weights for term in FEATURE_TERMS):
        pred_features = extractor(pred)
        with torch.no_grad():
            target_features = extractor(target)
        if "perceptual" in weights:
            terms["perceptual"] = perceptual_loss(pred_features, target_features)
        if "style" in weights:
            terms["style"] = style_loss(pred_features, target_features)
    return terms


def _total_and_stats(
    terms: dict[str, torch.Tensor], weights: dict[str, float], prefix: str
) -> tuple[torch.Tensor, dict[str, float]]:
    total = sum(weights[name] * value for name, value in terms.items())
    names = [*terms, "total"]
    # One device sync for all the stats, not one per term.
    values = torch.stack([v.detach().float() for v in (*terms.values(), total)]).tolist()
    return total, {f"{prefix}/{name}": value for name, value in zip(names, values)}


class GeneratorLoss(nn.Module):
    """The weighted sum of an interpolator variant's loss terms.

    Side outputs (IS-Net deep supervision) add a `side` term: the reconstruction loss (charbonnier,
    else l1) averaged over them, with that term's weight. Adversarial and feature-matching terms,
    and perceptual/style with perceptual_source "disc", need the discriminator passed to forward.
    """

    def __init__(self, variant: VariantConfig, feature_extractor: FeatureExtractor | None = None) -> None:
        super().__init__()
        self.variant = variant
        self.weights = _weighted_terms(variant, AUTOENCODER_ONLY_TERMS)
        needs_disc = any(t in self.weights for t in DISC_TERMS) or (
            variant.perceptual_source == "disc" and any(t in self.weights for t in FEATURE_TERMS)
        )
        if needs_disc and variant.disc == "none":
            raise UsageError(
                "adversarial, feature_match and disc perceptual losses need a discriminator: set disc"
            )
        self.needs_disc = needs_disc
        self.side_term = next((t for t in ("charbonnier", "l1") if t in self.weights), None)
        if self.side_term is not None:
            self.weights["side"] = self.weights[self.side_term]
        _check_extractor(variant, self.weights, feature_extractor)
        # Registered as a submodule (when it is one) so that .to(device) moves it too. With the
        # "disc" source the live discriminator provides the features instead.
        self.feature_extractor = None if variant.perceptual_source == "disc" else feature_extractor

    def forward(
        self,
        output: InterpOutput,
        target: torch.Tensor,
        frame0: torch.Tensor,
        frame1: torch.Tensor,
        discriminator: Discriminator | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        terms = _reconstruction_terms(self.weights, output.rgb, target, self.feature_extractor)
        if self.side_term is not None and output.side_outputs:
            side_losses = [PIXEL_TERMS[self.side_term](side, target) for side in output.side_outputs]
            terms["side"] = sum(side_losses) / len(side_losses)
        if "distill" in self.weights and output.teacher_rgb is not None:
            terms["distill"] = distillation_loss(
                output.rgb, output.teacher_rgb, output.flows, output.teacher_flows, target
            )
        if self.needs_disc:
            if discriminator is None:
                raise ValueError("this variant's generator loss needs the discriminator passed to forward")
            terms.update(self._discriminator_terms(output.rgb, target, frame0, frame1, discriminator))
        return _total_and_stats(terms, self.weights, "loss/G")

    def _discriminator_terms(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        frame0: torch.Tensor,
        frame1: torch.Tensor,
        discriminator: Discriminator,
    ) -> dict[str, torch.Tensor]:
        fake = discriminator(pred, frame0, frame1)
        terms = {}
        if "adversarial" in self.weights:
            terms["adversarial"] = GENERATOR_ADV[self.variant.adv_loss](fake.logits)
        feature_terms = {"feature_match": feature_matching_loss}
        if self.variant.perceptual_source == "disc":
            feature_terms.update(perceptual=perceptual_loss, style=style_loss)
        feature_terms = {name: fn for name, fn in feature_terms.items() if name in self.weights}
        if feature_terms:
            with torch.no_grad():
                real = discriminator(target, frame0, frame1)
            terms.update({name: fn(fake.features, real.features) for name, fn in feature_terms.items()})
        return terms


class AutoencoderLoss(nn.Module):
    """The weighted sum of an autoencoder variant's terms: reconstruction plus kl (vae) or vq."""

    def __init__(self, variant: VariantConfig, feature_extractor: FeatureExtractor | None = None) -> None:
        super().__init__()
        self.weights = _weighted_terms(variant, INTERP_ONLY_TERMS)
        if variant.perceptual_source == "disc" and any(t in self.weights for t in FEATURE_TERMS):
            raise UsageError("an autoencoder has no discriminator: use perceptual_source vgg16 or run:<id>")
        _check_extractor(variant, self.weights, feature_extractor)
        self.feature_extractor = feature_extractor

    def forward(
        self, output: AutoencoderOutput, target: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        terms = _reconstruction_terms(self.weights, output.recon, target, self.feature_extractor)
        terms.update({name: value for name, value in output.losses.items() if name in self.weights})
        return _total_and_stats(terms, self.weights, "loss/AE")


def discriminator_loss(
    variant: VariantConfig,
    discriminator: Discriminator,
    real: torch.Tensor,
    fake: torch.Tensor,
    frame0: torch.Tensor,
    frame1: torch.Tensor,
    penalty: bool = True,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Adversarial loss for D plus its gradient penalty (R1 on reals, or WGAN-GP).

    `penalty=False` skips the penalty, for lazy regularisation (apply it every k steps with its
    weight times k, as stylegan2 does).
    """
    fake = fake.detach()
    use_r1 = penalty and variant.grad_penalty == "r1"
    real = real.detach().requires_grad_(use_r1)
    real_out = discriminator(real, frame0, frame1)
    fake_out = discriminator(fake, frame0, frame1)
    terms = {"adv": DISCRIMINATOR_ADV[variant.adv_loss](real_out.logits, fake_out.logits)}
    weights = {"adv": 1.0}
    if use_r1:
        # gamma / 2 * E||grad||^2, gamma = grad_penalty_weight
        terms["r1"] = r1_penalty(real_out.logits, real)
        weights["r1"] = variant.grad_penalty_weight / 2
    elif penalty and variant.grad_penalty == "wgan-gp":
        terms["gp"] = gradient_penalty(lambda x: discriminator(x, frame0, frame1).logits, real, fake)
        weights["gp"] = variant.grad_penalty_weight
    return _total_and_stats(terms, weights, "loss/D")
