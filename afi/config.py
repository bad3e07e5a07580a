"""Run configuration: frozen dataclasses validated once, at the boundary.

A run's resolved config is stored as JSON (``RunConfig.to_dict``) with its hash, so that two runs
with the same hash trained the same thing, and an ablation is a set of runs differing in one field.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from afi.errors import UsageError

INTERP_ARCHS = ("unet", "isnet")
AUTOENCODER_ARCHS = ("vae", "vqvae")
# none: backbone alone; ifnet: learned flow (RIFE-style); dis: OpenCV DIS flow as a fixed prior;
# dis+refine: IFNet blocks that correct DIS's flows and mask, starting exactly at DIS
FLOWS = ("none", "ifnet", "dis", "dis+refine")
DISCS = ("none", "patchgan", "sn-resnet-sa")
ADV_LOSSES = ("hinge", "nonsat")
GRAD_PENALTIES = ("none", "r1", "wgan-gp")
VQ_MODES = ("ema", "st")
LR_SCHEDULES = ("cosine", "constant")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# Metrics where a smaller value is better; every other metric is maximised.
LOWER_IS_BETTER = ("lineart", "lpips")
BEST_METRICS = ("psnr", "ssim", "lineart", "lpips")


def best_score(values: list[float], metric: str) -> float | None:
    """The best of `values` by `metric`'s direction; None for none."""
    if not values:
        return None
    return min(values) if metric in LOWER_IS_BETTER else max(values)


# Loss terms a variant may weight. Names match the functions in afi/losses.py.
LOSS_TERMS = (
    "l1",
    "charbonnier",
    "laplacian",
    "census",
    "ssim",
    "perceptual",
    "style",
    "edge",
    "adversarial",
    "feature_match",
    "kl",
    "vq",
    "distill",
)
DEFAULT_INTERP_LOSSES = {"charbonnier": 1.0, "laplacian": 0.5, "census": 0.1}
DEFAULT_AUTOENCODER_LOSSES = {"l1": 1.0, "kl": 1e-4, "vq": 1.0}


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UsageError(f"unknown {what} {value!r}: choose one of {', '.join(choices)}")


def _check_positive(what: str, value: float) -> None:
    if not value > 0:
        raise UsageError(f"{what} must be positive, got {value}")


def parse_resolution(text: str | int) -> tuple[int, int]:
    """'256' -> (256, 256); '512x256' -> (512, 256) as (width, height)."""
    raw = str(text).strip().lower()
    try:
        parts = [int(p) for p in raw.split("x")]
    except ValueError:
        raise UsageError(f"bad resolution {text!r}: use a size like 256 or 512x256") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) <= 0:
        raise UsageError(f"bad resolution {text!r}: use a positive size like 256 or 512x256")
    return parts[0], parts[1]


def format_resolution(width: int, height: int) -> str:
    return str(width) if width == height else f"{width}x{height}"


