"""The training budget's clock counts CPU time, and the KL warm-up of the variational loop ends with its plan."""

import time

from sepcore.train.budget import cpu_clock


def test_the_budget_counts_cpu_time_not_sleep():
    started = cpu_clock()
    time.sleep(0.3)                                   # wall time passes, CPU time hardly does
    assert cpu_clock() - started < 0.25


def test_kl_warm_up_is_linear_over_its_fraction_of_the_plan():
    from sepcore.train.variational import kl_weight

    assert kl_weight(5, 100, 0.1) == 0.5 and kl_weight(50, 100, 0.1) == 1.0 and kl_weight(0, 100, 0) == 1.0
