"""Configs as plain data, so that a state file's config can be compared with a run's.

Every training loop stores its config in ``<out>.state.pt``; :func:`sepcore.train.fit.check_config`
refuses to resume from a state file written with another config. :func:`flatten_config` turns a
config of dataclass dicts and tuples into what ``torch.save`` gives back (tuples as lists), so the
two compare equal when the settings are the same.
"""

from __future__ import annotations


def flatten_config(value):
    """A config made of plain data (tuples as lists), comparable with what a state file stores."""
    if isinstance(value, dict):
        return {k: flatten_config(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [flatten_config(v) for v in value]
    return value
