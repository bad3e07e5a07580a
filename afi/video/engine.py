"""Run an interpolator, a trained model or a classical baseline, on batches of frame pairs.

Both meet afi.video.baselines.FrameInterpolator: frames0, frames1 (B, H, W, 3) uint8 and times
(B,) in, (B, H, W, 3) uint8 out, so the video service and `afi eval` never care which they hold.

A frame larger than what the model was trained on is interpolated at a scale (Interpolator's
`scale`, as RIFE does for 4K): its networks see the frame shrunk to about the training size, so
motions are in the range they learned and GroupNorm statistics match, while the flows and mask
they predict warp and blend the full-size frames. That is also what makes a model fast enough on a
CPU (bench/interpolate.py). `--tile` instead runs whole-resolution tiles, which overlap and are
blended with weights that ramp down towards each tile's inner edges, so no seam shows.

Forward passes run under bf16/fp16 autocast on GPUs (afi.train.device decides). CPUs keep fp32:
at the scale picked the networks are a small share of the time, DIS and the full-size warping
the rest (quickstart model, one thread, per in-between: 480p 102 ms fp32 / 98 ms bf16, 1080p
373 / 395 ms), though bf16 alone takes 0.82x fp32's time for a 256x256 pass.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from afi.config import VariantConfig
from afi.errors import NotFoundError, UsageError
from afi.models import Interpolator, build_interpolator
from afi.train.checkpoint import file_sha256, load_checkpoint
from afi.train.device import DeviceSetup, setup_device
from afi.video.baselines import METHODS, BaselineInterpolator, FrameInterpolator
from registry import checkpoints as registry_checkpoints
from registry import runs as registry_runs
from registry.db import session_scope
from registry.records import CheckpointRecord, RunRecord

DEFAULT_BATCH = 8
# On a CPU a forward pass over more pixels than this is memory-bound: measured at 1080p, a batch of
# 8 cost 805 ms per in-between against 451 ms one at a time (bench/interpolate.py's model).
CPU_PIXELS_PER_PASS = 256 * 1024


@dataclass(frozen=True)
class LoadedModel:
    model: Interpolator  # eval mode, on the CPU
    variant: VariantConfig
    source: str  # where the weights came from, for messages
    sha256: str
    train_size: tuple[int, int] | None  # (width, height) of its training crops, when known
    run: RunRecord | None = None
    checkpoint: CheckpointRecord | None = None


def _read_checkpoint_file(path: Path) -> dict[str, Any]:
    """A checkpoint the registry does not know: no recorded hash to check, so only its form is."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UsageError(f"checkpoint {path} does not exist: pass a .pt file from AFI_HOME/runs/<run id>/checkpoints")
    try:
        # weights_only: a checkpoint is data, and loading one must never run code.
        payload = torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file; all mean the same here
        raise UsageError(
            f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}): pass an AFI .pt checkpoint"
        ) from None
    return payload


