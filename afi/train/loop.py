"""The training loop: one stage of one run, from its current step to the stage's last.

Read `train_stage` top to bottom: each step takes `grad_accum` micro-batches, updates the
generator (and the discriminator once the adversarial warm-up is over), updates the EMA, then
logs, validates and checkpoints on schedule. Where logs, validation results and checkpoints go is
the caller's business (callbacks and a `CheckpointSink`); this module imports no logger and no
registry, and every schedule is a pure function of the step and the planned end, which checkpoints
store, so a resumed run replays exactly. A stage with a time budget re-plans its end before every
step from its measured pace (afi.train.pace).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from afi import __version__
from afi.config import RunConfig, StageConfig, VariantConfig
from afi.errors import AfiError
from afi.losses import AutoencoderLoss, GeneratorLoss, discriminator_loss
from afi.models import build_discriminator, build_generator
from afi.train.device import DeviceSetup
from afi.train.distributed import ProcessGroup
from afi.train.ema import ema_model
from afi.train.pace import Pace
from afi.train.rng import capture_rng, restore_rng
from afi.train.schedule import AdversarialSchedule, learning_rate
from afi.train.validate import is_better

CHECKPOINT_FORMAT = 1
# Adam betas: the usual (0.9, 0.999) for the generator; a short memory for the discriminator, as
# in pix2pix and most GANs, so it tracks a generator that keeps moving.
GENERATOR_BETAS = (0.9, 0.999)
DISCRIMINATOR_BETAS = (0.5, 0.999)
# Loss terms whose weight follows the adversarial schedule: only as good as the discriminator.
ADVERSARIAL_TERMS = ("adversarial", "feature_match")
IMAGES_PER_GRID = 4
# A loss total (loss/G/total, loss/D/total, ...) that is NaN or infinite this many steps in a row
# ends the run as failed: the weights are lost by then, and more steps only burn time.
NONFINITE_STEPS_LIMIT = 5

Batch = dict[str, Any]  # loader items collated: frame0/frame1/frame2 (B, 3, H, W), t (B,), key
FRAMES = ("frame0", "frame1", "frame2")


class StopFlag:
    """Set by a signal handler or a callback: the loop finishes its step, checkpoints, returns."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def request(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason

    @property
    def requested(self) -> bool:
        return self.reason is not None


@dataclass(frozen=True)
class StepReport:
    """What a log step tells the callbacks; `stats` keys are slash-namespaced metric keys."""

    step: int
    total_steps: int
    stats: dict[
        str, float
    ]  # loss/G/*, loss/D/*, train/lr, grad_norm/*: a pure function of the step
    perf: dict[str, float]  # perf/*: wall-clock figures, which differ between two identical runs


@dataclass(frozen=True)
class ImageSample:
    """A few rows of the current batch, on the CPU: inputs, prediction, truth, each (N, 3, H, W)."""

    step: int
    inputs: tuple[torch.Tensor, ...]
    prediction: torch.Tensor
    truth: torch.Tensor


class Callback:
    """Observers of the loop. Every hook is optional; none may change the training state."""

    def on_start(self, step: int, total_steps: int) -> None: ...

    def on_step(self, step: int) -> None: ...

    def on_plan(self, total_steps: int) -> None:
        """A time-budgeted stage re-planned its number of steps."""

    def on_log(self, report: StepReport) -> None: ...

    def on_images(self, sample: ImageSample) -> None: ...

    def on_validation(self, step: int, values: dict[str, float]) -> None: ...

    def on_notice(self, message: str) -> None: ...

    def on_flush(self) -> None:
        """Persist anything buffered. Runs before every checkpoint, so a checkpoint never exists
        without the metrics of the steps it contains (a resume replays only later ones)."""

    def on_end(self, step: int, outcome: str) -> None: ...


class Callbacks(Callback):
    """Several callbacks as one, called in order."""

    def __init__(self, callbacks: Sequence[Callback]) -> None:
        self.callbacks = list(callbacks)

    def on_start(self, step: int, total_steps: int) -> None:
        for callback in self.callbacks:
            callback.on_start(step, total_steps)

    def on_step(self, step: int) -> None:
        for callback in self.callbacks:
            callback.on_step(step)

    def on_plan(self, total_steps: int) -> None:
        for callback in self.callbacks:
            callback.on_plan(total_steps)

    def on_log(self, report: StepReport) -> None:
        for callback in self.callbacks:
            callback.on_log(report)

    def on_images(self, sample: ImageSample) -> None:
        for callback in self.callbacks:
            callback.on_images(sample)

    def on_validation(self, step: int, values: dict[str, float]) -> None:
        for callback in self.callbacks:
            callback.on_validation(step, values)

    def on_notice(self, message: str) -> None:
        for callback in self.callbacks:
            callback.on_notice(message)

    def on_flush(self) -> None:
        for callback in self.callbacks:
            callback.on_flush()

    def on_end(self, step: int, outcome: str) -> None:
        for callback in self.callbacks:
            callback.on_end(step, outcome)


