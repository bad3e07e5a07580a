"""`afi interpolate` against ffmpeg's minterpolate (mci): speed and accuracy on the same clips.

    python bench/interpolate.py [--checkpoint FILE] [--steps 300] [--sizes 480 1080] [--frames 48]
                                [--tile N] [--threads N] [--keep DIR]

For each size, a synthetic cartoon is rendered at 24 fps on ones; every other frame is dropped
and the 12 fps rest is encoded as the input (H.264 CRF 16, with a tone track). Each method
brings it back to 24 fps and is scored by PSNR of its in-betweens against the dropped frames
(in-betweens next to a scene cut, and those minterpolate does not make at the end, are left out).

Throughput is output frames per second of wall time for the whole job (decode, analysis,
interpolation, encoding), measured in this run on this machine. Methods:
- afi model: the smallest U-Net + IFNet-flow interpolator, trained here for --steps on CPU
  (or --checkpoint); tiled at its training size as `afi interpolate --run` does, whole frames
  for a --checkpoint as `afi interpolate --checkpoint` does (--tile overrides both);
- afi flow / blend: the classical baselines through the same pipeline;
- minterpolate: `ffmpeg -vf minterpolate=fps=24:mi_mode=mci`, encoded with the same x264
  settings as AFI uses: the reference the ratios are against.
It also prints how far the model's tiled output is from its whole-frame output, and times its
forward pass in fp32 and bf16 autocast on the CPU (AFI keeps fp32 on CPUs: this is why).
On a shared machine pass --threads 1: oversubscribed OpenMP threads make timings meaningless.

Needs the `ffmpeg` command-line tool (apt-get install ffmpeg).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import av
import cv2
import numpy as np
import torch

# The repository first: this folder's registry.py (the registry bench) would shadow the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIZES = {480: (854, 480), 720: (1280, 720), 1080: (1920, 1080)}
DATASET = "bench-toons"


@dataclass(frozen=True)
class Clip:
    source: Path  # the 12 fps input video
    truth: np.ndarray  # (N, H, W, 3) the 24 fps frames, the even ones being the input's
    scored: tuple[int, ...]  # 24 fps indices of in-betweens to score


@dataclass(frozen=True)
class Outcome:
    method: str
    frames_per_s: float
    psnr: float


def make_clip(folder: Path, size: tuple[int, int], frames: int) -> Clip:
    from afi.data.synth import SynthConfig, generate_cartoon
    from afi.data.video import write_video

    clips = 2
    config = SynthConfig(
        clips=clips, frames_per_clip=frames // clips, width=size[0], height=size[1], fps=24.0, cadences=(1,), seed=7
    )
    video = generate_cartoon(config)
    source = folder / f"input-{size[1]}p.mp4"
    write_video(source, video.frames[::2], 12.0, tone_hz=440.0)
    # An in-between at 2i+1 lies between input frames i and i+1: both must be in one shot.
    starts = {0, *video.cuts}
    scored = tuple(j for j in range(1, len(video.frames) - 1, 2) if j + 1 not in starts and j + 1 < len(video.frames))
    return Clip(source, video.frames, scored)


def decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def mean_psnr(output: np.ndarray, clip: Clip) -> float:
    from afi.metrics import psnr

    if len(output) <= max(clip.scored):
        raise SystemExit(f"an output has {len(output)} frames, too few to score in-between {max(clip.scored)}")

    def tensor(frames: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255)

    picked = list(clip.scored)
    return float(psnr(tensor(output[picked]), tensor(clip.truth[picked])).mean())


def run_afi(clip: Clip, interpolator, folder: Path, label: str) -> Outcome:
    from afi.video.interpolate import InterpolateRequest, interpolate_video

    output = folder / f"{clip.source.stem}-{label}.mp4"
    started = time.perf_counter()
    result = interpolate_video(InterpolateRequest(clip.source, output, factor=2), interpolator)
    seconds = time.perf_counter() - started
    return Outcome(f"afi {label}", result.output_frames / seconds, mean_psnr(decode(output), clip))


def run_minterpolate(clip: Clip, folder: Path, threads: int | None) -> tuple[np.ndarray, float]:
    """The output frames of ffmpeg's motion-compensated interpolation, and the seconds it took."""
    output = folder / f"{clip.source.stem}-minterpolate.mp4"
    limit = [] if threads is None else ["-threads", str(threads), "-filter_threads", str(threads)]
    # The same encoder settings as afi.video.encode, so only the interpolation differs.
    encode = "-c:v libx264 -preset veryfast -crf 18 -c:a copy".split()
    filters = ["-vf", "minterpolate=fps=24:mi_mode=mci"]
    command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *limit, "-i", str(clip.source)]
    started = time.perf_counter()
    subprocess.run([*command, *filters, *encode, *limit, str(output)], check=True)
    return decode(output), time.perf_counter() - started


