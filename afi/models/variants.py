"""Named variants: the built-in defaults, variant files, and what `afi variant show` prints."""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass
from itertools import product
from pathlib import Path
from typing import Any

from torch import nn

from afi.config import AUTOENCODER_ARCHS, DISCS, FLOWS, INTERP_ARCHS, VariantConfig, default_variant
from afi.errors import NotFoundError, UsageError
from afi.models.discriminators import build_discriminator
from afi.models.summary import build_generator, count_macs, count_parameters


def _builtin_variants() -> dict[str, VariantConfig]:
    variants = [default_variant(arch, flow, disc) for arch, flow, disc in product(INTERP_ARCHS, FLOWS, DISCS)]
    variants += [default_variant(arch) for arch in AUTOENCODER_ARCHS]
    return {variant.name(): variant for variant in variants}


# Every arch x flow x disc combination with default settings, plus vae and vqvae.
BUILTIN_VARIANTS: dict[str, VariantConfig] = _builtin_variants()


def builtin_variant(name: str) -> VariantConfig:
    try:
        return BUILTIN_VARIANTS[name]
    except KeyError:
        known = ", ".join(BUILTIN_VARIANTS)
        raise NotFoundError(f"no built-in variant {name!r}: choose one of {known}") from None


@dataclass(frozen=True)
class VariantSummary:
    name: str
    kind: str
    arch: str
    flow: str
    disc: str
    params: int  # generator (interpolator or autoencoder)
    macs: int | None  # generator, one sample at the described resolution; None without one
    disc_params: int | None  # None without a discriminator
    disc_macs: int | None
    generator_config: dict[str, Any]
    discriminator_config: dict[str, Any]
    loss_config: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


GENERATOR_FIELDS = {
    "interp": ("arch", "flow", "width", "depth"),
    "autoencoder": ("arch", "width", "depth", "latent_channels", "codebook_size", "vq_mode"),
}
DISCRIMINATOR_FIELDS = ("disc", "disc_conditional", "adv_loss", "grad_penalty", "grad_penalty_weight")


def describe_variant(
    variant: VariantConfig, width: int | None = None, height: int | None = None
) -> VariantSummary:
    """Sizes and settings of a variant; MACs (one width x height sample) only when a size is given,
    since counting them runs the model once."""
    config = variant.to_dict()
    generator = build_generator(variant)
    discriminator = build_discriminator(variant) if variant.kind == "interp" else None
    sized = width is not None and height is not None

    def macs(module: nn.Module | None) -> int | None:
        return count_macs(module, width, height) if sized and module is not None else None

    return VariantSummary(
        name=variant.name(),
        kind=variant.kind,
        arch=variant.arch,
        flow=variant.flow,
        disc=variant.disc,
        params=count_parameters(generator),
        macs=macs(generator),
        disc_params=None if discriminator is None else count_parameters(discriminator),
        disc_macs=macs(discriminator),
        generator_config={k: config[k] for k in GENERATOR_FIELDS[variant.kind]},
        discriminator_config={} if discriminator is None else {k: config[k] for k in DISCRIMINATOR_FIELDS},
        loss_config={"losses": dict(variant.losses), "perceptual_source": variant.perceptual_source},
    )


def load_variant_file(path: Path) -> VariantConfig:
    """A variant from a TOML or JSON file: its fields at top level, or under a `variant` table."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"variant file {path} does not exist: pass a .toml or .json file")
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(path.read_text())
        elif path.suffix == ".json":
            data = json.loads(path.read_text())
        else:
            raise UsageError(f"variant file {path} must end in .toml or .json")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot parse variant file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"variant file {path} must hold a table of variant settings")
    if isinstance(data.get("variant"), dict):
        data = data["variant"]
    try:
        return VariantConfig.from_dict(data)
    except TypeError as exc:
        # VariantConfig checks values, not types: "width = '32'" fails on comparison.
        raise UsageError(f"variant file {path} has a setting of the wrong type: {exc}") from None