class CheckpointSink(Protocol):
    def save(
        self, step: int, payload: dict[str, Any], values: dict[str, float] | None, is_best: bool
    ) -> None:
        """Store the checkpoint of `step`, with the validation `values` taken at it, if any."""


Validate = Callable[[nn.Module], dict[str, float]]


@dataclass(frozen=True)
class StagePlan:
    """What one stage trains and how; `meta` is written into every checkpoint it saves."""

    config: RunConfig
    stage_index: int
    setup: DeviceSetup
    group: ProcessGroup = field(default_factory=ProcessGroup)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def stage(self) -> StageConfig:
        return self.config.stages[self.stage_index]

    def new_pace(self) -> Pace:
        minutes = self.stage.minutes
        return Pace(budget_s=None if minutes is None else minutes * 60.0, max_steps=self.stage.steps)

    @property
    def adversarial(self) -> AdversarialSchedule:
        # Only the first stage warms up: later stages start from a trained discriminator.
        warmup = self.config.adv_warmup_steps if self.stage_index == 0 else 0
        return AdversarialSchedule(warmup_steps=warmup, ramp_steps=warmup)


@dataclass
class TrainParts:
    """Everything a step changes, hence everything a checkpoint holds besides the progress."""

    variant: VariantConfig
    generator: nn.Module  # the module whose weights are saved: never compiled or wrapped
    generator_step: nn.Module  # what the loop calls: the generator, maybe compiled and DDP-wrapped
    ema: AveragedModel
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    discriminator: nn.Module | None = None
    discriminator_step: nn.Module | None = None
    optimizer_d: torch.optim.Optimizer | None = None
    feature_extractor: nn.Module | None = None

    def state_dict(self) -> dict[str, Any]:
        # "variant" and "model" are the keys afi.weights reads to use a run as a feature extractor.
        return {
            "variant": self.variant.to_dict(),
            "model": self.generator.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "discriminator": None
            if self.discriminator is None
            else self.discriminator.state_dict(),
            "optimizer_d": None if self.optimizer_d is None else self.optimizer_d.state_dict(),
        }

    def load_weights(self, state: dict[str, Any]) -> None:
        """Model weights only (a new stage starting from its parent's best checkpoint)."""
        self.generator.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        if self.discriminator is not None and state.get("discriminator") is not None:
            self.discriminator.load_state_dict(state["discriminator"])

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Everything, for an exact resume."""
        self.load_weights(state)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        if self.optimizer_d is not None:
            self.optimizer_d.load_state_dict(state["optimizer_d"])


def build_parts(plan: StagePlan, feature_extractor: nn.Module | None = None) -> TrainParts:
    setup, variant = plan.setup, plan.config.variant
    generator = setup.place_module(build_generator(variant))
    discriminator = build_discriminator(variant) if variant.kind == "interp" else None
    fused = setup.device.type == "cuda"  # one kernel per step instead of one per tensor
    parts = TrainParts(
        variant=variant,
        generator=generator,
        generator_step=plan.group.wrap(setup.compiled(generator), setup.device),
        ema=ema_model(generator, plan.config.ema_decay),
        optimizer=torch.optim.AdamW(
            generator.parameters(), lr=plan.stage.lr, betas=GENERATOR_BETAS, fused=fused
        ),
        scaler=setup.grad_scaler(),
        feature_extractor=None
        if feature_extractor is None
        else setup.place_module(feature_extractor),
    )
    if discriminator is not None:
        discriminator = setup.place_module(discriminator)
        parts.discriminator = discriminator
        parts.discriminator_step = plan.group.wrap(setup.compiled(discriminator), setup.device)
        parts.optimizer_d = torch.optim.AdamW(
            discriminator.parameters(), lr=plan.stage.lr, betas=DISCRIMINATOR_BETAS, fused=fused
        )
    return parts


@dataclass
class Progress:
    """Where a stage stands: the loop's only state besides `TrainParts` and the RNGs."""

    step: int = 0
    best_value: float | None = None
    # The planned number of steps (the schedule's end) and the time budget's account: set when
    # the stage starts (`StagePlan.new_pace`) or restored from a checkpoint.
    end: int | None = None
    pace: Pace | None = None


