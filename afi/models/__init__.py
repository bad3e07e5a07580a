"""Interpolators, discriminators and autoencoders, built from a VariantConfig."""

from afi.models.autoencoders import VAE, VQVAE, AutoencoderOutput, build_autoencoder
from afi.models.discriminators import Discriminator, DiscOutput, build_discriminator
from afi.models.interpolator import InterpOutput, Interpolator, build_interpolator
from afi.models.summary import build_generator, count_macs, count_parameters
from afi.models.variants import (
    BUILTIN_VARIANTS,
    VariantSummary,
    builtin_variant,
    describe_variant,
    load_variant_file,
)

__all__ = [
    "BUILTIN_VARIANTS",
    "VAE",
    "VQVAE",
    "AutoencoderOutput",
    "DiscOutput",
    "Discriminator",
    "InterpOutput",
    "Interpolator",
    "VariantSummary",
    "build_autoencoder",
    "build_discriminator",
    "build_generator",
    "build_interpolator",
    "builtin_variant",
    "count_macs",
    "count_parameters",
    "describe_variant",
    "load_variant_file",
]
