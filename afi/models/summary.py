"""Model size and cost: parameter counts and multiply-accumulates at a given resolution."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from afi.config import VariantConfig
from afi.models.autoencoders import VAE, VQVAE, build_autoencoder
from afi.models.discriminators import Discriminator
from afi.models.interpolator import Interpolator, build_interpolator


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def build_generator(variant: VariantConfig) -> Interpolator | VAE | VQVAE:
    """The model a variant trains: its interpolator, or its autoencoder for vae/vqvae."""
    return build_autoencoder(variant) if variant.kind == "autoencoder" else build_interpolator(variant)


def example_inputs(model: nn.Module, width: int, height: int) -> tuple:
    """One sample of the inputs `model` takes, at width x height."""
    image = torch.rand(1, 3, height, width)
    if isinstance(model, Interpolator):
        return image, image.clone(), 0.5
    if isinstance(model, Discriminator):
        return image, image.clone(), image.clone()
    if isinstance(model, (VAE, VQVAE)):
        return (image,)
    raise TypeError(f"no example inputs for {type(model).__name__}")


def count_macs(model: nn.Module | VariantConfig, width: int, height: int) -> int:
    """Multiply-accumulates of one forward pass on one width x height sample (FLOPs / 2).

    Counts convolutions, matmuls and attention (torch's FlopCounterMode); elementwise ops and
    grid_sample are not counted. A VariantConfig counts its generator.
    """
    module = build_generator(model) if isinstance(model, VariantConfig) else model
    was_training = module.training
    # eval: counting must not update state such as a VQ codebook's moving averages
    module.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            module(*example_inputs(module, width, height))
    finally:
        module.train(was_training)
    return counter.get_total_flops() // 2