def checkpoint_payload(plan: StagePlan, parts: TrainParts, progress: Progress) -> dict[str, Any]:
    return {
        "format": CHECKPOINT_FORMAT,
        "afi_version": __version__,
        **plan.meta,
        "stage": plan.stage_index,
        # (width, height) of the crops: afi interpolate --checkpoint runs the networks at about it.
        "train_size": [plan.stage.width, plan.stage.height],
        "step": progress.step,
        "best_value": progress.best_value,
        "planned_end": progress.end,
        "pace": None if progress.pace is None else progress.pace.to_dict(),
        # Micro-batches taken from the (resumable) loader: where it restarts.
        "data_position": progress.step * plan.stage.grad_accum,
        "rng": capture_rng(),
        **parts.state_dict(),
    }


def restore_payload(parts: TrainParts, payload: dict[str, Any]) -> Progress:
    parts.load_state_dict(payload)
    restore_rng(payload["rng"])
    pace = payload.get("pace")  # absent from checkpoints written before time budgets
    return Progress(
        step=payload["step"],
        best_value=payload["best_value"],
        end=payload.get("planned_end"),
        pace=None if pace is None else Pace.from_dict(pace),
    )


def scale_adversarial(variant: VariantConfig, weight: float) -> VariantConfig:
    losses = {
        term: w * weight if term in ADVERSARIAL_TERMS else w for term, w in variant.losses.items()
    }
    return replace(variant, losses=losses)


def generator_loss(
    variant: VariantConfig, adversarial_weight: float, extractor: nn.Module | None
) -> nn.Module:
    if variant.kind == "autoencoder":
        return AutoencoderLoss(variant, extractor)
    return GeneratorLoss(scale_adversarial(variant, adversarial_weight), extractor)


@dataclass(frozen=True)
class GeneratorPass:
    """One micro-batch through the generator and its loss."""

    loss: torch.Tensor  # scalar
    stats: dict[str, float]
    prediction: torch.Tensor  # (B, 3, H, W)
    truth: torch.Tensor  # (B, 3, H, W)
    inputs: tuple[torch.Tensor, ...]  # frame0, frame2; none for an autoencoder


@dataclass
class StepResult:
    stats: dict[str, Any]  # floats, or 0-d tensors turned into floats only on log steps
    prediction: torch.Tensor  # last micro-batch (B, 3, H, W), detached
    truth: torch.Tensor
    inputs: tuple[torch.Tensor, ...]
    samples: int
    data_seconds: float