@dataclass(frozen=True)
class VariantConfig:
    """What a model is: architecture, optional flow, discriminator and weighted losses."""

    arch: str = "unet"
    flow: str = "none"
    disc: str = "none"
    disc_conditional: bool = True
    width: int = 32
    depth: int = 4
    # Channels of the warped context features the backbone sees per frame (flow variants; 0: none).
    context: int = 0
    losses: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_INTERP_LOSSES))
    adv_loss: str = "hinge"
    grad_penalty: str = "r1"
    grad_penalty_weight: float = 1.0
    # "vgg16" (torchvision weights from the local cache), "run:<id>" (frozen encoder of an AFI
    # autoencoder run) or "disc" (the discriminator's own features).
    perceptual_source: str = "vgg16"
    latent_channels: int = 8
    codebook_size: int = 512
    vq_mode: str = "ema"

    @property
    def kind(self) -> str:
        return "autoencoder" if self.arch in AUTOENCODER_ARCHS else "interp"

    def validate(self) -> VariantConfig:
        _check_choice("arch", self.arch, INTERP_ARCHS + AUTOENCODER_ARCHS)
        _check_choice("flow", self.flow, FLOWS)
        _check_choice("discriminator", self.disc, DISCS)
        _check_choice("adversarial loss", self.adv_loss, ADV_LOSSES)
        _check_choice("gradient penalty", self.grad_penalty, GRAD_PENALTIES)
        _check_choice("vq mode", self.vq_mode, VQ_MODES)
        if self.kind == "autoencoder" and (self.flow != "none" or self.disc != "none"):
            raise UsageError(f"--arch {self.arch} is an autoencoder: it takes no --flow or --disc")
        for what, value in (("width", self.width), ("depth", self.depth)):
            _check_positive(what, value)
        if not 0 <= self.context <= 64:
            raise UsageError(f"context must be between 0 and 64 channels, got {self.context}")
        if self.context and self.flow == "none":
            raise UsageError("context features are warped by a flow: set --flow, or context = 0")
        if self.losses.get("distill", 0) > 0 and self.flow not in ("ifnet", "dis+refine"):
            raise UsageError("the distill loss trains a learned flow's teacher: use --flow ifnet or dis+refine")
        if not 1 <= self.depth <= 6:
            raise UsageError(f"depth must be between 1 and 6, got {self.depth}")
        for term, weight in self.losses.items():
            _check_choice("loss term", term, LOSS_TERMS)
            if weight < 0:
                raise UsageError(f"loss weight for {term} must not be negative, got {weight}")
        if not (self.perceptual_source in ("vgg16", "disc") or self.perceptual_source.startswith("run:")):
            raise UsageError(
                f"bad perceptual source {self.perceptual_source!r}: use vgg16, disc or run:<id>"
            )
        return self

    def name(self) -> str:
        """A readable unique name: arch[-flow][-disc], plus a config hash when not the default."""
        parts = [self.arch]
        if self.flow != "none":
            parts.append("flow" if self.flow == "ifnet" else self.flow.replace("+", "-"))
        if self.disc != "none":
            parts.append(self.disc)
        readable = "-".join(parts)
        if self == default_variant(self.arch, self.flow, self.disc):
            return readable
        return f"{readable}-{config_hash(self.to_dict())[:6]}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VariantConfig:
        return cls(**_known_fields(cls, data, "variant")).validate()


def default_variant(arch: str, flow: str = "none", disc: str = "none") -> VariantConfig:
    """The variant AFI builds for `--arch/--flow/--disc` when nothing else is said."""
    if arch in AUTOENCODER_ARCHS:
        return VariantConfig(arch=arch, losses=dict(DEFAULT_AUTOENCODER_LOSSES)).validate()
    losses = dict(DEFAULT_INTERP_LOSSES)
    if disc != "none":
        losses["adversarial"] = 0.01
    return VariantConfig(arch=arch, flow=flow, disc=disc, losses=losses).validate()


# The step cap of a stage given only a time budget: more than any budget reaches.
BUDGET_ONLY_STEPS = 10_000_000
MAX_STAGE_SIDE = 4096
MAX_STAGE_BATCH = 1024
MAX_STAGE_STEPS = 100_000_000
MAX_LR = 1.0


