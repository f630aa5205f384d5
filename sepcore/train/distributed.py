"""torchrun / DistributedDataParallel set-up for :func:`sepcore.train.fit.fit`, the one training loop.

Under ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` in the environment) the process
group is initialised with NCCL on CUDA and gloo on CPU; without it training runs in one process.
Each rank draws its own batches (seed + rank); gradients are averaged by DDP and the EMA
codebook statistics are all-reduced by :class:`sepcore.models.vqvae.Quantizer`.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from sepcore.utils import resolve_device


def setup(device: str = "auto") -> tuple[int, int, torch.device]:
    """Return ``(rank, world_size, device)``, initialising the process group under torchrun."""
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1 and not dist.is_initialized():
        resolved = resolve_device(device)
        backend = "nccl" if resolved.type == "cuda" else "gloo"
        dist.init_process_group(backend)
        if resolved.type == "cuda":
            local = int(os.environ.get("LOCAL_RANK", 0))
            torch.cuda.set_device(local)
            resolved = torch.device("cuda", local)
        return dist.get_rank(), dist.get_world_size(), resolved
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), resolve_device(device)
    return 0, 1, resolve_device(device)


def wrap(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    if dist.is_initialized() and dist.get_world_size() > 1:
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)
    return module


def rank_and_world() -> tuple[int, int]:
    """``(rank, world size)`` of this process: ``(0, 1)`` outside ``torchrun``."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def from_rank_zero(value: float, world: int, device: torch.device) -> float:
    """Rank 0's ``value`` on every rank (``value`` itself in one process); ``device`` is where the
    process group's tensors live (CUDA under NCCL)."""
    if world == 1:
        return value
    shared = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(shared, src=0)
    return float(shared.item())


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