def train_model(engine, steps: int) -> str:
    """A small flow interpolator trained on synthetic cartoons at 128 px; returns the run name."""
    from afi.config import DataConfig, RunConfig, StageConfig, default_variant
    from afi.data.importers import ImportOptions
    from afi.data.service import synth_dataset
    from afi.data.split import SplitConfig
    from afi.data.synth import SynthConfig
    from afi.launch.runs import RunRequest, create_run
    from afi.train.service import start_run

    synth_dataset(
        engine,
        DATASET,
        SynthConfig(clips=16, frames_per_clip=24, width=256, height=256, cadences=(1,), seed=1),
        options=ImportOptions(split=SplitConfig(val=0.125, test=0.0)),
    )
    # The smallest flow variant: at full resolution a CPU is memory-bound, so width is what costs.
    variant = replace(default_variant("unet", flow="ifnet"), width=8, depth=2)
    config = RunConfig(
        variant=variant,
        data=DataConfig(dataset=DATASET, val_limit=32),
        stages=(StageConfig(width=128, height=128, steps=steps, batch=8, lr=1e-3, warmup_steps=20),),
        val_every=max(1, steps // 4),
        ckpt_every=max(1, steps // 4),
        image_every=10**6,
    ).validate()
    record = create_run(engine, RunRequest(config=config, name="bench-model"))
    started = time.perf_counter()
    record = start_run(engine, record.id)
    print(
        f"trained {record.name} ({variant.name()}, 128 px, {steps} steps) in {time.perf_counter() - started:.0f} s: {record.status}"
    )
    return record.name


def forward_seconds(model, setup, size: tuple[int, int], repeats: int = 3) -> float:
    frames = torch.rand(2, 3, size[1], size[0])
    with torch.inference_mode():
        times = []
        for _ in range(repeats + 1):
            started = time.perf_counter()
            with setup.autocast():
                model(frames[:1], frames[1:], 0.5)
            times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def compare_tiling(loaded, clip: Clip, tiling) -> None:
    """The trained model on one in-between of the clip, whole and in tiles: GroupNorm sees
    per-tile statistics in tiles (as on its training crops), so the two differ a little."""
    from afi.video.engine import ModelInterpolator

    j = clip.scored[0]
    ends = clip.truth[[j - 1]], clip.truth[[j + 1]]
    whole = ModelInterpolator(loaded)(*ends, np.array([0.5]))
    tiled = ModelInterpolator(loaded, tiling=tiling)(*ends, np.array([0.5]))
    difference = np.abs(whole.astype(np.float32) - tiled.astype(np.float32))
    print(
        f"tiles {tiling.width}x{tiling.height} vs whole frame: mean |difference| {difference.mean():.2f} levels, "
        f"99th percentile {np.percentile(difference, 99):.0f}; PSNR whole {_psnr(whole[0], clip.truth[j]):.2f} dB, "
        f"tiled {_psnr(tiled[0], clip.truth[j]):.2f} dB"
    )


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def compare_precisions(loaded) -> None:
    from afi.train.device import DeviceSetup

    fp32 = DeviceSetup(torch.device("cpu"), "fp32", channels_last=False, compile=False)
    bf16 = DeviceSetup(torch.device("cpu"), "bf16", channels_last=False, compile=False)
    a, b = forward_seconds(loaded.model, fp32, (256, 256)), forward_seconds(loaded.model, bf16, (256, 256))
    print(
        f"CPU forward pass, 256x256: fp32 {a * 1000:.0f} ms, bf16 autocast {b * 1000:.0f} ms (bf16/fp32 time {b / a:.2f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, help="Use this checkpoint instead of training one.")
    parser.add_argument("--steps", type=int, default=300, help="Training steps of the bench model.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[480, 1080], choices=sorted(SIZES))
    parser.add_argument("--frames", type=int, default=48, help="Frames of the 24 fps truth per clip.")
    parser.add_argument("--tile", type=int, help="As `afi interpolate --tile` (default: the training size when known).")
    parser.add_argument("--threads", type=int, help="Threads for torch, OpenCV and ffmpeg (default: theirs, all cores).")
    parser.add_argument("--keep", type=Path, help="Keep the videos in this folder.")
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        raise SystemExit("the ffmpeg command-line tool is needed: apt-get install ffmpeg")

    if args.threads is not None:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)  # DIS flow, the flow baseline
    folder = Path(tempfile.mkdtemp(prefix="afi-bench-")) if args.keep is None else args.keep
    folder.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AFI_HOME", str(folder / "afi_home"))
    from afi.db import open_registry
    from afi.video.baselines import BaselineInterpolator
    from afi.video.engine import ModelInterpolator, Tiling, load_model_file, load_run_model, resolve_tiling

    if args.checkpoint is not None:
        loaded = load_model_file(args.checkpoint)
    else:
        engine = open_registry(None)
        loaded = load_run_model(engine, train_model(engine, args.steps))
    model = ModelInterpolator(loaded, tiling=resolve_tiling(args.tile, loaded.train_size))
    print(
        f"device {model.setup.describe()}, torch threads {torch.get_num_threads()}, model {loaded.source}, tiles {model.tiling}"
    )
    compare_precisions(loaded)

    for height in args.sizes:
        clip = make_clip(folder, SIZES[height], args.frames)
        if height == args.sizes[0]:
            compare_tiling(loaded, clip, model.tiling or Tiling.square(128))
        frames, seconds = run_minterpolate(clip, folder, args.threads)
        # minterpolate stops at the last input frame and drops the in-betweens it cannot bracket:
        # score only the ones every method made.
        clip = replace(clip, scored=tuple(j for j in clip.scored if j < len(frames)))
        reference = Outcome("ffmpeg minterpolate mci", len(frames) / seconds, mean_psnr(frames, clip))
        outcomes = [
            run_afi(clip, model, folder, "model"),
            run_afi(clip, BaselineInterpolator("flow"), folder, "flow"),
            run_afi(clip, BaselineInterpolator("blend"), folder, "blend"),
            reference,
        ]
        print(
            f"\n{height}p ({SIZES[height][0]}x{SIZES[height][1]}), 12 -> 24 fps, {len(clip.truth)} output frames, "
            f"{len(clip.scored)} in-betweens scored"
        )
        print(f"{'method':<26}{'frames/s':>10}{'x minterp':>11}{'PSNR dB':>9}{'vs minterp':>12}")
        for outcome in outcomes:
            print(
                f"{outcome.method:<26}{outcome.frames_per_s:>10.2f}{outcome.frames_per_s / reference.frames_per_s:>10.2f}x"
                f"{outcome.psnr:>9.2f}{outcome.psnr - reference.psnr:>+11.2f}"
            )
    if args.keep is None:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
