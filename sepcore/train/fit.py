"""One training loop for long runs: a step budget planned up front, resumable, observable.

Every long training entry point (latent priors, the spectrogram codec, score priors) goes through
:func:`fit`, which gives each of them the same guarantees:

* **A planned budget.** The run lasts ``plan.steps`` optimiser steps, or, with
  ``plan.cpu_minutes``, as many steps as that much CPU time buys: the speed is measured over the
  first ``plan.calibration_steps`` steps and the step count fixed from it (stored, so a resumed run
  keeps the same plan). The learning rate follows that plan: linear warm-up over
  ``plan.warmup_steps``, then a cosine from ``lr`` to ``lr * lr_final_ratio`` at the last step. CPU
  time (:func:`sepcore.train.budget.cpu_clock`) rather than wall time measures the budget, so a loaded machine
  does not cut a run short.
* **Resume with a config check.** The state file ``<out>.state.pt`` holds the model, the optimiser,
  the step, the plan, the config and the learning curve. A run whose config differs is refused
  with a message naming the fields; a matching one prints ``resuming at step N``. ``init_from``
  warm-starts a fresh run from committed weights (fresh optimiser, a short warm-up).
* **Validation and a plateau stop.** Every ``plan.eval_every`` steps ``val_fn()`` is evaluated; the
  best weights so far are what the caller saves. The run stops early when the validation loss
  has not improved by ``plan.min_delta`` for ``plan.patience`` evaluations.
* **A learning curve** (step, wall and CPU seconds, mean train loss since the last evaluation,
  validation loss, learning rate) written as CSV after every evaluation, and a progress bar
  with an ETA.
* **Data-parallel runs** (``torchrun``, :mod:`sepcore.train.distributed`): every rank runs the
  same loop on its own batches (``loss_fn`` calls the DistributedDataParallel wrapper, which
  averages the gradients); rank 0 alone writes the state, the curve and the checkpoints and shows
  the progress bar, and its planned step count and validation losses are broadcast, so every
  rank stops at the same step.

Written by hand: the pieces (AdamW, tqdm, ``torch.save``) are standard, but no library we depend
on offers resumable CPU-budgeted training with these checks.
"""

from __future__ import annotations

import copy
import csv
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from sepcore.train.budget import cpu_clock
from sepcore.train.distributed import barrier, from_rank_zero, rank_and_world
from sepcore.utils import progress, quiet, save_atomic


@dataclass
class FitPlan:
    """How long to train and how to watch it. ``steps`` is an upper bound when ``cpu_minutes`` is set."""

    steps: int = 10000
    cpu_minutes: float | None = None
    calibration_steps: int = 30
    lr: float = 1e-3
    lr_final_ratio: float = 0.05
    warmup_steps: int = 200
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    eval_every: int = 250
    checkpoint_every: int = 250
    patience: int = 8
    min_delta: float = 1e-3


@dataclass
class FitResult:
    steps_done: int
    planned_steps: int
    best_val: float
    best_step: int
    cpu_seconds: float
    wall_seconds: float
    stopped_by: str
    curve: list = field(default_factory=list)


class ConfigMismatch(SystemExit):
    """A state file was written by a run with another config."""


def planned_lr(step: int, planned: int, plan: FitPlan) -> float:
    """Learning rate at optimiser step ``step`` (0-based): linear warm-up, then cosine to ``lr * lr_final_ratio``."""
    if step < plan.warmup_steps:
        return plan.lr * (step + 1) / plan.warmup_steps
    span = max(1, planned - plan.warmup_steps)
    progress_fraction = min(1.0, (step - plan.warmup_steps) / span)
    floor = plan.lr * plan.lr_final_ratio
    return floor + 0.5 * (plan.lr - floor) * (1 + math.cos(math.pi * progress_fraction))


