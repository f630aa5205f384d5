"""The step-or-CPU-time budget and learning-rate decay shared by the flow and variational loops.

Both loops train for ``steps`` steps or ``max_minutes`` of **CPU time** (``time.process_time``:
the process's own CPU seconds, all threads), whichever runs out first, and decay the learning
rate exponentially from ``lr`` to ``lr_final`` over that same budget. CPU time, not wall time: on
a shared machine a wall-clock budget gave a process a fraction of a core and stopped it after a
fraction of its planned steps. :func:`budget_fraction` is the spent fraction of the budget, which
schedules that must end with the budget (the KL warm-up) read as well.
"""

from __future__ import annotations

import time

import torch


def cpu_clock() -> float:
    """The clock every budget reads: this process's CPU seconds."""
    return time.process_time()


def budget_fraction(step: int, started: float, *, steps: int, max_minutes: float) -> float:
    """Spent fraction of the budget after ``step`` steps (0-based count done) since ``started`` (:func:`cpu_clock`)."""
    return max(step / steps, (cpu_clock() - started) / (60 * max_minutes))


def budget_step(optimizer: torch.optim.Optimizer, step: int, started: float, *, steps: int, max_minutes: float,
                lr: float, lr_final: float) -> tuple[float, bool]:
    """After optimiser step ``step`` (0-based) of a loop that began at ``started`` (:func:`cpu_clock`):
    set ``lr * (lr_final / lr) ** f``, ``f`` the spent fraction of the budget (capped at 1), and return
    ``(elapsed_cpu_seconds, last)`` where ``last`` says the step or CPU budget is spent."""
    elapsed = cpu_clock() - started
    done = max((step + 1) / steps, elapsed / (60 * max_minutes))
    for group in optimizer.param_groups:
        group["lr"] = lr * (lr_final / lr) ** min(done, 1.0)
    return elapsed, step + 1 == steps or elapsed > 60 * max_minutes
