"""Run configuration: validation at the boundary, round trips, stable hashes and names."""

import pytest

from afi.config import (
    RunConfig,
    StageConfig,
    VariantConfig,
    default_variant,
    parse_resolution,
)
from afi.errors import UsageError


@pytest.mark.parametrize(
    ("text", "expected"), [("256", (256, 256)), ("512x256", (512, 256)), (128, (128, 128))]
)
def test_parse_resolution(text, expected):
    assert parse_resolution(text) == expected


@pytest.mark.parametrize("text", ["-5", "0", "abc", "1x2x3", "256x"])
def test_bad_resolution_is_usage_error(text):
    with pytest.raises(UsageError, match="resolution"):
        parse_resolution(text)


def test_unknown_arch_names_choices():
    with pytest.raises(UsageError, match="unknown arch 'resnet': choose one of unet, isnet"):
        VariantConfig(arch="resnet").validate()


def test_autoencoder_takes_no_discriminator():
    with pytest.raises(UsageError, match="autoencoder"):
        VariantConfig(arch="vae", disc="patchgan").validate()


def test_run_config_round_trip_and_hash():
    config = RunConfig(
        variant=default_variant("isnet", "ifnet", "patchgan"),
        stages=(StageConfig(width=64, height=64, steps=10), StageConfig(width=128, height=128)),
        seed=3,
    ).validate()
    again = RunConfig.from_dict(config.to_dict())
    assert again == config
    assert again.hash() == config.hash()
    assert RunConfig(seed=4).hash() != RunConfig(seed=3).hash()


def test_stage_from_dict_accepts_res():
    assert StageConfig.from_dict({"res": "512x256", "steps": 5}).resolution == "512x256"


def test_unknown_setting_is_refused():
    with pytest.raises(UsageError, match="unknown run setting"):
        RunConfig.from_dict({"sede": 1})


def test_variant_names_are_readable_for_defaults_and_hashed_otherwise():
    assert default_variant("unet").name() == "unet"
    assert default_variant("isnet", "ifnet", "sn-resnet-sa").name() == "isnet-flow-sn-resnet-sa"
    custom = VariantConfig(arch="unet", width=8)
    assert custom.name().startswith("unet-") and len(custom.name()) == len("unet-") + 6
