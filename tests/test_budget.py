"""The shared step/time budget: exponential learning-rate decay and the stop flag."""

import math
import time

import torch

from sepcore.train.budget import budget_fraction, budget_step, cpu_clock


def test_lr_decays_geometrically_to_lr_final_over_the_step_budget():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    started = cpu_clock()
    for step in range(4):
        _, last = budget_step(optimizer, step, started, steps=4, max_minutes=60.0, lr=1e-2, lr_final=1e-4)
        expected = 1e-2 * (1e-2) ** ((step + 1) / 4)
        assert math.isclose(optimizer.param_groups[0]["lr"], expected, rel_tol=1e-9)
        assert last == (step == 3)


def test_spent_cpu_time_ends_training_at_lr_final():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    elapsed, last = budget_step(optimizer, 0, cpu_clock() - 120.0, steps=1000, max_minutes=1.0,
                                lr=1e-2, lr_final=1e-4)
    assert last and elapsed >= 120.0
    assert math.isclose(optimizer.param_groups[0]["lr"], 1e-4, rel_tol=1e-9)


def test_the_budget_counts_cpu_time_not_sleep():
    started = cpu_clock()
    time.sleep(0.3)                                   # wall time passes, CPU time hardly does
    assert budget_fraction(0, started, steps=10**6, max_minutes=0.01) < 0.25


def test_kl_warm_up_follows_the_spent_budget():
    from sepcore.train.variational import kl_weight_fraction

    assert kl_weight_fraction(0.05, 0.1) == 0.5 and kl_weight_fraction(0.5, 0.1) == 1.0 and kl_weight_fraction(0.0, 0) == 1.0
