"""Multi-GPU training under `torchrun`: one process per GPU, rank 0 owns the registry and files.

A plain `afi run start` is world size 1 and every function here is then a no-op, so the loop and
the service read the same with or without DistributedDataParallel.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

T = TypeVar("T")


@dataclass(frozen=True)
class ProcessGroup:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Only the main process logs, validates, checkpoints and touches the registry."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def broadcast(self, value: T) -> T:
        """The main process's `value`, on every process (any picklable object)."""
        if not self.distributed:
            return value
        box: list[Any] = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every process when it is true on one: a SIGTERM to one rank stops them all."""
        if not self.distributed:
            return flag
        tensor = torch.tensor([int(flag)], device=device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return bool(tensor.item())

    def least(self, value: int, device: torch.device) -> int:
        """The smallest of every process's `value`: ranks timing their own pace agree on one end."""
        if not self.distributed:
            return value
        tensor = torch.tensor([value], device=device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
        return int(tensor.item())

    def wrap(self, module: nn.Module, device: torch.device) -> nn.Module:
        if not self.distributed:
            return module
        device_ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=device_ids)

    def shard(self, batch: dict[str, Any]) -> dict[str, Any]:
        """This rank's rows of a global batch of `world_size` equal parts."""
        if not self.distributed:
            return batch
        size = len(batch["key"]) // self.world_size
        rows = slice(self.rank * size, (self.rank + 1) * size)
        return {name: value[rows] for name, value in batch.items()}


def init_process_group() -> ProcessGroup:
    """Join the torchrun group when WORLD_SIZE > 1 (nccl on GPUs, gloo on CPU); else size 1."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return ProcessGroup()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return ProcessGroup(
        rank=dist.get_rank(),
        world_size=world_size,
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def leave_process_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
