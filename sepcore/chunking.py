"""Long inputs in bounded memory: separate chunk by chunk and overlap-add the estimates.

A separator that works on a few seconds (a method's natural context) is turned into one that
takes a whole song. Chunks of ``chunk_length`` samples start every ``hop = chunk_length -
overlap`` samples; the last chunk is aligned with the end of the input so no padding (which
a method could mistake for silence) is ever fed to it. Each chunk's estimate is weighted by a
crossfade window that is one in its middle and has raised-cosine ramps of ``overlap``
samples where it meets its neighbours:

    w(t) = sin^2(pi/2 * (t + 1/2) / overlap)   on the rising ramp,
    w(t) = cos^2(...)                            on the falling ramp,

so two neighbouring ramps sum to exactly one (sin^2 + cos^2 = 1). The output is
``sum_i w_i * y_i / sum_i w_i``; the division only matters where the last, end-aligned chunk
overlaps its neighbour by more than ``overlap``, and guarantees a partition of unity there.
An estimator that returns its input therefore reconstructs the input exactly.

Memory: the output ``(n_sources, time)`` plus one chunk at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from sepcore.utils import progress

SeparateFn = Callable[[torch.Tensor], torch.Tensor]


def crossfade_window(chunk_length: int, overlap: int, rise: bool = True, fall: bool = True,
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The weight of one chunk, ``(chunk_length,)``: ones with sin^2 / cos^2 ramps of ``overlap``.

    ``rise`` / ``fall`` switch off the ramp at the start / end (the first / last chunk).
    """
    if not 0 <= overlap <= chunk_length // 2:
        raise ValueError(f"overlap must lie in [0, chunk_length // 2] = [0, {chunk_length // 2}], got {overlap}")
    window = torch.ones(chunk_length, dtype=torch.float64)
    if overlap > 0:
        ramp = torch.sin(0.5 * math.pi * (torch.arange(overlap, dtype=torch.float64) + 0.5) / overlap) ** 2
        if rise:
            window[:overlap] = ramp
        if fall:
            window[-overlap:] = ramp.flip(0)  # cos^2 of the mirrored argument = 1 - ramp
    return window.to(dtype)


def chunk_starts(length: int, chunk_length: int, overlap: int) -> list[int]:
    """Start indices of the chunks covering ``length`` samples; the last one ends at ``length``."""
    if chunk_length <= 0:
        raise ValueError(f"chunk_length must be positive, got {chunk_length}")
    if length <= chunk_length:
        return [0]
    hop = chunk_length - overlap
    starts = list(range(0, length - chunk_length + 1, hop))
    if starts[-1] + chunk_length < length:
        starts.append(length - chunk_length)
    return starts


def chunked(separate_fn: SeparateFn, chunk_length: int, overlap: int, *, show_progress: bool = True,
            desc: str = "separate") -> SeparateFn:
    """Wrap ``separate_fn`` (``(chunk_length,) -> (n_sources, chunk_length)``) for any length.

    Returns:
        ``separate(mixture (time,)) -> (n_sources, time)``. Inputs no longer than one chunk are
        passed through unchanged (the method itself decides whether they are long enough).
        Chunk estimates returned on another device (a CPU-only method given a CUDA mixture)
        are moved to the mixture's device.
    """
    if not 0 <= overlap <= chunk_length // 2:
        raise ValueError(f"overlap must lie in [0, chunk_length // 2] = [0, {chunk_length // 2}], got {overlap}")

    def separate(mixture: torch.Tensor) -> torch.Tensor:
        length = mixture.shape[-1]
        starts = chunk_starts(length, chunk_length, overlap)
        if len(starts) == 1:
            return separate_fn(mixture)
        output, windows = None, {}
        total = torch.zeros(length, dtype=torch.float64, device=mixture.device)
        bar_options = {} if show_progress else {"disable": True}
        for index, start in enumerate(progress(starts, desc=desc, unit="chunk", leave=False, **bar_options)):
            estimate = separate_fn(mixture[start:start + chunk_length])            # (n_sources, chunk)
            if estimate.ndim != 2 or estimate.shape[-1] != chunk_length:
                raise ValueError(f"the separator returned shape {tuple(estimate.shape)} for a chunk of "
                                 f"{chunk_length} samples; expected (n_sources, {chunk_length})")
            if output is None:
                output = torch.zeros(estimate.shape[0], length, dtype=torch.float64, device=mixture.device)
            edges = (index > 0, index < len(starts) - 1)
            if edges not in windows:
                windows[edges] = crossfade_window(chunk_length, overlap, *edges, dtype=torch.float64).to(mixture.device)
            window = windows[edges]
            output[:, start:start + chunk_length] += window * estimate.to(device=mixture.device, dtype=torch.float64)
            total[start:start + chunk_length] += window
        return output.div_(total).to(mixture.dtype)                                # in place: no third copy

    return separate
