"""Loader throughput against the raw decode speed of the same files, for each storage format.

    python -m bench.data [--size 288] [--crop 256] [--clips 12] [--workers 2] [--batch 8] [--epochs 10] [--rounds 2]

(Run as a module from the repository root: `python bench/data.py` would put bench/ first on the
import path, where bench/registry.py hides the registry package.)

Builds a `synth` dataset per image format (webp, png) in a throwaway AFI_HOME, then measures:
  raw     triplets/s decoding the same three files per triplet with PIL (open + decode to an
          RGB array) in this process, single-threaded: the limit the ratio is taken against;
  loader  triplets/s delivered by `make_loader` (random crop to --crop, flips, temporal reversal,
          float batches) with --workers processes, timed after the first batch so worker
          start-up is excluded.
ratio = loader / raw; the target is >= 0.70. Each wall-clock figure is the best of --rounds.

On a shared machine other processes take cores from the two sides unevenly (the loader needs
workers + 1 processes scheduled, the baseline one), so CPU time per triplet is printed as well:
`cpu ratio` = (raw CPU ms per triplet) x workers / (loader worker CPU ms per triplet), what the
wall ratio becomes when the workers each have a free core; the load average says how shared
the machine was.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

TARGET = 0.70


@dataclass(frozen=True)
class Rate:
    per_second: float  # triplets per wall-clock second
    cpu_ms: float  # CPU milliseconds per triplet, in the process(es) doing the decoding


def _cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def raw_decode_rate(root: Path, triplets: list[tuple[str, str, str]], epochs: int) -> Rate:
    paths = [[root / p for p in triplet] for triplet in triplets]
    cpu, start = _cpu_seconds(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(epochs):
        for triplet in paths:
            for path in triplet:
                with Image.open(path) as image:
                    np.asarray(image.convert("RGB"))
    count = epochs * len(paths)
    return Rate(
        count / (time.perf_counter() - start),
        1e3 * (_cpu_seconds(resource.RUSAGE_SELF) - cpu) / count,
    )


def loader_rate(dataset, batch: int, workers: int, epochs: int) -> Rate:
    from afi.data.loader import make_loader

    children = _cpu_seconds(resource.RUSAGE_CHILDREN)
    batches = iter(
        make_loader(dataset, batch=batch, workers=workers, seed=0, epochs=epochs, drop_last=False)
    )
    first = len(next(batches)["key"])  # worker start-up and the first prefetch are not throughput
    count, start = 0, time.perf_counter()
    for item in batches:
        count += len(item["key"])
    elapsed = time.perf_counter() - start
    del batches  # joins the workers, so their CPU time is counted as our children's
    worker_cpu = _cpu_seconds(resource.RUSAGE_CHILDREN) - children
    return Rate(count / elapsed, 1e3 * worker_cpu / (count + first))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=288, help="stored frame side (even)")
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--frames", type=int, default=24, help="frames per clip")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        os.environ["AFI_HOME"] = home
        os.environ.pop("AFI_DB_URL", None)
        from afi.data.importers import ImportOptions
        from afi.data.loader import AugmentConfig
        from afi.data.service import open_split, synth_dataset
        from afi.data.synth import SynthConfig
        from afi.db import open_registry

        engine = open_registry(f"sqlite:///{home}/registry.db")
        config = SynthConfig(
            clips=args.clips, frames_per_clip=args.frames, width=args.size, height=args.size, seed=0
        )
        print(
            f"synth {args.clips}x{args.frames} frames at {args.size}px, crop {args.crop}, batch {args.batch}, "
            f"{args.workers} workers, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
        )
        print(
            f"{'format':7} {'KiB/frame':>9} {'raw t/s':>8} {'loader t/s':>10} {'ratio':>6}   "
            f"{'raw cpu ms/t':>12} {'worker cpu ms/t':>15} {'cpu ratio':>9}"
        )
        for image_format in ("webp", "png"):
            record = synth_dataset(
                engine,
                f"bench-{image_format}",
                config,
                options=replace(ImportOptions(), image_format=image_format),
            ).record
            dataset = open_split(
                engine, record.name, "train", crop=(args.crop, args.crop), augment=AugmentConfig()
            )
            files = [paths for _, _, paths, _ in dataset.items]
            raws = [
                raw_decode_rate(Path(record.root), files, args.epochs) for _ in range(args.rounds)
            ]
            loads = [
                loader_rate(dataset, args.batch, args.workers, args.epochs)
                for _ in range(args.rounds)
            ]
            raw, loaded = (
                max(raws, key=lambda r: r.per_second),
                max(loads, key=lambda r: r.per_second),
            )
            raw_cpu, worker_cpu = min(r.cpu_ms for r in raws), min(r.cpu_ms for r in loads)
            ratio, cpu_ratio = (
                loaded.per_second / raw.per_second,
                raw_cpu * args.workers / worker_cpu,
            )
            verdict = "ok" if ratio >= TARGET else f"below {TARGET:.0%}"
            print(
                f"{image_format:7} {record.disk_bytes / record.frame_count / 1024:9.1f} {raw.per_second:8.1f} "
                f"{loaded.per_second:10.1f} {ratio:6.2f}   {raw_cpu:12.2f} {worker_cpu:15.2f} {cpu_ratio:9.2f}  {verdict}"
            )
        print(f"load average after: {os.getloadavg()[0]:.1f}")
        engine.dispose()


if __name__ == "__main__":
    main()
