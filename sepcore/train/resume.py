"""Resumable state for the flow and variational training loops (which keep their own schedules).

:class:`LoopState` writes ``<out>.state.pt`` (model, optimiser, step, history, CPU seconds spent,
the data generator's state and the run's config) and, on the next run of the same command, loads
it and prints ``resuming at step N``; a run with another config is refused with the fields that
differ. :mod:`sepcore.train.fit` does the same for the long-run loop.
"""

from __future__ import annotations

from pathlib import Path

import torch

from sepcore.train.fit import check_config
from sepcore.utils import save_atomic


class LoopState:
    def __init__(self, path, config: dict, log=print):
        self.path, self.config, self.log = Path(path), config, log

    def load(self, model, optimiser, generator: torch.Generator) -> tuple[int, list, float]:
        """``(start_step, history, cpu_seconds_spent)``; ``(0, [], 0.0)`` when there is no state."""
        if not self.path.exists():
            return 0, [], 0.0
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        check_config(self.path, state["config"], self.config)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        generator.set_state(state["generator"])
        self.log(f"resuming at step {state['step']} ({self.path})")
        return state["step"], state["history"], state["cpu_seconds"]

    def save(self, model, optimiser, generator: torch.Generator, step: int, history: list, cpu_seconds: float) -> None:
        save_atomic({"model": model.state_dict(), "optimiser": optimiser.state_dict(), "generator": generator.get_state(),
                      "step": step, "history": history, "cpu_seconds": cpu_seconds, "config": self.config}, self.path)


def flatten_config(value):
    """A config made of plain data (tuples as lists), comparable with what a state file stores."""
    if isinstance(value, dict):
        return {k: flatten_config(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [flatten_config(v) for v in value]
    return value
