"""`afi interpolate` against ffmpeg's minterpolate (mci): speed and accuracy on the same clips.

    .venv/bin/python -m bench.interpolate [--run RUN --home AFI_HOME | --checkpoint FILE | --steps 400]
        [--sizes 480 1080] [--frames 48] [--scales 0.5 1] [--threads N] [--keep DIR]

For each size, a synthetic cartoon is rendered at 24 fps on ones; every other frame is dropped
and the 12 fps rest is encoded as the input (H.264 CRF 16, with a tone track). Each method
brings it back to 24 fps and is scored by PSNR of its in-betweens against the dropped frames
(in-betweens next to a scene cut, and those minterpolate does not make at the end, are left out).

Throughput is output frames per second of wall time for the whole job (decode, analysis,
interpolation, encoding), measured in this run on this machine. Methods:
- afi model: the quickstart's model, a DIS-guided U-Net (width 16, depth 3) trained as
  `afi quickstart` trains it (its data, 128 px, its settings) for --steps on this CPU; or a run of
  a registry (--run, --home: e.g. the best run of a real quickstart), or a --checkpoint. It runs at
  the scale `afi interpolate` picks (networks at about the training size, full-size warping), and
  at each of --scales too;
- afi flow / blend: the classical baselines through the same pipeline;
- minterpolate: `ffmpeg -vf minterpolate=fps=24:mi_mode=mci`, encoded with the same x264
  settings as AFI uses: the reference the ratios are against.
It also times the model's forward pass in fp32 and bf16 autocast on the CPU (AFI keeps fp32 on
CPUs: this is why).
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
    """Every output is read back the same way, as AFI reads its input."""
    from afi.data.video import frame_to_rgb

    with av.open(str(path)) as container:
        return np.stack([frame_to_rgb(f) for f in container.decode(video=0)])


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

    output = folder / f"{clip.source.stem}-{label.replace(' ', '-')}.mp4"
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
    """The quickstart's best-placed variant (DIS-guided U-Net, no discriminator), trained on the
    quickstart's data with its settings for `steps`; returns the run name."""
    from afi.launch.runs import RunRequest, create_run
    from afi.quickstart import QuickstartOptions, base_config, ensure_dataset
    from afi.train.service import start_run

    options = QuickstartOptions()
    ensure_dataset(engine, options, print)
    config = base_config(options, steps)
    record = create_run(engine, RunRequest(config=config, name="bench-quickstart-model"))
    started = time.perf_counter()
    record = start_run(engine, record.id)
    print(f"trained {record.name} ({record.variant}, {options.size} px, {steps} steps) in "
          f"{time.perf_counter() - started:.0f} s: {record.status}")
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
    parser.add_argument("--run", help="Use this run of the registry in --home instead of training one.")
    parser.add_argument("--home", type=Path, help="The AFI_HOME whose registry holds --run.")
    parser.add_argument("--checkpoint", type=Path, help="Use this checkpoint instead of training one.")
    parser.add_argument("--steps", type=int, default=400,
                        help="Training steps of the bench model (about what a 10-minute quickstart gives a run).")
    parser.add_argument("--sizes", type=int, nargs="+", default=[480, 1080], choices=sorted(SIZES))
    parser.add_argument("--frames", type=int, default=48, help="Frames of the 24 fps truth per clip.")
    parser.add_argument("--scales", type=float, nargs="*", default=[], help="Also run the model at these scales.")
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
    os.environ["AFI_HOME"] = str(args.home or folder / "afi_home")
    from afi.db import open_registry
    from afi.video.baselines import BaselineInterpolator
    from afi.video.engine import ModelInterpolator, load_model_file, load_run_model

    if args.checkpoint is not None:
        loaded = load_model_file(args.checkpoint)
    else:
        engine = open_registry(None)
        loaded = load_run_model(engine, args.run or train_model(engine, args.steps))
    model = ModelInterpolator(loaded)
    print(f"device {model.setup.describe()}, torch threads {torch.get_num_threads()}, model {loaded.source}, "
          f"trained at {loaded.train_size}")
    compare_precisions(loaded)

    for height in args.sizes:
        clip = make_clip(folder, SIZES[height], args.frames)
        frames, seconds = run_minterpolate(clip, folder, args.threads)
        # minterpolate stops at the last input frame and drops the in-betweens it cannot bracket:
        # score only the ones every method made.
        clip = replace(clip, scored=tuple(j for j in clip.scored if j < len(frames)))
        reference = Outcome("ffmpeg minterpolate mci", len(frames) / seconds, mean_psnr(frames, clip))
        print(f"\n{height}p: the model runs at scale {model.scale_for(*SIZES[height][::-1]):.3f}")
        outcomes = [
            run_afi(clip, model, folder, "model"),
            *(run_afi(clip, ModelInterpolator(loaded, scale=scale), folder, f"model scale {scale:g}")
              for scale in args.scales),
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
