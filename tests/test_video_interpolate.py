"""`afi interpolate` end to end on a synthetic cartoon at 12 fps with a cut, holds and audio."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from typer.testing import CliRunner
from video_factories import CUT, Decoded, blend, decode, make_cartoon, mean_abs, write_audio_only

from afi.cli.main import app
from afi.config import default_variant
from afi.models import build_autoencoder, build_interpolator
from afi.video.encode import partial_path
from afi.video.resume import work_folder_for

runner = CliRunner()
# Re-encoding a 96x64 cartoon at CRF 18 moves it by about 3 levels on average (4:2:0 chroma on
# its many outlines); a drawing change moves it by 15 or more.
CODEC_NOISE = 5.0
TIMES = (0.0, 0.25, 0.5, 0.75, 1.0)


def closest_time(frame: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Which cross-fade of a and b (t in TIMES) `frame` is."""
    return min(TIMES, key=lambda t: mean_abs(frame, blend(a, b, t)))


@pytest.fixture(scope="module")
def cartoon(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Decoded]:
    path = tmp_path_factory.mktemp("cartoon") / "cartoon.mp4"
    make_cartoon(path)
    return path, decode(path)


def interpolate(*args: str):
    return runner.invoke(app, ["interpolate", *args])


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code in (1, 2), result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def assert_nothing_written(output: Path) -> None:
    leftovers = [p.name for p in output.parent.iterdir() if p.name.startswith(output.stem)]
    assert not leftovers, leftovers
    assert not partial_path(output).exists() and not work_folder_for(output).exists()