class StepRunner:
    """One optimiser step: gradient accumulation, mixed precision, clipping, GAN phases, EMA."""

    def __init__(self, plan: StagePlan, parts: TrainParts, batches: Iterator[Batch]) -> None:
        self.plan, self.parts, self.batches = plan, parts, batches
        # The loss depends on the step only through the adversarial weight; rebuilt when it changes.
        self.loss_weight: float | None = None
        self.loss_fn: nn.Module | None = None

    def loss_for(self, adversarial_weight: float) -> nn.Module:
        if self.loss_fn is None or adversarial_weight != self.loss_weight:
            self.loss_fn = generator_loss(
                self.parts.variant, adversarial_weight, self.parts.feature_extractor
            )
            self.loss_weight = adversarial_weight
        return self.loss_fn

    def next_batch(self) -> tuple[Batch, float]:
        """The next micro-batch on the device, and how long the loop waited for it."""
        started = time.perf_counter()
        batch = self.plan.group.shard(next(self.batches))
        setup = self.plan.setup
        placed = {name: setup.place_batch(batch[name]) for name in FRAMES}
        placed["t"] = batch["t"].to(setup.device, non_blocking=True)  # (B,)
        return placed, time.perf_counter() - started

    def generator_pass(self, batch: Batch, loss_fn: nn.Module) -> GeneratorPass:
        parts = self.parts
        if parts.variant.kind == "autoencoder":
            image = batch["frame1"]  # (B, 3, H, W): an autoencoder learns to reproduce frames
            output = parts.generator_step(image)
            loss, stats = loss_fn(output, image)
            return GeneratorPass(loss, stats, output.recon, image, ())
        frame0, truth, frame2 = batch["frame0"], batch["frame1"], batch["frame2"]
        # The middle frame goes in only for a privileged teacher (the distill loss) to see.
        privileged = truth if parts.variant.losses.get("distill", 0) > 0 else None
        output = parts.generator_step(frame0, frame2, batch["t"], truth=privileged)  # rgb (B, 3, H, W)
        # The raw discriminator, not its DDP wrapper: it only judges here and must not sync.
        disc = parts.discriminator if loss_fn.needs_disc else None
        loss, stats = loss_fn(output, truth, frame0, frame2, discriminator=disc)
        return GeneratorPass(loss, stats, output.rgb, truth, (frame0, frame2))

    def run(self, step: int, end: int | None = None) -> StepResult:
        """Optimiser step `step` of a stage planned to take `end` steps (None: the stage's)."""
        plan, parts, setup = self.plan, self.parts, self.plan.setup
        accum, clip = plan.stage.grad_accum, plan.config.grad_clip
        max_norm = clip if clip > 0 else math.inf
        adversarial = plan.adversarial
        weight = adversarial.weight(step) if parts.discriminator is not None else 0.0
        loss_fn = self.loss_for(weight)
        lr = learning_rate(plan.stage, step, end)
        for optimizer in filter(None, (parts.optimizer, parts.optimizer_d)):
            for group in optimizer.param_groups:
                group["lr"] = lr

        # Generator: the discriminator only judges here, so it accumulates no gradients.
        if parts.discriminator is not None:
            parts.discriminator.requires_grad_(False)
        parts.optimizer.zero_grad(set_to_none=True)
        stats: dict[str, Any] = {}
        fakes: list[tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]] = []
        data_seconds, samples = 0.0, 0
        for _ in range(accum):
            batch, waited = self.next_batch()
            data_seconds += waited
            with setup.autocast():
                result = self.generator_pass(batch, loss_fn)
            parts.scaler.scale(result.loss / accum).backward()
            _accumulate(stats, result.stats, accum)
            fakes.append((result.prediction.detach(), result.truth, result.inputs))
            samples += result.truth.shape[0] * plan.group.world_size
        parts.scaler.unscale_(parts.optimizer)
        stats["grad_norm/G"] = torch.nn.utils.clip_grad_norm_(
            parts.generator.parameters(), max_norm
        )
        parts.scaler.step(parts.optimizer)

        if parts.discriminator is not None and adversarial.discriminator_trains(step):
            self.discriminator_step(fakes, stats, max_norm)
            stats["train/adv_weight"] = weight
        parts.scaler.update()
        parts.ema.update_parameters(parts.generator)
        stats["train/lr"] = lr
        prediction, truth, inputs = fakes[-1]
        return StepResult(stats, prediction, truth, inputs, samples, data_seconds)

    def discriminator_step(self, fakes: list, stats: dict[str, Any], max_norm: float) -> None:
        parts, setup, accum = self.parts, self.plan.setup, self.plan.stage.grad_accum
        assert parts.discriminator_step is not None and parts.optimizer_d is not None
        parts.discriminator.requires_grad_(True)
        parts.optimizer_d.zero_grad(set_to_none=True)
        for prediction, truth, (frame0, frame2) in fakes:
            with setup.autocast():
                loss, loss_stats = discriminator_loss(
                    parts.variant, parts.discriminator_step, truth, prediction, frame0, frame2
                )
            parts.scaler.scale(loss / accum).backward()
            _accumulate(stats, loss_stats, accum)
        parts.scaler.unscale_(parts.optimizer_d)
        stats["grad_norm/D"] = torch.nn.utils.clip_grad_norm_(
            parts.discriminator.parameters(), max_norm
        )
        parts.scaler.step(parts.optimizer_d)


def _accumulate(stats: dict[str, Any], values: dict[str, float], accum: int) -> None:
    for key, value in values.items():
        stats[key] = stats.get(key, 0.0) + value / accum


class ThroughputWindow:
    """Samples and data-loader waits since the last log step: the perf/* figures."""

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        self.started, self.samples, self.data_seconds = time.perf_counter(), 0, 0.0

    def add(self, result: StepResult) -> None:
        self.samples += result.samples
        self.data_seconds += result.data_seconds

    def perf(self) -> dict[str, float]:
        elapsed = time.perf_counter() - self.started
        return {
            "perf/samples_per_s": self.samples / elapsed,
            "perf/data_wait": self.data_seconds / elapsed,
        }


