"""Size and speed of every built-in variant: parameters, MACs and training-step time per sample.

    python bench/models.py [--size 256] [--batch 2] [--repeats 3] [--variants unet isnet ...]

G step: the generator's loss forward + backward (the variant's default losses). D step: the
discriminator loss with its gradient penalty (R1 by default), forward + backward, on a detached
fake. Neither includes the optimiser. Times are per sample (batch time / batch), medians over the
repeats after one warm-up, on CPU and on CUDA when available. On CPU the process's CPU time is
shown beside wall time: on a shared machine wall time swings with other load, CPU time much less
(it sums over threads, so it is about threads x wall on an idle machine). `x unet` is the whole
step (G + D) against the `unet` variant measured in the same run on the same device, in CPU time
on CPU and wall time on CUDA.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from afi.config import VariantConfig
from afi.losses import AutoencoderLoss, GeneratorLoss, discriminator_loss
from afi.models import BUILTIN_VARIANTS, build_discriminator, build_generator, count_macs, count_parameters

BASELINE = "unet"


@dataclass(frozen=True)
class Timing:
    wall: float  # seconds per sample
    cpu: float  # process CPU seconds per sample, all threads

    def __add__(self, other: Timing) -> Timing:
        return Timing(self.wall + other.wall, self.cpu + other.cpu)


NO_TIME = Timing(0.0, 0.0)


def median_timing(step: Callable[[], None], device: torch.device, repeats: int, batch: int) -> Timing:
    walls, cpus = [], []
    for _ in range(repeats + 1):  # the first is warm-up (allocator, cuDNN autotuning)
        if device.type == "cuda":
            torch.cuda.synchronize()
        wall, cpu = time.perf_counter(), time.process_time()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return Timing(statistics.median(walls[1:]) / batch, statistics.median(cpus[1:]) / batch)


def step_timings(
    variant: VariantConfig, device: torch.device, size: int, batch: int, repeats: int
) -> tuple[Timing, Timing]:
    """(G step, D step) per sample; D is NO_TIME without a discriminator."""
    torch.manual_seed(0)
    model = build_generator(variant).to(device)
    frame0, middle, frame1 = (torch.rand(batch, 3, size, size, device=device) for _ in range(3))
    if variant.kind == "autoencoder":
        ae_loss = AutoencoderLoss(variant)

        def ae_step() -> None:
            ae_loss(model(middle), middle)[0].backward()

        return median_timing(ae_step, device, repeats, batch), NO_TIME
    discriminator = build_discriminator(variant)
    if discriminator is not None:
        discriminator = discriminator.to(device)
    g_loss = GeneratorLoss(variant)

    def g_step() -> None:
        g_loss(model(frame0, frame1, 0.5), middle, frame0, frame1, discriminator)[0].backward()

    g_timing = median_timing(g_step, device, repeats, batch)
    if discriminator is None:
        return g_timing, NO_TIME
    with torch.no_grad():
        fake = model(frame0, frame1, 0.5).rgb

    def d_step() -> None:
        discriminator_loss(variant, discriminator, middle, fake, frame0, frame1)[0].backward()

    return g_timing, median_timing(d_step, device, repeats, batch)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", nargs="*", default=list(BUILTIN_VARIANTS))
    args = parser.parse_args()
    names = [BASELINE] + [n for n in args.variants if n != BASELINE]
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])

    threads = torch.get_num_threads()
    print(f"# {args.size}x{args.size}, batch {args.batch}, torch {torch.__version__}, {threads} CPU threads")
    if torch.cuda.is_available():
        print(f"# cuda: {torch.cuda.get_device_name()}")
    header = f"{'variant':<24}{'G params':>10}{'G GMACs':>9}{'D params':>10}{'D GMACs':>9}"
    header += f"{'cpu G ms':>10}{'(cpu-t)':>9}{'cpu D ms':>10}{'(cpu-t)':>9}{'x ' + BASELINE:>8}"
    if len(devices) > 1:
        header += f"{'cuda G ms':>11}{'cuda D ms':>11}{'x ' + BASELINE:>8}"
    print(header)
    baseline: dict[str, float] = {}
    for name in names:
        variant = BUILTIN_VARIANTS[name]
        generator = build_generator(variant)
        discriminator = build_discriminator(variant) if variant.kind == "interp" else None
        d_params, d_macs = "-", "-"
        if discriminator is not None:
            d_params = f"{count_parameters(discriminator) / 1e6:.2f}M"
            d_macs = f"{count_macs(discriminator, args.size, args.size) / 1e9:.2f}"
        row = (
            f"{name:<24}{count_parameters(generator) / 1e6:>9.2f}M"
            f"{count_macs(generator, args.size, args.size) / 1e9:>9.2f}{d_params:>10}{d_macs:>9}"
        )
        for device in devices:
            g, d = step_timings(variant, device, args.size, args.batch, args.repeats)
            on_cpu = device.type == "cpu"
            cost = (g + d).cpu if on_cpu else (g + d).wall
            ratio = cost / baseline.setdefault(device.type, cost)
            has_d = discriminator is not None
            if on_cpu:
                d_text = f"{d.wall * 1e3:>10.0f}{d.cpu * 1e3:>9.0f}" if has_d else f"{'-':>10}{'-':>9}"
                row += f"{g.wall * 1e3:>10.0f}{g.cpu * 1e3:>9.0f}{d_text}{ratio:>8.2f}"
            else:
                d_text = f"{d.wall * 1e3:.1f}" if has_d else "-"
                row += f"{g.wall * 1e3:>11.1f}{d_text:>11}{ratio:>8.2f}"
        print(row, flush=True)


if __name__ == "__main__":
    main()
