"""Every built-in variant builds, runs forward + backward, pads/crops any size and is seeded."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from afi.config import VariantConfig
from afi.errors import NotFoundError, UsageError
from afi.losses import GeneratorLoss, charbonnier, discriminator_loss
from afi.metrics import psnr
from afi.models import (
    BUILTIN_VARIANTS,
    VQVAE,
    build_autoencoder,
    build_discriminator,
    build_generator,
    build_interpolator,
    builtin_variant,
    count_macs,
    count_parameters,
    describe_variant,
    load_variant_file,
)
from afi.models.flow import backward_warp

INTERP_VARIANTS = [name for name, v in BUILTIN_VARIANTS.items() if v.kind == "interp"]
AUTOENCODER_VARIANTS = [name for name, v in BUILTIN_VARIANTS.items() if v.kind == "autoencoder"]


@pytest.fixture(autouse=True)
def _few_threads() -> None:
    torch.set_num_threads(2)


def tiny(name: str, **changes) -> VariantConfig:
    """A built-in variant shrunk so that CPU tests stay fast."""
    return dataclasses.replace(BUILTIN_VARIANTS[name], width=4, depth=2, codebook_size=16, **changes)


def frames(batch: int = 1, height: int = 128, width: int = 128) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(1)
    return tuple(torch.rand(batch, 3, height, width, generator=generator) for _ in range(3))


def disc_frame(cx: float, size: int = 32, radius: float = 7) -> torch.Tensor:
    """A flat anti-aliased disc on a flat background: a minimal cartoon frame, (1, 3, size, size)."""
    coords = torch.arange(size, dtype=torch.float32)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    cover = (radius + 0.5 - ((yy - size / 2) ** 2 + (xx - cx) ** 2).sqrt()).clamp(0, 1)
    background = torch.tensor([0.9, 0.85, 0.6]).view(3, 1, 1)
    ink = torch.tensor([0.2, 0.4, 0.8]).view(3, 1, 1)
    return (background * (1 - cover) + ink * cover)[None]


def test_builtins_cover_every_combination():
    assert len(INTERP_VARIANTS) == 2 * 4 * 3  # arch x flow (none, ifnet, dis, dis+refine) x disc
    assert AUTOENCODER_VARIANTS == ["vae", "vqvae"]
    assert builtin_variant("isnet-flow-sn-resnet-sa").disc == "sn-resnet-sa"
    with pytest.raises(NotFoundError, match="no built-in variant"):
        builtin_variant("resnet")


@pytest.mark.parametrize("name", INTERP_VARIANTS)
def test_interpolator_forward_backward_at_128(name: str):
    variant = tiny(name)
    model = build_interpolator(variant)
    discriminator = build_discriminator(variant)
    frame0, middle, frame1 = frames()
    # The middle frame goes in for a privileged teacher, as in training.
    out = model(frame0, frame1, torch.tensor([0.25]), truth=middle)
    assert out.rgb.shape == (1, 3, 128, 128)
    assert 0 <= out.rgb.min() and out.rgb.max() <= 1
    assert all(side.shape == (1, 3, 128, 128) for side in out.side_outputs)
    assert (len(out.side_outputs) > 0) == (variant.arch == "isnet")
    if variant.flow != "none":
        assert out.flows.shape == (1, 4, 128, 128) and out.mask.shape == (1, 1, 128, 128)
        assert out.warped[0].shape == (1, 3, 128, 128)
    else:
        assert out.flows is None and out.mask is None and out.warped is None
    loss, stats = GeneratorLoss(variant)(out, middle, frame0, frame1, discriminator)
    loss.backward()
    assert stats["loss/G/total"] == pytest.approx(loss.item(), rel=1e-5)
    assert all(p.grad is not None for p in model.parameters())
    if discriminator is not None:
        assert "loss/G/adversarial" in stats
        d_loss, d_stats = discriminator_loss(variant, discriminator, middle, out.rgb, frame0, frame1)
        d_loss.backward()
        assert set(d_stats) == {"loss/D/adv", "loss/D/r1", "loss/D/total"}
        assert all(p.grad is not None for p in discriminator.parameters())


@pytest.mark.parametrize("name", AUTOENCODER_VARIANTS)
def test_autoencoder_forward_backward_at_128(name: str):
    model = build_autoencoder(tiny(name))
    (image,) = frames(batch=2)[:1]
    out = model(image)
    assert out.recon.shape == image.shape
    assert out.latent.shape == (2, 8, 32, 32)  # depth 2: stride 4
    term = "kl" if name == "vae" else "vq"
    assert set(out.losses) == {term}
    (charbonnier(out.recon, image) + out.losses[term]).backward()
    trained = [p for p in model.parameters() if p.requires_grad]
    assert all(p.grad is not None for p in trained)
    if name == "vqvae":
        assert 1 <= out.usage.item() <= 16


@pytest.mark.parametrize("name", ["unet", "unet-flow", "isnet", "isnet-flow"])
@pytest.mark.parametrize("size", [(64, 64), (64, 128), (37, 53), (1, 200)])
def test_output_matches_any_input_size(name: str, size: tuple[int, int]):
    model = build_interpolator(tiny(name))
    frame0, _, frame1 = frames(height=size[0], width=size[1])
    with torch.no_grad():
        out = model(frame0, frame1, 0.5)
    assert out.rgb.shape == (1, 3, *size)
    assert all(side.shape == (1, 3, *size) for side in out.side_outputs)


@pytest.mark.parametrize("name", AUTOENCODER_VARIANTS)
def test_autoencoder_crops_odd_sizes(name: str):
    model = build_autoencoder(tiny(name)).eval()
    image = torch.rand(1, 3, 37, 29)
    with torch.no_grad():
        assert model(image).recon.shape == image.shape


def test_stride_reports_padding_multiple():
    assert build_interpolator(tiny("unet")).stride == 4
    assert build_interpolator(tiny("unet-flow")).stride == 16  # IFNet: 1/4 scale, then /4
    assert build_interpolator(tiny("isnet")).stride == 64  # stem /2 and RSU-7's five pools


@pytest.mark.parametrize("name", ["isnet-flow-sn-resnet-sa", "unet-patchgan", "vqvae"])
def test_same_seed_same_model_and_output(name: str):
    def run() -> torch.Tensor:
        torch.manual_seed(7)
        model = build_generator(tiny(name))
        frame0, _, frame1 = frames(height=64, width=64)
        with torch.no_grad():
            if name == "vqvae":
                return model(frame0).recon
            return model(frame0, frame1, 0.5).rgb

    torch.manual_seed(8)
    first = run()
    torch.manual_seed(9)
    assert torch.equal(first, run())


def test_untrained_interpolator_is_the_time_weighted_blend():
    # Zero-initialised heads: training starts from the linear blend baseline, for each sample's t.
    frame0, _, frame1 = frames(batch=2, height=32, width=32)
    t = torch.tensor([0.25, 0.75])
    for name in ("unet", "isnet-flow"):
        model = build_interpolator(tiny(name))
        with torch.no_grad():
            out = model(frame0, frame1, t)
        blend = (1 - t.view(2, 1, 1, 1)) * frame0 + t.view(2, 1, 1, 1) * frame1
        torch.testing.assert_close(out.rgb, blend, atol=1e-5, rtol=0)


def test_time_outside_open_interval_is_refused():
    model = build_interpolator(tiny("unet"))
    frame0, _, frame1 = frames(height=16, width=16)
    with pytest.raises(UsageError, match="strictly between 0 and 1"):
        model(frame0, frame1, 1.0)


def test_builders_refuse_the_wrong_kind():
    with pytest.raises(UsageError, match="autoencoder"):
        build_interpolator(tiny("vae"))
    with pytest.raises(UsageError, match="interpolator"):
        build_autoencoder(tiny("unet"))
    assert build_discriminator(tiny("unet")) is None


def test_backward_warp_moves_content_by_the_flow():
    image = torch.rand(1, 3, 16, 16)
    zero = torch.zeros(1, 2, 16, 16)
    torch.testing.assert_close(backward_warp(image, zero), image)
    right = torch.zeros(1, 2, 16, 16)
    right[:, 0] = 2.0  # sample two pixels to the right
    torch.testing.assert_close(backward_warp(image, right)[..., :-2], image[..., 2:])


def test_unconditional_discriminator_sees_the_candidate_only():
    variant = tiny("unet-patchgan", disc_conditional=False)
    discriminator = build_discriminator(variant)
    out = discriminator(torch.rand(2, 3, 128, 128))
    assert out.logits.shape == (2, 1, 14, 14)  # 70x70 PatchGAN patches at 128 px
    assert len(out.features) == 4
    conditional = build_discriminator(tiny("unet-sn-resnet-sa"))
    with pytest.raises(ValueError, match="frame0 and frame1"):
        conditional(torch.rand(1, 3, 64, 64))


def test_vq_codebook_moves_only_in_training():
    model = build_autoencoder(tiny("vqvae"))
    image = torch.rand(2, 3, 32, 32)
    before = model.quantizer.codebook.clone()
    model.eval()
    with torch.no_grad():
        model(image)
    assert torch.equal(before, model.quantizer.codebook)
    model.train()
    with torch.no_grad():
        model(image)
    assert not torch.equal(before, model.quantizer.codebook)
    straight_through = build_autoencoder(tiny("vqvae", vq_mode="st"))
    assert isinstance(straight_through, VQVAE) and straight_through.quantizer.codebook.requires_grad


def test_tiny_interpolator_overfits_one_triplet():
    # Proof that model, loss and optimiser are wired: about 44 dB after 250 steps (seeds 0-3).
    torch.set_num_threads(1)  # 32x32 convolutions: more threads only add overhead
    torch.manual_seed(0)
    frame0, middle, frame1 = disc_frame(9), disc_frame(16), disc_frame(23)
    model = build_interpolator(dataclasses.replace(BUILTIN_VARIANTS["unet"], width=8, depth=3))
    steps = 250
    optimiser = torch.optim.Adam(model.parameters())
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=1e-2, total_steps=steps, pct_start=0.1)
    for _ in range(steps):
        loss = charbonnier(model(frame0, frame1, 0.5).rgb, middle)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    with torch.no_grad():
        assert psnr(model(frame0, frame1, 0.5).rgb, middle).item() > 35


@pytest.mark.parametrize("teacher", [False, True])
def test_a_refining_flow_learns_a_motion_dis_gets_wrong(teacher: bool):
    """dis+refine starts at DIS and its corrections train: on a flat disc moving 14 px, where
    DIS's patches find little texture, a few dozen steps cut the loss by more than half."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    frame0, middle, frame1 = disc_frame(9), disc_frame(16), disc_frame(23)
    losses = {"charbonnier": 1.0, **({"distill": 0.1} if teacher else {})}
    variant = dataclasses.replace(BUILTIN_VARIANTS["unet-dis-refine"], width=8, depth=2, losses=losses)
    model = build_interpolator(variant.validate())
    loss_fn = GeneratorLoss(variant)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    history = []
    for _ in range(60):
        out = model(frame0, frame1, 0.5, truth=middle)
        loss, stats = loss_fn(out, middle, frame0, frame1)
        assert ("loss/G/distill" in stats) == teacher
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        history.append(stats["loss/G/charbonnier"])
    assert history[-1] < history[0] / 2, history[::10]