def train_stage(
    plan: StagePlan,
    parts: TrainParts,
    batches: Iterator[Batch],
    progress: Progress,
    sink: CheckpointSink,
    validate: Validate | None,
    callbacks: Callback,
    stop: StopFlag,
) -> str:
    """Train from `progress.step` to the stage's last step; returns "completed" or why it stopped.

    The last step is the stage's `steps`, or with a time budget the one the pace measured so far
    affords (re-planned before every step, never past `steps`); either way the final step is
    logged, validated and checkpointed. Every validation step is also a checkpoint step, and
    validation values are handed to the sink with that checkpoint, so a replayed step never
    records them twice. Only the main process reports, validates and saves; the others wait for it
    at the checkpoint barrier.
    """
    config, group = plan.config, plan.group
    main = group.is_main
    pace = progress.pace = progress.pace or plan.new_pace()
    progress.end = progress.end or pace.end(progress.step)
    runner = StepRunner(plan, parts, batches)
    window = ThroughputWindow()
    callbacks.on_start(progress.step, progress.end)
    parts.generator_step.train()
    # Validations and checkpoints on the way cost time too: the pace spreads each over its interval.
    pause_every = min(config.ckpt_every, config.val_every) if validate else config.ckpt_every
    diverged = 0  # steps in a row with a non-finite loss total
    while progress.step < progress.end:
        started = time.perf_counter()
        result = runner.run(progress.step, progress.end)
        progress.step += 1
        step, last = progress.step, progress.step == progress.end
        # NaN weights reach every rank through the gradient all-reduce, so all ranks stop together.
        diverged = diverged + 1 if _nonfinite_loss(result.stats) else 0
        if diverged >= NONFINITE_STEPS_LIMIT:
            raise AfiError(
                f"the loss is not finite ({_nonfinite_loss(result.stats)}) for {diverged} steps in a "
                f"row, at step {step}: lower the learning rate (--lr) or check the data"
            )
        window.add(result)
        if main:
            callbacks.on_step(step)
        if main and (step % config.log_every == 0 or last):
            stats = {key: float(value) for key, value in result.stats.items()}
            callbacks.on_log(
                StepReport(step=step, total_steps=progress.end, stats=stats, perf=window.perf())
            )
            window.restart()
        if main and (step % config.image_every == 0 or last):
            callbacks.on_images(_image_sample(step, result))

        stopping = group.any(stop.requested, plan.setup.device)
        validating = validate is not None and (step % config.val_every == 0 or last)
        stepped = time.perf_counter()
        pace.observe_step(stepped - started)
        if validating or stopping or step % config.ckpt_every == 0 or last:
            values = validate(parts.ema.module) if validating and main else None
            is_best = False
            if values is not None:
                callbacks.on_validation(step, values)
                is_best = is_better(
                    config.best_metric, values[config.best_metric], progress.best_value
                )
                if is_best:
                    progress.best_value = values[config.best_metric]
            # Without a validation split the last checkpoint is the best one there is.
            is_best = is_best or (validate is None and last)
            if main:
                callbacks.on_flush()
                sink.save(step, checkpoint_payload(plan, parts, progress), values, is_best)
            group.barrier()
            window.restart()  # validation and saving are not step time
            pace.observe_pause(time.perf_counter() - stepped, pause_every)
        if stopping:
            outcome = stop.reason or "stopped"
            callbacks.on_end(step, outcome)
            return outcome
        if not last and pace.budget_s is not None:
            replanned = group.least(pace.end(step), plan.setup.device)
            if replanned != progress.end:
                progress.end = replanned
                if main:
                    callbacks.on_plan(replanned)
    callbacks.on_end(progress.step, "completed")
    return "completed"


def _nonfinite_loss(stats: dict[str, Any]) -> str | None:
    """'loss/G/total=nan' for the first loss total that is NaN or infinite, else None."""
    for key, value in stats.items():
        if key.endswith("/total") and not math.isfinite(float(value)):
            return f"{key}={float(value)}"
    return None


def _image_sample(step: int, result: StepResult) -> ImageSample:
    def rows(x: torch.Tensor) -> torch.Tensor:
        return x[:IMAGES_PER_GRID].detach().float().cpu()

    return ImageSample(
        step=step,
        inputs=tuple(rows(x) for x in result.inputs),
        prediction=rows(result.prediction),
        truth=rows(result.truth),
    )