def _inference_weights(payload: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The EMA weights where the checkpoint has them (what validation scored), else the raw ones.
    AveragedModel keeps its copy under `module.` and adds an update counter."""
    weights = dict(payload["model"])
    ema = payload.get("ema") or {}
    weights.update({k.removeprefix("module."): v for k, v in ema.items() if k.startswith("module.")})
    return weights


def build_model(payload: Any, source: str) -> tuple[Interpolator, VariantConfig]:
    """The interpolator a checkpoint describes, with its weights; UsageError when they do not fit."""
    if not isinstance(payload, dict) or "variant" not in payload or "model" not in payload:
        raise UsageError(
            f"{source} is not an AFI checkpoint (no variant and model weights): "
            "pass a checkpoint of an interpolation run"
        )
    variant = VariantConfig.from_dict(payload["variant"])
    if variant.kind != "interp":
        raise UsageError(
            f"{source} holds a {variant.arch} autoencoder, not an interpolator: "
            "pass a checkpoint of an interpolation run"
        )
    model = build_interpolator(variant)
    weights = _inference_weights(payload)
    expected = model.state_dict()
    missing = expected.keys() - weights.keys()
    unexpected = weights.keys() - expected.keys()
    misshapen = [k for k in expected.keys() & weights.keys() if tuple(weights[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or misshapen:
        raise UsageError(
            f"{source}: its weights do not fit the {variant.name()} interpolator ({len(missing)} missing, "
            f"{len(unexpected)} unexpected, {len(misshapen)} of the wrong shape): it was saved by another "
            "architecture or AFI version"
        )
    model.load_state_dict(weights)
    return model.eval().requires_grad_(False), variant


def load_model_file(path: Path) -> LoadedModel:
    path = Path(path).expanduser()
    payload = _read_checkpoint_file(path)
    model, variant = build_model(payload, str(path))
    return LoadedModel(
        model=model, variant=variant, source=str(path), sha256=file_sha256(path), train_size=_train_size(payload)
    )


def _train_size(payload: Any) -> tuple[int, int] | None:
    """(width, height) of its training crops; None for a checkpoint written before AFI recorded it."""
    size = payload.get("train_size") if isinstance(payload, dict) else None
    return (int(size[0]), int(size[1])) if isinstance(size, (list, tuple)) and len(size) == 2 else None


def load_run_model(engine: Any, run: str | int, checkpoint: Path | None = None) -> LoadedModel:
    """A run's best checkpoint (its latest when validation never picked one), or `checkpoint`,
    which must hold the run's variant."""
    with session_scope(engine) as session:
        record = registry_runs.get_run(session, run)
        found = registry_checkpoints.best_checkpoint(session, record.id) or registry_checkpoints.latest_checkpoint(
            session, record.id
        )
        stored = registry_checkpoints.list_checkpoints(session, record.id)
    if record.kind != "interp":
        raise UsageError(f"run {record.name!r} is a {record.kind} run, not an interpolator: pass an interpolation run")
    if checkpoint is not None:
        payload = _read_checkpoint_file(checkpoint)
        expected = VariantConfig.from_dict(record.config["variant"]) if record.config else None
        if isinstance(payload, dict) and expected is not None and payload.get("variant") != expected.to_dict():
            held = (
                VariantConfig.from_dict(payload["variant"]).name()
                if isinstance(payload.get("variant"), dict)
                else "none"
            )
            raise UsageError(
                f"checkpoint {checkpoint} holds variant {held}, run {record.name!r} is {record.variant}: "
                "pass one of that run's checkpoints"
            )
        model, variant = build_model(payload, str(checkpoint))
        sha256 = file_sha256(Path(checkpoint).expanduser())
        row = next((c for c in stored if c.sha256 == sha256), None)
        return LoadedModel(model, variant, str(checkpoint), sha256, (record.width, record.height), record, row)
    if found is None:
        raise NotFoundError(f"run {record.name!r} has no checkpoint: train it first (`afi run start {record.name}`)")
    payload = load_checkpoint(Path(found.path), found.sha256)
    source = f"run {record.name} step {found.step}"
    model, variant = build_model(payload, source)
    return LoadedModel(model, variant, source, found.sha256, (record.width, record.height), record, found)


@dataclass(frozen=True)
class Tiling:
    width: int
    height: int
    overlap: int

    @classmethod
    def square(cls, side: int) -> Tiling:
        return cls.for_size(side, side)

    @classmethod
    def for_size(cls, width: int, height: int) -> Tiling:
        if min(width, height) < 16:
            raise UsageError(f"tiles must be at least 16 pixels, got {width}x{height}")
        # An eighth of the tile: wide enough for the blend to hide the seams, and it costs
        # (8/7)^2 = 1.3x the work of untiled inference.
        return cls(width, height, overlap=max(4, min(width, height) // 8))


def tile_origins(length: int, tile: int, overlap: int) -> list[int]:
    """Start of each tile along one axis: `overlap` apart, the last one flush with the end."""
    if length <= tile:
        return [0]
    return [*range(0, length - tile, tile - overlap), length - tile]


def _ramp(length: int, tile: int, start: int, overlap: int) -> torch.Tensor:
    """(tile,) blend weights of one tile along one axis: 1 inside, falling towards an inner edge,
    never 0 so every pixel keeps a weight; a tile's side on the frame border does not fade."""
    weights = torch.ones(tile)
    fade = (torch.arange(overlap) + 0.5) / overlap
    if start > 0:
        weights[:overlap] = fade
    if start + tile < length:
        weights[tile - overlap :] = fade.flip(0)
    return weights


class ModelInterpolator:
    def __init__(
        self,
        loaded: LoadedModel,
        batch: int = DEFAULT_BATCH,
        tiling: Tiling | None = None,
        setup: DeviceSetup | None = None,
        scale: float | None = None,
    ) -> None:
        """`scale`: the networks' share of the frame size; None picks one per frame size so that
        they see about the training size (whole frames when that is not known)."""
        if batch < 1:
            raise UsageError(f"batch must be at least 1, got {batch}")
        if scale is not None and not 0 < scale <= 1:
            raise UsageError(f"--scale must lie in (0, 1], got {scale}")
        if tiling is not None and scale not in (None, 1.0):
            raise UsageError("--tile runs tiles at full resolution: drop --scale, or --tile")
        self.setup = setup or setup_device("auto")
        self.model = self.setup.place_module(loaded.model)
        self.batch = batch
        self.tiling = tiling
        self.scale = scale
        self.train_size = loaded.train_size
        self.name = loaded.source
        self.identity = f"sha256:{loaded.sha256}:{tiling}:{scale}"

    def batch_for(self, height: int, width: int) -> int:
        """In-betweens per forward pass: --batch, fewer on a CPU for large frames."""
        if self.setup.device.type != "cpu":
            return self.batch
        return max(1, min(self.batch, CPU_PIXELS_PER_PASS // (height * width)))

    def scale_for(self, height: int, width: int) -> float:
        """The scale a (height, width) frame is interpolated at."""
        if self.scale is not None:
            return self.scale
        if self.tiling is not None or self.train_size is None:
            return 1.0
        # The shorter sides: a 16:9 frame shrinks to about the training crop's height.
        return min(1.0, min(self.train_size) / min(height, width))

    def __call__(self, frames0: np.ndarray, frames1: np.ndarray, times: np.ndarray) -> np.ndarray:
        x0, x1 = self._to_tensor(frames0), self._to_tensor(frames1)
        t = torch.as_tensor(times, dtype=torch.float32, device=self.setup.device).reshape(-1)
        rgb = self.predict(x0, x1, t)  # (B, 3, H, W) in [0, 1]
        return rgb.mul(255).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    def _to_tensor(self, frames: np.ndarray) -> torch.Tensor:
        images = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)  # (B, 3, H, W) uint8
        return self.setup.place_batch(images).float().div_(255)

    @torch.inference_mode()
    def predict(self, frame0: torch.Tensor, frame1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) twice and (B,) -> (B, 3, H, W) float in [0, 1], whole or in tiles."""
        height, width = frame0.shape[-2:]
        tiling = self.tiling
        if tiling is not None and (height > tiling.height or width > tiling.width):
            return self._predict_tiled(frame0, frame1, t, tiling)
        scale = self.scale_for(height, width)
        batch = self.batch_for(height, width)
        chunks = [slice(i, i + batch) for i in range(0, len(t), batch)]
        return torch.cat([self._forward(frame0[c], frame1[c], t[c], scale) for c in chunks])

    def _forward(self, frame0: torch.Tensor, frame1: torch.Tensor, t: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        with self.setup.autocast():
            return self.model(frame0, frame1, t, scale=scale).rgb.float()

    def _predict_tiled(
        self, frame0: torch.Tensor, frame1: torch.Tensor, t: torch.Tensor, tiling: Tiling
    ) -> torch.Tensor:
        batch, _, height, width = frame0.shape
        tile_h, tile_w = min(tiling.height, height), min(tiling.width, width)
        overlap = min(tiling.overlap, tile_h // 2, tile_w // 2)
        device = frame0.device
        ramps_y = {y: _ramp(height, tile_h, y, overlap).to(device) for y in tile_origins(height, tile_h, overlap)}
        ramps_x = {x: _ramp(width, tile_w, x, overlap).to(device) for x in tile_origins(width, tile_w, overlap)}
        tiles = [(b, y, x) for b in range(batch) for y in ramps_y for x in ramps_x]
        total = torch.zeros_like(frame0)  # (B, 3, H, W) weighted sum of tile predictions
        weight = torch.zeros(batch, 1, height, width, device=device)
        for start in range(0, len(tiles), self.batch):
            chunk = tiles[start : start + self.batch]
            crops0 = torch.stack([frame0[b, :, y : y + tile_h, x : x + tile_w] for b, y, x in chunk])
            crops1 = torch.stack([frame1[b, :, y : y + tile_h, x : x + tile_w] for b, y, x in chunk])
            predicted = self._forward(crops0, crops1, t[[b for b, _, _ in chunk]])  # (n, 3, tile_h, tile_w)
            for (b, y, x), rgb in zip(chunk, predicted):
                mask = ramps_y[y][:, None] * ramps_x[x][None, :]  # (tile_h, tile_w)
                total[b, :, y : y + tile_h, x : x + tile_w] += rgb * mask
                weight[b, :, y : y + tile_h, x : x + tile_w] += mask
        return total / weight


def resolve_tiling(tile: int | None) -> Tiling | None:
    """`tile`: None or 0 = no tiles (large frames are scaled instead), N = N x N tiles."""
    if tile is not None and tile < 0:
        raise UsageError(f"--tile must be 0 (no tiling) or a tile size in pixels, got {tile}")
    return Tiling.square(tile) if tile else None


def open_interpolator(
    engine: Any = None,
    run: str | None = None,
    checkpoint: Path | None = None,
    method: str | None = None,
    batch: int = DEFAULT_BATCH,
    tile: int | None = None,
    scale: float | None = None,
) -> FrameInterpolator:
    """Exactly one of a run (its best checkpoint; needs `engine`), a checkpoint file, or a
    classical method (nearest, blend, flow)."""
    given = [
        name
        for name, value in (("--run", run), ("--checkpoint", checkpoint), ("--method", method))
        if value is not None
    ]
    if len(given) != 1:
        raise UsageError(
            f"pass exactly one of --run RUN, --checkpoint FILE or --method {'|'.join(METHODS)} "
            f"(got {', '.join(given) or 'none'})"
        )
    if method is not None:
        return BaselineInterpolator(method)
    loaded = load_run_model(engine, run) if run is not None else load_model_file(checkpoint)  # type: ignore[arg-type]
    return ModelInterpolator(loaded, batch=batch, tiling=resolve_tiling(tile), scale=scale)