def test_factor_two_doubles_frames_keeps_duration_and_audio(cartoon, tmp_path: Path) -> None:
    source, decoded = cartoon
    output = tmp_path / "out.mp4"
    result = interpolate(str(source), "-o", str(output), "--method", "blend", "--factor", "2", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["cuts"] == 1 and report["audio"] is True and report["resumed_frames"] == 0
    out = decode(output)
    assert len(out.frames) == 2 * len(decoded.frames) == report["output_frames"]
    assert out.fps == 24.0
    assert abs(len(out.frames) / out.fps - len(decoded.frames) / decoded.fps) <= 1 / 24
    assert abs(out.duration - decoded.duration) <= 1 / 24
    assert out.audio == ("aac",)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # no partial file, no work folder


def test_no_frame_is_blended_across_the_cut(cartoon, tmp_path: Path) -> None:
    source, decoded = cartoon
    output = tmp_path / "out.mp4"
    assert interpolate(str(source), "-o", str(output), "--method", "blend").exit_code == 0
    out = decode(output).frames
    last_before, first_after = decoded.frames[CUT - 2], decoded.frames[CUT]
    # Shot 1's last drawing (frames 14-15) fills output frames 28-31: repeated, not faded into shot 2.
    for j in range(2 * CUT - 4, 2 * CUT):
        assert closest_time(out[j], last_before, first_after) == 0.0, j
        assert mean_abs(out[j], last_before) < CODEC_NOISE, j
    assert closest_time(out[2 * CUT], last_before, first_after) == 1.0


def test_held_drawings_are_retimed_over_their_hold(cartoon, tmp_path: Path) -> None:
    """Shot 2 is on twos: drawing f (frames f, f+1) moves to f+2 over four output frames."""
    source, decoded = cartoon
    retimed, kept = tmp_path / "retimed.mp4", tmp_path / "kept.mp4"
    assert interpolate(str(source), "-o", str(retimed), "--method", "blend").exit_code == 0
    assert interpolate(str(source), "-o", str(kept), "--method", "blend", "--keep-timing").exit_code == 0
    out, held = decode(retimed).frames, decode(kept).frames
    assert len(held) == len(out)
    f = CUT + 2
    a, b = decoded.frames[f], decoded.frames[f + 2]
    assert mean_abs(a, b) > 3 * CODEC_NOISE  # the drawing really changes
    assert [closest_time(out[2 * f + k], a, b) for k in range(5)] == [0.0, 0.25, 0.5, 0.75, 1.0]
    # --keep-timing keeps the hold: drawing f stays for 3 output frames, then one in-between.
    assert [closest_time(held[2 * f + k], a, b) for k in range(5)] == [0.0, 0.0, 0.0, 0.5, 1.0]


def test_fps_option_sets_the_output_rate(cartoon, tmp_path: Path) -> None:
    source, decoded = cartoon
    output = tmp_path / "out.mkv"
    result = interpolate(str(source), "-o", str(output), "--method", "nearest", "--fps", "30", "--codec", "mpeg4")
    assert result.exit_code == 0, result.output
    out = decode(output)
    assert out.fps == 30.0 and len(out.frames) == 80  # 32 frames at 12 fps = 2.667 s
    assert out.audio == ("aac",)


def test_corrupt_input_is_a_clear_error(cartoon, tmp_path: Path) -> None:
    source, _ = cartoon
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    output = tmp_path / "out.mp4"
    assert_one_line_error(interpolate(str(truncated), "-o", str(output), "--method", "blend"), "truncated.mp4")
    assert_nothing_written(output)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x01not a video" * 100)
    assert_one_line_error(interpolate(str(garbage), "-o", str(output), "--method", "blend"), "garbage.mp4")
    assert_nothing_written(output)


def test_a_file_without_video_is_a_clear_error(tmp_path: Path) -> None:
    audio = write_audio_only(tmp_path / "tone.m4a")
    output = tmp_path / "out.mp4"
    assert_one_line_error(interpolate(str(audio), "-o", str(output), "--method", "blend"), "no video stream")
    assert_nothing_written(output)


def test_an_unwritable_output_is_a_clear_error(cartoon, tmp_path: Path) -> None:
    source, _ = cartoon
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    result = interpolate(str(source), "-o", str(not_a_folder / "out.mp4"), "--method", "blend")
    assert_one_line_error(result, "does not exist")
    assert_one_line_error(interpolate(str(source), "-o", str(tmp_path), "--method", "blend"), "is a folder")
    assert_one_line_error(interpolate(str(source), "-o", str(tmp_path / "out.xyz"), "--method", "blend"), "suffix")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_audio_the_output_format_cannot_hold_is_refused_before_any_work(cartoon, tmp_path: Path) -> None:
    source, _ = cartoon
    output = tmp_path / "out.webm"
    result = interpolate(str(source), "-o", str(output), "--method", "blend", "--codec", "libvpx-vp9")
    assert_one_line_error(result, "cannot hold the source's aac audio", ".mkv")
    assert_nothing_written(output)


def save_payload(path: Path, variant_arch: str, weights: dict) -> Path:
    variant = replace(default_variant(variant_arch), width=8, depth=2)
    torch.save({"variant": variant.to_dict(), "model": weights}, path)
    return path


def test_a_checkpoint_of_another_architecture_is_a_clear_error(cartoon, tmp_path: Path) -> None:
    source, _ = cartoon
    output = tmp_path / "out.mp4"
    isnet_weights = build_interpolator(replace(default_variant("isnet"), width=8, depth=2)).state_dict()
    mislabelled = save_payload(tmp_path / "mislabelled.pt", "unet", isnet_weights)
    result = interpolate(str(source), "-o", str(output), "--checkpoint", str(mislabelled))
    assert_one_line_error(result, "do not fit the unet", "mislabelled.pt")
    vae_weights = build_autoencoder(replace(default_variant("vae"), width=8, depth=2)).state_dict()
    autoencoder = save_payload(tmp_path / "vae.pt", "vae", vae_weights)
    assert_one_line_error(interpolate(str(source), "-o", str(output), "--checkpoint", str(autoencoder)), "autoencoder")
    not_afi = tmp_path / "plain.pt"
    torch.save({"weight": torch.zeros(3)}, not_afi)
    assert_one_line_error(
        interpolate(str(source), "-o", str(output), "--checkpoint", str(not_afi)), "not an AFI checkpoint"
    )
    assert_nothing_written(output)


def test_a_tiny_model_checkpoint_interpolates(cartoon, tmp_path: Path) -> None:
    """An untrained interpolator is the blend baseline (zero-initialised heads): same frames."""
    source, _ = cartoon
    variant = replace(default_variant("unet"), width=8, depth=2)
    checkpoint = tmp_path / "tiny.pt"
    torch.save({"variant": variant.to_dict(), "model": build_interpolator(variant).state_dict()}, checkpoint)
    by_model, by_blend = tmp_path / "model.mp4", tmp_path / "blend.mp4"
    result = interpolate(str(source), "-o", str(by_model), "--checkpoint", str(checkpoint), "--tile", "48")
    assert result.exit_code == 0, result.output
    assert interpolate(str(source), "-o", str(by_blend), "--method", "blend").exit_code == 0
    model_frames, blend_frames = decode(by_model).frames, decode(by_blend).frames
    assert model_frames.shape == blend_frames.shape
    assert mean_abs(model_frames, blend_frames) < 1.5  # rounding differences, amplified by x264


def test_a_dis_guided_checkpoint_at_half_scale_is_near_the_flow_baseline(cartoon, tmp_path: Path) -> None:
    """Untrained, a DIS-guided model is the flow baseline; at --scale 0.5 its networks and DIS
    see half-size frames and the full-size frames are warped: close to it, far from the blend."""
    source, _ = cartoon
    variant = replace(default_variant("unet", "dis"), width=8, depth=2)
    checkpoint = tmp_path / "dis.pt"
    torch.save({"variant": variant.to_dict(), "model": build_interpolator(variant).state_dict()}, checkpoint)
    outputs = {name: tmp_path / f"{name}.mp4" for name in ("model", "flow", "blend")}
    result = interpolate(str(source), "-o", str(outputs["model"]), "--checkpoint", str(checkpoint), "--scale", "0.5")
    assert result.exit_code == 0, result.output
    for method in ("flow", "blend"):
        assert interpolate(str(source), "-o", str(outputs[method]), "--method", method).exit_code == 0
    frames = {name: decode(path).frames for name, path in outputs.items()}
    assert mean_abs(frames["model"], frames["flow"]) < mean_abs(frames["model"], frames["blend"]) / 2


def test_bad_scale_is_a_clear_error(cartoon, tmp_path: Path) -> None:
    source, _ = cartoon
    variant = replace(default_variant("unet"), width=8, depth=2)
    checkpoint = tmp_path / "tiny.pt"
    torch.save({"variant": variant.to_dict(), "model": build_interpolator(variant).state_dict()}, checkpoint)
    output = tmp_path / "out.mp4"
    model = ("-o", str(output), "--checkpoint", str(checkpoint))
    assert_one_line_error(interpolate(str(source), *model, "--scale", "1.5"), "--scale must lie in (0, 1]")
    assert_one_line_error(interpolate(str(source), *model, "--scale", "0.5", "--tile", "48"), "--tile")
    assert_nothing_written(output)


def test_exactly_one_source_of_in_betweens(cartoon, tmp_path: Path) -> None:
    source, _ = cartoon
    output = tmp_path / "out.mp4"
    assert_one_line_error(interpolate(str(source), "-o", str(output)), "exactly one")
    assert_one_line_error(
        interpolate(str(source), "-o", str(output), "--method", "blend", "--checkpoint", "x.pt"), "exactly one"
    )
    assert_one_line_error(
        interpolate(str(source), "-o", str(output), "--method", "blend", "--fps", "24", "--factor", "2"), "not both"
    )
    assert_one_line_error(
        interpolate(str(source), "-o", str(output), "--method", "blend", "--codec", "aac"), "audio encoder"
    )
    assert_nothing_written(output)


def test_odd_frame_sizes_are_padded_to_even(tmp_path: Path) -> None:
    """Odd sizes cannot be 4:2:0: the encoder pads one pixel, and every frame still comes out."""
    frames = np.random.default_rng(0).integers(0, 255, (6, 33, 47, 3), dtype=np.uint8)
    source = tmp_path / "odd.mkv"
    with av.open(str(source), mode="w") as container:
        stream = container.add_stream("ffv1", rate=12)
        stream.width, stream.height, stream.pix_fmt = 47, 33, "yuv444p"
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    output = tmp_path / "out.mp4"
    assert interpolate(str(source), "-o", str(output), "--method", "blend").exit_code == 0
    out = decode(output)
    assert out.frames.shape == (12, 34, 48, 3) and out.audio == ()