def test_refining_blocks_leave_dis_alone_where_its_flows_explain_both_frames():
    """The correction gate: even with trained (here random, non-zero) correction layers, a
    pixel whose DIS flows find it in both frames (zero occlusion cues) keeps DIS's flow and mask."""
    torch.manual_seed(0)
    model = build_interpolator(dataclasses.replace(BUILTIN_VARIANTS["unet-dis-refine"], width=8, depth=2))
    with torch.no_grad():
        for block in model.flow.blocks:
            torch.nn.init.normal_(block.decode.weight, std=0.5)
    frame = disc_frame(12)
    t = torch.tensor([0.5])
    start = model.flow.start(frame, frame, t)  # a still frame: DIS finds every pixel
    refined = model.flow.refine(frame, frame, t, start)
    assert torch.equal(refined.flows, start.flows) and torch.equal(refined.mask_logit, start.mask_logit)
    moving = model.flow(disc_frame(6), disc_frame(20), t)  # 14 px: DIS loses the flat disc
    assert not torch.equal(moving.flows, model.flow.start(disc_frame(6), disc_frame(20), t).flows)


def test_parameter_and_mac_counts():
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    assert count_parameters(conv) == 3 * 8 * 9 + 8
    variant = tiny("unet")
    macs = count_macs(variant, 64, 32)
    assert macs > 0
    assert count_macs(variant, 128, 64) == pytest.approx(4 * macs, rel=0.01)
    model = build_interpolator(variant)
    assert count_macs(model, 64, 32) == macs
    with pytest.raises(TypeError):
        count_macs(conv, 8, 8)