@dataclass(frozen=True)
class StageConfig:
    """One step of the resolution curriculum."""

    width: int = 128
    height: int = 128
    steps: int = 1000
    batch: int = 8
    grad_accum: int = 1
    lr: float = 2e-4
    lr_schedule: str = "cosine"
    warmup_steps: int = 0
    # Train on at most this many triplets (None: all); early low-resolution stages use a subset.
    subset: int | None = None
    # Wall-clock budget of the stage's training; `steps` is then the most it may take. The trainer
    # re-plans its last step from its measured pace (afi.train.pace).
    minutes: float | None = None

    @property
    def resolution(self) -> str:
        return format_resolution(self.width, self.height)

    def validate(self) -> StageConfig:
        for what, value in (
            ("resolution width", self.width),
            ("resolution height", self.height),
            ("steps", self.steps),
            ("batch", self.batch),
            ("grad_accum", self.grad_accum),
            ("learning rate", self.lr),
        ):
            _check_positive(what, value)
        # Upper bounds a run can use; past them it fails late (MemoryError) or never ends.
        for what, value, most in (
            ("resolution width", self.width, MAX_STAGE_SIDE),
            ("resolution height", self.height, MAX_STAGE_SIDE),
            ("steps", self.steps, MAX_STAGE_STEPS),
            ("batch", self.batch, MAX_STAGE_BATCH),
            ("learning rate", self.lr, MAX_LR),
        ):
            if not value <= most:  # also refuses NaN and infinity
                raise UsageError(f"{what} must be at most {most:g}, got {value:g}")
        _check_choice("lr schedule", self.lr_schedule, LR_SCHEDULES)
        if self.warmup_steps < 0:
            raise UsageError(f"warmup_steps must not be negative, got {self.warmup_steps}")
        if self.subset is not None:
            _check_positive("subset", self.subset)
        if self.minutes is not None:
            _check_positive("minutes", self.minutes)
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageConfig:
        data = dict(data)
        if "res" in data:
            data["width"], data["height"] = parse_resolution(data.pop("res"))
        return cls(**_known_fields(cls, data, "stage")).validate()


@dataclass(frozen=True)
class DataConfig:
    """Which triplets a run reads and how they are augmented."""

    dataset: str | None = None
    flip: bool = True
    temporal_reverse: bool = True
    rot90: bool = False
    color_jitter: bool = False
    workers: int = 0
    val_limit: int = 64

    def validate(self) -> DataConfig:
        if self.workers < 0:
            raise UsageError(f"workers must not be negative, got {self.workers}")
        _check_positive("val_limit", self.val_limit)
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataConfig:
        return cls(**_known_fields(cls, data, "data")).validate()


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs to train: the fully resolved form is stored with the run."""

    variant: VariantConfig = field(default_factory=VariantConfig)
    data: DataConfig = field(default_factory=DataConfig)
    stages: tuple[StageConfig, ...] = (StageConfig(),)
    seed: int = 0
    precision: str = "auto"
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    adv_warmup_steps: int = 0
    best_metric: str = "psnr"
    val_every: int = 200
    ckpt_every: int = 200
    log_every: int = 10
    image_every: int = 500
    keep_last: int = 2
    compile: bool = False

    def validate(self) -> RunConfig:
        self.variant.validate()
        self.data.validate()
        if not self.stages:
            raise UsageError("a run needs at least one stage")
        for stage in self.stages:
            stage.validate()
        _check_choice("precision", self.precision, PRECISIONS)
        _check_choice("best metric", self.best_metric, BEST_METRICS)
        if not 0 <= self.ema_decay < 1:
            raise UsageError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        for what, value in (
            ("val_every", self.val_every),
            ("ckpt_every", self.ckpt_every),
            ("log_every", self.log_every),
            ("image_every", self.image_every),
            ("keep_last", self.keep_last),
        ):
            _check_positive(what, value)
        if self.seed < 0:
            raise UsageError(f"seed must not be negative, got {self.seed}")
        return self

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stages"] = [stage.to_dict() for stage in self.stages]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        data = dict(data)
        variant = VariantConfig.from_dict(data.pop("variant", {}))
        data_config = DataConfig.from_dict(data.pop("data", {}))
        stages = tuple(StageConfig.from_dict(s) for s in data.pop("stages", [{}]))
        known = _known_fields(cls, data, "run")
        return cls(variant=variant, data=data_config, stages=stages, **known).validate()

    def hash(self) -> str:
        return config_hash(self.to_dict())


def _known_fields(cls: type, data: dict[str, Any], what: str) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise UsageError(
            f"unknown {what} setting(s) {', '.join(unknown)}: known are {', '.join(sorted(names))}"
        )
    return dict(data)


def config_hash(data: dict[str, Any]) -> str:
    """sha256 of the canonical JSON form: key order and float spelling do not matter."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
