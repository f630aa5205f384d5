"""The mixing convention: the one setting that data, likelihoods, samplers and metrics read.

Frank (paper 002) and the LQ-VAE code (paper 003) mix by the **mean** of the sources;
BASIS and LASS on images mix by the **sum**. Every function in the package that forms a
mixture, or compares a mixture with its sources, calls :func:`mix` (or
:func:`mixing_weight`) with ``mixing=None``, which reads the current setting here.

>>> import torch
>>> s = torch.ones(2, 4)            # (n_sources, time)
>>> mix(s)                          # default convention: mean
tensor([1., 1., 1., 1.])
>>> with set_mixing("sum"):
...     mix(s)
tensor([2., 2., 2., 2.])
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

CONVENTIONS = ("mean", "sum")
_current = "mean"


def _check(mixing: str) -> str:
    if mixing not in CONVENTIONS:
        raise ValueError(f"mixing must be one of {CONVENTIONS}, got {mixing!r}")
    return mixing


def get_mixing(mixing: str | None = None) -> str:
    """Return ``mixing`` if given, else the package-wide setting."""
    return _check(mixing) if mixing is not None else _current


@contextlib.contextmanager
def set_mixing(mixing: str) -> Iterator[str]:
    """Set the package-wide convention for the duration of a ``with`` block."""
    global _current
    previous, _current = _current, _check(mixing)
    try:
        yield _current
    finally:
        _current = previous


def set_default_mixing(mixing: str) -> None:
    """Set the package-wide convention permanently (e.g. at the top of a chapter)."""
    global _current
    _current = _check(mixing)


def mixing_weight(n_sources: int, mixing: str | None = None) -> float:
    """The weight w with ``mix(s) = w * sum_k s_k``: 1/N for the mean, 1 for the sum."""
    return 1.0 / n_sources if get_mixing(mixing) == "mean" else 1.0


def mix(sources: torch.Tensor, mixing: str | None = None, dim: int = -2) -> torch.Tensor:
    """Mix sources along ``dim`` (the source axis).

    Args:
        sources: ``(..., n_sources, time)`` with the default ``dim=-2``.
        mixing: ``"mean"`` or ``"sum"``; ``None`` reads the package setting.

    Returns:
        ``(..., time)``: the mixture ``m = w * sum_k s_k`` with ``w`` from :func:`mixing_weight`.
    """
    n_sources = sources.shape[dim]
    return sources.sum(dim=dim) * mixing_weight(n_sources, mixing)
