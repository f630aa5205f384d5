"""The clock every training budget reads: this process's CPU seconds.

CPU time, not wall time: on a shared machine a wall-clock budget gave a process a fraction of a
core and stopped it after a fraction of its planned steps. :func:`sepcore.train.fit.fit`, the one
training loop, plans its steps from it and reports it.
"""

from __future__ import annotations

import time


def cpu_clock() -> float:
    """This process's CPU seconds (all threads)."""
    return time.process_time()
