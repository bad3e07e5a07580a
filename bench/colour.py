"""Colours of the frames `afi interpolate` only copies: RGB PSNR against the input.

    .venv/bin/python -m bench.colour [--frames 24]

ffmpeg's testsrc2 (320x240, saturated colour detail) is encoded at 12 fps with x264 CRF 14, in
yuv420p and yuv444p, untagged (read as BT.601) and tagged BT.709. `afi interpolate --factor 2
--method blend --keep-timing` brings each to 24 fps; its even frames are copies of the input's.
The reference, measured in the same run: `ffmpeg -i IN -c:v libx264 -crf 18 -preset veryfast`,
AFI's x264 settings with no RGB round trip. Needs the `ffmpeg` command-line tool.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import av
import numpy as np

from afi.video.baselines import BaselineInterpolator
from afi.video.interpolate import InterpolateRequest, interpolate_video

SPACES = {"bt601": None, "bt709": 1}


def encode(path: Path, frames: list[av.VideoFrame], chroma: str, space: int | None, options: dict) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=12, options=options)
        stream.width, stream.height, stream.pix_fmt = frames[0].width, frames[0].height, chroma
        if space is not None:
            context = stream.codec_context
            context.colorspace = context.color_primaries = context.color_trc = space
        for frame in frames:
            converted = frame.reformat(format=chroma, dst_colorspace="ITU709" if space else None)
            converted.pts = None
            out.mux(stream.encode(converted))
        out.mux(stream.encode())


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255**2 / max(mse, 1e-10))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=24)
    args = parser.parse_args()
    with av.open(f"testsrc2=size=320x240:rate=12:duration={args.frames / 12}", format="lavfi") as source:
        pattern = list(source.decode(video=0))[: args.frames]
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for chroma in ("yuv420p", "yuv444p"):
            for name, space in SPACES.items():
                source = work / f"in-{chroma}-{name}.mp4"
                encode(source, pattern, chroma, space, {"crf": "14"})
                output = work / f"out-{chroma}-{name}.mp4"
                request = InterpolateRequest(input=source, output=output, factor=2.0, keep_timing=True)
                interpolate_video(request, BaselineInterpolator("blend"))
                reference = work / f"ref-{chroma}-{name}.mp4"
                subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(source), "-c:v", "libx264",
                                "-crf", "18", "-preset", "veryfast", str(reference)], check=True)
                inputs, copies, again = decode(source), decode(output)[::2], decode(reference)
                afi = [psnr(a, b) for a, b in zip(inputs, copies)]
                ffmpeg = [psnr(a, b) for a, b in zip(inputs, again)]
                print(f"{chroma} {name}: afi copies {np.mean(afi):.2f} dB mean ({min(afi):.2f} worst); "
                      f"ffmpeg re-encode {np.mean(ffmpeg):.2f} ({min(ffmpeg):.2f}); "
                      f"afi - ffmpeg {np.mean(afi) - np.mean(ffmpeg):+.2f} dB")


if __name__ == "__main__":
    main()
