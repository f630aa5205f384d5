"""The step-or-wall-time budget and learning-rate decay shared by the flow and variational loops.

Both loops train for ``steps`` steps or ``max_minutes`` of wall time, whichever runs out first,
and decay the learning rate exponentially from ``lr`` to ``lr_final`` over that same budget.
"""

from __future__ import annotations

import time

import torch


def budget_step(optimizer: torch.optim.Optimizer, step: int, started: float, *, steps: int, max_minutes: float,
                lr: float, lr_final: float) -> tuple[float, bool]:
    """After optimiser step ``step`` (0-based) of a loop that began at ``started`` (``time.perf_counter``):
    set ``lr * (lr_final / lr) ** f``, ``f`` the spent fraction of the budget (capped at 1), and return
    ``(elapsed_seconds, last)`` where ``last`` says the step or time budget is spent."""
    elapsed = time.perf_counter() - started
    done = max((step + 1) / steps, elapsed / (60 * max_minutes))
    for group in optimizer.param_groups:
        group["lr"] = lr * (lr_final / lr) ** min(done, 1.0)
    return elapsed, step + 1 == steps or elapsed > 60 * max_minutes
