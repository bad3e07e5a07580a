"""Loss terms against known values, and the weighted generator / discriminator / autoencoder sums."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from afi.config import VariantConfig
from afi.errors import UsageError
from afi.losses import (
    PIXEL_TERMS,
    AutoencoderLoss,
    GeneratorLoss,
    census_loss,
    charbonnier,
    discriminator_loss,
    edge_loss,
    feature_matching_loss,
    gradient_penalty,
    gram_matrix,
    hinge_d,
    hinge_g,
    kl_loss,
    laplacian_pyramid,
    line_distance_weights,
    nonsat_d,
    nonsat_g,
    perceptual_loss,
    r1_penalty,
    style_loss,
)
from afi.models import build_autoencoder, build_discriminator, build_interpolator


def images(seed: int = 0, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, size, size, generator=generator), torch.rand(2, 3, size, size, generator=generator)


def line_drawing(size: int = 32) -> torch.Tensor:
    """White paper with one black vertical ink line at x = 10."""
    image = torch.ones(1, 3, size, size)
    image[..., 10] = 0
    return image


@pytest.mark.parametrize("term", sorted(PIXEL_TERMS))
def test_pixel_terms_vanish_on_identical_images_and_pass_gradients(term: str):
    pred, target = images()
    loss_fn = PIXEL_TERMS[term]
    same = loss_fn(target, target).item()
    assert same == pytest.approx(0, abs=2e-3)  # charbonnier's floor is its eps
    pred.requires_grad_(True)
    loss = loss_fn(pred, target)
    loss.backward()
    assert loss.item() > same + 1e-2
    assert pred.grad.abs().sum() > 0


def test_charbonnier_approaches_l1():
    pred, target = images()
    assert charbonnier(pred, target, eps=1e-6).item() == pytest.approx((pred - target).abs().mean().item(), rel=1e-4)


def test_laplacian_pyramid_reconstructs_the_image():
    image, _ = images(size=64)
    pyramid = laplacian_pyramid(image)
    assert len(pyramid) == 5 and pyramid[-1].shape[-1] == 4
    rebuilt = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        rebuilt = band + torch.nn.functional.interpolate(rebuilt, size=band.shape[-2:], mode="bilinear")
    torch.testing.assert_close(rebuilt, image)


def test_census_ignores_a_brightness_offset():
    _, target = images()
    assert census_loss(target + 0.1, target).item() == pytest.approx(0, abs=1e-6)
    assert census_loss(target.flip(-1), target).item() > 0.1


def test_edge_weights_peak_on_the_outline():
    weights = line_distance_weights(line_drawing())
    row = weights[0, 0, 16]
    assert row[10].item() == pytest.approx(5.0)  # 1 + EDGE_STRENGTH on the line
    assert row[8].item() == pytest.approx(1 + 4 * 3 / 5)  # two pixels away
    assert row[20].item() == 1.0  # beyond the radius
    assert not weights.requires_grad


def test_edge_loss_punishes_errors_on_lines_more():
    target = line_drawing()
    on_line, off_line = target.clone(), target.clone()
    on_line[..., 5:25, 10] = 1.0  # erase part of the line
    off_line[..., 5:25, 25] = 0.0  # draw a stray line of the same length far away
    assert edge_loss(on_line, target) > 2 * edge_loss(off_line, target)


def test_gram_and_style():
    features = torch.ones(1, 2, 3, 3)
    torch.testing.assert_close(gram_matrix(features), torch.full((1, 2, 2), 9 / 18))
    a, b = images()
    assert style_loss([a], [a]).item() == 0
    assert style_loss([a], [b * 2]).item() > 0
    assert perceptual_loss([a, b], [a, b]).item() == 0
    assert feature_matching_loss([a], [b]).item() == pytest.approx((a - b).abs().mean().item())


def test_adversarial_losses_known_values():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert hinge_d(real, fake).item() == pytest.approx(0.25 + 0.5)
    assert hinge_g(fake).item() == pytest.approx(1.0)
    softplus = torch.nn.functional.softplus
    assert nonsat_d(real, fake).item() == pytest.approx((softplus(-real).mean() + softplus(fake).mean()).item())
    assert nonsat_g(torch.tensor([0.0])).item() == pytest.approx(torch.log(torch.tensor(2.0)).item())


def test_r1_of_a_linear_critic_is_its_squared_weight_norm():
    weight = torch.randn(1, 3, 4, 4)
    real = torch.rand(5, 3, 4, 4, requires_grad=True)
    logits = (real * weight).flatten(1).sum(dim=1)
    assert r1_penalty(logits, real).item() == pytest.approx(weight.pow(2).sum().item(), rel=1e-5)


def test_gradient_penalty_vanishes_for_a_unit_gradient_critic():
    direction = torch.randn(1, 3, 4, 4)
    direction = direction / direction.norm()
    real, fake = torch.rand(4, 3, 4, 4), torch.rand(4, 3, 4, 4)
    assert gradient_penalty(lambda x: (x * direction).flatten(1).sum(1), real, fake).item() == pytest.approx(0, abs=1e-10)
    assert gradient_penalty(lambda x: 3 * (x * direction).flatten(1).sum(1), real, fake).item() == pytest.approx(4.0)


def test_kl_of_the_prior_is_zero():
    mean, logvar = torch.zeros(2, 4, 3, 3), torch.zeros(2, 4, 3, 3)
    assert kl_loss(mean, logvar).item() == 0
    assert kl_loss(mean + 1, logvar).item() == pytest.approx(4 * 0.5)  # 0.5 * mean^2 per channel


def small(**changes) -> VariantConfig:
    return dataclasses.replace(VariantConfig(), width=4, depth=2, **changes).validate()


def test_generator_loss_weights_terms_and_adds_side_outputs():
    variant = small(arch="isnet", losses={"charbonnier": 1.0, "ssim": 0.5, "edge": 0.2})
    model = build_interpolator(variant)
    frame0, frame1 = images(size=64)
    out = model(frame0, frame1, 0.5)
    total, stats = GeneratorLoss(variant)(out, frame1, frame0, frame1)
    assert set(stats) == {f"loss/G/{k}" for k in ("charbonnier", "ssim", "edge", "side", "total")}
    expected = stats["loss/G/charbonnier"] + 0.5 * stats["loss/G/ssim"] + 0.2 * stats["loss/G/edge"]
    assert total.item() == pytest.approx(expected + stats["loss/G/side"], rel=1e-5)


def test_generator_loss_uses_discriminator_for_adversarial_and_disc_perceptual():
    variant = small(
        disc="sn-resnet-sa",
        adv_loss="nonsat",
        perceptual_source="disc",
        losses={"l1": 1.0, "adversarial": 0.1, "feature_match": 1.0, "perceptual": 1.0, "style": 1.0},
    )
    model, discriminator = build_interpolator(variant), build_discriminator(variant)
    frame0, frame1 = images(size=64)
    out = model(frame0, frame1, 0.5)
    loss_fn = GeneratorLoss(variant)
    total, stats = loss_fn(out, frame1, frame0, frame1, discriminator)
    for term in ("adversarial", "feature_match", "perceptual", "style"):
        assert f"loss/G/{term}" in stats
    total.backward()
    with pytest.raises(ValueError, match="discriminator"):
        loss_fn(model(frame0, frame1, 0.5), frame1, frame0, frame1)


def test_generator_loss_with_an_explicit_feature_extractor():
    variant = small(losses={"perceptual": 1.0, "style": 1.0})

    def extractor(x: torch.Tensor) -> list[torch.Tensor]:
        return [x, torch.nn.functional.avg_pool2d(x, 2)]

    frame0, frame1 = images()
    out = build_interpolator(variant)(frame0, frame1, 0.5)
    _, stats = GeneratorLoss(variant, extractor)(out, frame1, frame0, frame1)
    assert stats["loss/G/perceptual"] > 0


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        (small(losses={"adversarial": 0.1}), "need a discriminator"),
        (small(losses={"perceptual": 1.0}), "need a feature extractor"),
        (small(losses={"style": 1.0}, perceptual_source="run:abc"), "need a feature extractor"),
        (small(losses={"l1": 1.0, "kl": 0.1}), "does not apply"),
    ],
)
def test_generator_loss_refuses_unusable_settings(variant: VariantConfig, message: str):
    with pytest.raises(UsageError, match=message):
        GeneratorLoss(variant)


@pytest.mark.parametrize("penalty", ["r1", "wgan-gp", "none"])
def test_discriminator_loss_stats(penalty: str):
    variant = small(disc="patchgan", grad_penalty=penalty, grad_penalty_weight=10.0, losses={"adversarial": 1.0})
    discriminator = build_discriminator(variant)
    real, fake = images(size=64)
    total, stats = discriminator_loss(variant, discriminator, real, fake, real, fake)
    total.backward()
    extra = {"r1": {"loss/D/r1"}, "wgan-gp": {"loss/D/gp"}, "none": set()}[penalty]
    assert set(stats) == {"loss/D/adv", "loss/D/total"} | extra
    _, lazy = discriminator_loss(variant, discriminator, real, fake, real, fake, penalty=False)
    assert set(lazy) == {"loss/D/adv", "loss/D/total"}


@pytest.mark.parametrize("arch", ["vae", "vqvae"])
def test_autoencoder_loss_combines_reconstruction_and_latent_terms(arch: str):
    variant = small(arch=arch, losses={"l1": 1.0, "kl": 1e-3, "vq": 1.0})
    model = build_autoencoder(variant)
    image, _ = images()
    total, stats = AutoencoderLoss(variant)(model(image), image)
    latent_term = "kl" if arch == "vae" else "vq"
    assert set(stats) == {"loss/AE/l1", f"loss/AE/{latent_term}", "loss/AE/total"}
    total.backward()
    with pytest.raises(UsageError, match="does not apply"):
        AutoencoderLoss(small(arch=arch, losses={"adversarial": 1.0}))
    with pytest.raises(UsageError, match="no discriminator"):
        AutoencoderLoss(small(arch=arch, losses={"perceptual": 1.0}, perceptual_source="disc"))
