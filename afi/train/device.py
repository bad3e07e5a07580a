"""Where and how a run computes: device (cuda > mps > cpu), precision, memory format, compile."""

from __future__ import annotations

import contextlib
import os
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch
from torch import nn

from afi.errors import UsageError

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class DeviceSetup:
    """The resolved compute settings of one training process."""

    device: torch.device
    precision: str  # "fp32", "bf16" or "fp16"
    channels_last: bool
    compile: bool

    def autocast(self) -> AbstractContextManager[object]:
        """Mixed precision for forward passes; a no-op in fp32."""
        dtype = AMP_DTYPES.get(self.precision)
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        # fp16 gradients underflow without loss scaling; bf16 has fp32's exponent range: no need.
        return torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")

    def place_module(self, module: nn.Module) -> nn.Module:
        module = module.to(self.device)
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        return module

    def place_batch(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images onto the device, in the module's memory format."""
        images = images.to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def compiled(self, module: nn.Module) -> nn.Module:
        return torch.compile(module) if self.compile else module  # type: ignore[return-value]

    def describe(self) -> str:
        extras = [
            name
            for name, on in (("channels_last", self.channels_last), ("compile", self.compile))
            if on
        ]
        return " ".join([str(self.device), self.precision, *extras])


def pick_device(local_rank: int = 0) -> torch.device:
    """cuda (this process's GPU under torchrun) > mps > cpu; AFI_DEVICE overrides, e.g. `cpu`."""
    forced = os.environ.get("AFI_DEVICE")
    if forced:
        try:
            return torch.device(forced)
        except RuntimeError:
            raise UsageError(f"bad AFI_DEVICE {forced!r}: use cpu, cuda, cuda:N or mps") from None
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_precision(requested: str, device: torch.device) -> str:
    """'auto' -> bf16 on GPUs that have it, fp16 on older CUDA GPUs, fp32 elsewhere."""
    if requested == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        # CPU and MPS autocast is slower than fp32 for these convolutions, and fp32 keeps CPU
        # training bitwise reproducible across a resume.
        return "fp32"
    if requested == "fp16" and device.type != "cuda":
        raise UsageError(
            f"precision fp16 needs a CUDA GPU (loss scaling), this process has {device.type}: "
            "use --precision bf16 or fp32"
        )
    return requested


def setup_device(
    precision: str = "auto", compile: bool = False, local_rank: int = 0
) -> DeviceSetup:
    device = pick_device(local_rank)
    on_gpu = device.type == "cuda"
    if on_gpu:
        # Convolutions pick the fastest algorithm once per shape; shapes are fixed within a stage.
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return DeviceSetup(
        device=device,
        precision=resolve_precision(precision, device),
        # NHWC feeds tensor cores without transposes; on CPU it only changes the kernels picked.
        channels_last=on_gpu,
        # Compilation pays for itself only on GPUs, and its minutes of warm-up would dominate a
        # CPU run.
        compile=compile and on_gpu,
    )
