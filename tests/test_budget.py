"""The shared step/time budget: exponential learning-rate decay and the stop flag."""

import math
import time

import torch

from sepcore.train.budget import budget_step


def test_lr_decays_geometrically_to_lr_final_over_the_step_budget():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    started = time.perf_counter()
    for step in range(4):
        _, last = budget_step(optimizer, step, started, steps=4, max_minutes=60.0, lr=1e-2, lr_final=1e-4)
        expected = 1e-2 * (1e-2) ** ((step + 1) / 4)
        assert math.isclose(optimizer.param_groups[0]["lr"], expected, rel_tol=1e-9)
        assert last == (step == 3)


def test_spent_wall_time_ends_training_at_lr_final():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    elapsed, last = budget_step(optimizer, 0, time.perf_counter() - 120.0, steps=1000, max_minutes=1.0,
                                lr=1e-2, lr_final=1e-4)
    assert last and elapsed >= 120.0
    assert math.isclose(optimizer.param_groups[0]["lr"], 1e-4, rel_tol=1e-9)
