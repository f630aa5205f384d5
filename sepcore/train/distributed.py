"""The shared training loop pieces: torchrun / DistributedDataParallel set-up and resumable state.

Under ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` in the environment) the process
group is initialised with NCCL on CUDA and gloo on CPU; without it training runs in one process.
Each rank draws its own batches (seed + rank); gradients are averaged by DDP and the EMA
codebook statistics are all-reduced by :class:`sepcore.models.vqvae.Quantizer`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.distributed as dist

from sepcore.utils import resolve_device, save_atomic


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


def state_path(out: str | Path) -> Path:
    """The resumable training state beside a checkpoint: ``<out>.state.pt``."""
    out = Path(out)
    return out.with_name(out.name + ".state.pt")


def save_state(out, model, optimizer, step: int, extra: dict | None = None, config: dict | None = None) -> None:
    save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                 "extra": extra or {}, "config": config}, state_path(out))


def load_state(out, model, optimizer, config: dict | None = None, log=print) -> tuple[int, dict]:
    """Resume from ``<out>.state.pt`` if it exists: returns ``(step, extra)``; ``(0, {})`` otherwise.

    With ``config`` (plain data), a state written with another config is refused, naming the fields."""
    from sepcore.train.fit import check_config

    path = state_path(out)
    if not path.exists():
        return 0, {}
    state = torch.load(path, map_location="cpu", weights_only=True)
    if config is not None:
        check_config(path, state.get("config"), config)
    log(f"resuming at step {int(state['step'])} ({path})")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return int(state["step"]), state.get("extra", {})


def after_step(out, model, optimizer, done: int, *, total: int, every: int, rank: int,
               started: float, max_seconds: float | None, config: dict | None = None) -> bool:
    """Save the resumable state every ``every`` steps and at the end; return True when the
    CPU-time budget (``started``: :func:`sepcore.train.budget.cpu_clock`) is spent (the state is
    saved first, so a later run resumes from here)."""
    from sepcore.train.budget import cpu_clock

    if done % every == 0 or done == total:
        if rank == 0:
            save_state(out, model, optimizer, done, config=config)
        barrier()
    if max_seconds is not None and cpu_clock() - started > max_seconds:
        if rank == 0:
            save_state(out, model, optimizer, done, config=config)
        return True
    return False


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
