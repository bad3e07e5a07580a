"""The loop on every kind of variant: GAN phases, autoencoders, flow and IS-Net backbones."""

from __future__ import annotations

import pytest
import torch

from afi.config import default_variant
from afi.train.loop import scale_adversarial
from afi.train.service import start_run
from train_factories import make_dataset, metric_rows, new_run, tiny_config

SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def dataset(engine, afi_home):
    make_dataset(engine)


def keys_at(rows: dict, step: int) -> set[str]:
    return {key for key, s in rows if s == step}


@SQLITE_ONLY
def test_gan_warms_up_without_the_discriminator_then_ramps_its_weight(engine, dataset):
    config = tiny_config(steps=5, disc="patchgan", adv_warmup_steps=2, val_every=5, ckpt_every=5)
    run = start_run(engine, new_run(engine, config).id)
    assert run.status == "completed"
    rows = metric_rows(engine, run.id)
    for step in (1, 2):
        assert not {"loss/D/total", "loss/G/adversarial", "grad_norm/D"} & keys_at(rows, step)
    assert {"loss/D/adv", "loss/D/r1", "loss/G/adversarial", "grad_norm/D"} <= keys_at(rows, 3)
    assert [rows[("train/adv_weight", s)] for s in (3, 4, 5)] == [0.5, 1.0, 1.0]


@SQLITE_ONLY
@pytest.mark.parametrize(("arch", "flow"), [("vae", "none"), ("isnet", "none"), ("unet", "ifnet")])
def test_variant_trains_and_validates(engine, dataset, arch, flow):
    config = tiny_config(steps=2, arch=arch, flow=flow, val_every=2, ckpt_every=2)
    run = start_run(engine, new_run(engine, config).id)
    assert run.status == "completed"
    rows = metric_rows(engine, run.id)
    assert {"val/psnr", "val/ssim", "val/lineart", "train/lr"} <= keys_at(rows, 2)
    assert any(key.endswith("/total") for key in keys_at(rows, 1))


def test_adversarial_terms_follow_the_schedule_weight():
    variant = default_variant("unet", disc="patchgan")
    scaled = scale_adversarial(variant, 0.5)
    assert scaled.losses["adversarial"] == variant.losses["adversarial"] * 0.5
    assert scaled.losses["charbonnier"] == variant.losses["charbonnier"]