def check_config(path, saved: dict | None, wanted: dict) -> None:
    """Refuse to resume from ``path`` when the config it was written with differs from ``wanted``,
    naming the fields (nested dicts are compared one level down: ``plan.lr``). Every resumable
    training loop of the package calls this."""
    if saved is None:
        differs = ["<no config saved>"]
    else:
        differs = []
        for key in sorted(set(saved) | set(wanted)):
            a, b = saved.get(key), wanted.get(key)
            if isinstance(a, dict) and isinstance(b, dict):
                differs += [f"{key}.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
            elif a != b:
                differs.append(key)
    if differs:
        raise ConfigMismatch(f"{path} was written with another config (fields {differs}); delete it to start over, "
                             "or run with the same settings")


def restart_on_mismatch(train: Callable[[], object], state_path: str | Path, log=print):
    """``train()``, and when the state file at ``state_path`` belongs to another config or another loop
    (:class:`ConfigMismatch`), delete it and ``train()`` once more from the start. For models trained
    on the fly (``sepcore.pretrained``), whose state files are scratch, never for a CLI run."""
    try:
        return train()
    except ConfigMismatch as mismatch:
        log(f"{mismatch}; starting over")
        Path(state_path).unlink()
        return train()


def write_curve(rows: list[dict], path: str | Path) -> None:
    """Learning curve CSV (one row per evaluation)."""
    if not rows:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def fit(model: torch.nn.Module, loss_fn: Callable[[int], torch.Tensor | dict], val_fn: Callable[[], float],
        plan: FitPlan, *, state_path: str | Path, config: dict, curve_path: str | Path | None = None,
        name: str = "model", init_from: dict | None = None,
        on_checkpoint: Callable[[torch.nn.Module, dict], None] | None = None,
        on_plan: Callable[[int], None] | None = None, optimizer: torch.optim.Optimizer | None = None,
        log=print) -> FitResult:
    """Train ``model`` by ``loss_fn(step)`` under ``plan``; returns the run's summary.

    ``loss_fn`` returns the scalar loss, or a dict of scalars whose ``"loss"`` is minimised and
    whose other entries are logged: the curve gains one column per entry, its mean since the last
    evaluation (e.g. the terms of an ELBO). On return ``model`` holds the **best-validation**
    weights. ``config`` (a plain dict: data, model and plan settings) is compared with the state
    file's. ``on_plan(steps)`` is called with the planned step count at the start and again when
    the CPU budget fixes it, for schedules of the caller's own that end with the run (a KL
    warm-up). ``on_checkpoint(best_model, info)`` is called at every checkpoint with the best
    weights so far, so a caller can write its checkpoint file while the run goes on (``info`` has
    ``step``, ``best_val``, ``best_step``, ``cpu_seconds``, ``wall_seconds``, ``planned_steps``; the
    last call adds ``stopped_by``). Under ``torchrun`` only rank 0 calls ``on_checkpoint`` and ``log``.
    """
    rank, world = rank_and_world()
    device = next(model.parameters()).device
    if rank != 0:
        log = _silent
    state_path = Path(state_path)
    optimizer = optimizer or torch.optim.AdamW(model.parameters(), lr=plan.lr, weight_decay=plan.weight_decay)
    full_config = {"config": config, "plan": asdict(plan)}
    step, planned, curve = 0, plan.steps, []
    best_val, best_step, best_state = math.inf, -1, None
    cpu_before, wall_before, bad_evals = 0.0, 0.0, 0
    if state_path.exists():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or not {"config", "step", "planned"} <= set(state):
            raise ConfigMismatch(f"{state_path} was not written by this training loop; delete it to start over")
        saved = state["config"]
        check_config(state_path, {**saved["config"], "plan": saved["plan"]}, {**config, "plan": asdict(plan)})
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, planned, curve = state["step"], state["planned"], state["curve"]
        best_val, best_step, best_state = state["best_val"], state["best_step"], state["best_state"]
        cpu_before, wall_before, bad_evals = state["cpu_seconds"], state["wall_seconds"], state["bad_evals"]
        if state.get("stopped_by", "").startswith("plateau"):
            planned = step                          # a plateau stop is final: resuming adds no steps
        log(f"{name}: resuming at step {step} of {planned} (best validation {best_val:.4f} at step {best_step})")
    elif init_from is not None:
        model.load_state_dict(init_from)
        log(f"{name}: warm start from given weights, fresh optimiser")
    cpu0, wall0 = cpu_clock(), time.time()

    def cpu_now():
        return cpu_before + cpu_clock() - cpu0

    def wall_now():
        return wall_before + time.time() - wall0

    def save_state(stopped_by=""):
        if rank != 0:
            barrier()
            return
        save_atomic({"stopped_by": stopped_by, "model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "planned": planned,
                      "curve": curve, "best_val": best_val, "best_step": best_step, "best_state": best_state,
                      "cpu_seconds": cpu_now(), "wall_seconds": wall_now(), "bad_evals": bad_evals,
                      "config": full_config}, state_path)
        barrier()

    def best_model():
        if best_state is None:
            return model
        snapshot = copy.deepcopy(model)
        snapshot.load_state_dict(best_state)
        return snapshot

    stopped_by = "steps"
    running, n_running, logged = 0.0, 0, {}
    calibrating = plan.cpu_minutes is not None and step == 0
    if on_plan is not None:
        on_plan(planned)
    bar = progress(total=planned, initial=step, desc=f"train {name}", mininterval=15, disable=quiet() or rank != 0)
    cpu_at_start = cpu_now()
    while step < planned:
        model.train()
        for group in optimizer.param_groups:
            group["lr"] = planned_lr(step, planned, plan)
        loss = loss_fn(step)
        if isinstance(loss, dict):
            for key, value in loss.items():
                if key != "loss":
                    logged.setdefault(key, []).append(float(value))
            loss = loss["loss"]
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{name}: loss became {float(loss)} at step {step}; lower the learning rate")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if plan.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), plan.grad_clip)
        optimizer.step()
        running += float(loss.detach())
        n_running += 1
        step += 1
        bar.update(1)
        if calibrating and step == plan.calibration_steps:
            per_step = (cpu_now() - cpu_at_start) / step
            planned = max(step + 1, min(plan.steps, int(60 * plan.cpu_minutes / per_step)))
            planned = int(from_rank_zero(planned, world, device))
            bar.total = planned
            bar.refresh()
            calibrating = False
            log(f"{name}: {per_step * 1000:.1f} CPU-ms per step; {plan.cpu_minutes} CPU-minutes plan {planned} steps")
            if on_plan is not None:
                on_plan(planned)
        if step % plan.eval_every == 0 or step == planned:
            model.eval()
            with torch.no_grad():
                val = from_rank_zero(float(val_fn()), world, device)
            improved = val < best_val - plan.min_delta
            if val < best_val:
                best_val, best_step = val, step
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            bad_evals = 0 if improved else bad_evals + 1
            curve.append({"step": step, "wall_s": round(wall_now(), 1), "cpu_s": round(cpu_now(), 1),
                          "train_loss": round(running / max(1, n_running), 5), "val_loss": round(val, 5),
                          "lr": planned_lr(step - 1, planned, plan),
                          **{key: round(sum(values) / len(values), 5) for key, values in logged.items()}})
            running, n_running, logged = 0.0, 0, {}
            bar.set_postfix(train=f"{curve[-1]['train_loss']:.4f}", val=f"{val:.4f}", best=f"{best_val:.4f}")
            if curve_path is not None and rank == 0:
                write_curve(curve, curve_path)
            if bad_evals >= plan.patience:
                stopped_by = f"plateau ({plan.patience} evaluations without a gain of {plan.min_delta})"
                break
        if step % plan.checkpoint_every == 0 or step == planned:
            save_state()
            if on_checkpoint is not None and rank == 0:
                on_checkpoint(best_model(), {"step": step, "best_val": best_val, "best_step": best_step,
                                             "cpu_seconds": round(cpu_now(), 1), "wall_seconds": round(wall_now(), 1),
                                             "planned_steps": planned})
    bar.close()
    save_state(stopped_by)
    if best_state is not None:
        model.load_state_dict(best_state)
    result = FitResult(step, planned, best_val, best_step, round(cpu_now(), 1), round(wall_now(), 1), stopped_by, curve)
    if on_checkpoint is not None and rank == 0:
        on_checkpoint(model, {"step": step, "best_val": best_val, "best_step": best_step,
                              "cpu_seconds": result.cpu_seconds, "wall_seconds": result.wall_seconds,
                              "planned_steps": planned, "stopped_by": stopped_by})
    log(f"{name}: stopped by {stopped_by} at step {step}; best validation {best_val:.4f} at step {best_step}; "
        f"{result.cpu_seconds:.0f} CPU-s")
    barrier()
    return result



def _silent(*_):
    pass
