"""The training budget's clock counts CPU time."""

import time

from sepcore.train.budget import cpu_clock


def test_the_budget_counts_cpu_time_not_sleep():
    started = cpu_clock()
    time.sleep(0.3)                                   # wall time passes, CPU time hardly does
    assert cpu_clock() - started < 0.25