def test_describe_variant_reports_sizes_and_configs():
    summary = describe_variant(tiny("isnet-flow-patchgan"), 64, 64)
    assert summary.kind == "interp" and summary.params > 0 and summary.macs > 0
    assert summary.disc_params > 0 and summary.disc_macs > 0
    assert summary.generator_config == {"arch": "isnet", "flow": "ifnet", "width": 4, "depth": 2}
    assert summary.discriminator_config["disc"] == "patchgan"
    assert summary.loss_config["losses"]["adversarial"] == 0.01
    unsized = describe_variant(tiny("vae"))
    assert unsized.macs is None and unsized.disc_params is None and unsized.discriminator_config == {}
    assert unsized.to_dict()["generator_config"]["latent_channels"] == 8


def test_load_variant_file_toml_json_and_errors(tmp_path: Path):
    toml_file = tmp_path / "v.toml"
    toml_file.write_text('arch = "isnet"\nflow = "ifnet"\nwidth = 16\n[losses]\ncharbonnier = 1.0\nstyle = 0.5\n')
    variant = load_variant_file(toml_file)
    assert (variant.arch, variant.flow, variant.width) == ("isnet", "ifnet", 16)
    assert variant.losses == {"charbonnier": 1.0, "style": 0.5}
    json_file = tmp_path / "v.json"
    json_file.write_text(json.dumps({"variant": {"arch": "vqvae", "vq_mode": "st"}}))
    assert load_variant_file(json_file).vq_mode == "st"
    bad = {
        "missing.toml": None,
        "broken.toml": "arch = ",
        "unknown.json": '{"arch": "unet", "heads": 4}',
        "typed.toml": 'width = "wide"',
        "v.yaml": "arch: unet",
        "badchoice.json": '{"arch": "resnet"}',
    }
    for name, text in bad.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        with pytest.raises(UsageError):
            load_variant_file(path)
