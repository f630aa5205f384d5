"""Separation metrics: SDR as the papers evaluate it, a fast batched SDR, SI-SDR and PSNR.

**Which SDR.** Papers 003 and 004 report museval's ``evaluate`` (BSS Eval v4, the *images*
variant) on 2 s windows with 2 s hop, the median over frames per chunk, then the mean over
chunks. For the images variant the four error terms sum to ``ŝ - s``, so the per-frame SDR is

    SDR = 10 log10( ||s||² / ||ŝ - s||² )                      (no gain or filter allowed)

:func:`sdr` computes exactly that, batched in torch, with museval's framing and its rule
that a frame in which any reference or any estimate is all zeros is NaN; the tests check it
against :func:`sdr_museval` to 0.01 dB. :func:`sdr_museval` calls museval itself and is the
reference. This module writes the fast path by hand because no maintained library computes
museval's framewise image SDR batched on the GPU (fast_bss_eval computes the *sources*
variant, which allows a 512-tap filter and gives different numbers).

Shapes: ``references`` and ``estimates`` are ``(..., n_sources, time)``.
Bad input (shape mismatch, NaN or inf) raises ``ValueError``; an all-zero reference gives NaN
frames, and a chunk whose frames are all NaN scores NaN, which :func:`nan_summary` counts.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

DEFAULT_WINDOW_S = 2.0
DEFAULT_HOP_S = 2.0


def _as_tensor(x) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    return x.detach().to(torch.float64)


def _validate(references, estimates) -> tuple[torch.Tensor, torch.Tensor]:
    references, estimates = _as_tensor(references), _as_tensor(estimates)
    if references.shape != estimates.shape:
        raise ValueError(
            f"references {tuple(references.shape)} and estimates {tuple(estimates.shape)} differ in shape; "
            "trim or pad the estimates to the references first."
        )
    if references.ndim < 2:
        raise ValueError(f"expected (..., n_sources, time), got shape {tuple(references.shape)}")
    for name, value in (("references", references), ("estimates", estimates)):
        if not torch.isfinite(value).all():
            raise ValueError(f"{name} contain NaN or inf values; metrics would be meaningless.")
    return references, estimates


def frame_bounds(length: int, window: int, hop: int) -> list[tuple[int, int]]:
    """museval's framing: ``floor((L - win + hop) / hop)`` frames, or one frame if ``win >= L``."""
    if window <= 0 or hop <= 0:
        raise ValueError(f"window and hop must be positive, got {window}, {hop}")
    if window >= length:
        return [(0, length)]
    n_frames = (length - window + hop) // hop
    return [(t * hop, min(t * hop + window, length)) for t in range(n_frames)]


def framewise_sdr(references, estimates, window: int, hop: int) -> torch.Tensor:
    """Per-frame image SDR, ``(..., n_sources, n_frames)``; NaN where museval gives NaN.

    Args:
        window, hop: in samples.
    """
    references, estimates = _validate(references, estimates)
    frames = []
    for start, stop in frame_bounds(references.shape[-1], window, hop):
        ref, est = references[..., start:stop], estimates[..., start:stop]
        signal_energy = ref.pow(2).sum(-1)
        error_energy = (est - ref).pow(2).sum(-1)
        value = 10 * torch.log10(signal_energy / error_energy)
        value = torch.where(error_energy == 0, torch.full_like(value, float("inf")), value)
        silent = (ref == 0).all(-1).any(-1, keepdim=True) | (est == 0).all(-1).any(-1, keepdim=True)
        frames.append(torch.where(silent, torch.full_like(value, float("nan")), value))
    return torch.stack(frames, dim=-1)


def sdr(references, estimates, sample_rate: int, window_s: float = DEFAULT_WINDOW_S, hop_s: float = DEFAULT_HOP_S) -> torch.Tensor:
    """Chunk SDR in dB as the papers report it: median over frames, ``(..., n_sources)``."""
    frames = framewise_sdr(references, estimates, round(window_s * sample_rate), round(hop_s * sample_rate))
    return nanmedian(frames)


def nanmedian(values: torch.Tensor) -> torch.Tensor:
    """numpy's ``nanmedian`` over the last axis: the mean of the two middle values, NaNs ignored,
    ``+inf`` kept (a perfect frame), NaN when every value is NaN. torch's own ``nanmedian``
    returns the lower middle value instead, and ``nanquantile`` turns ``inf`` into NaN."""
    valid = ~torch.isnan(values)
    count = valid.sum(-1, keepdim=True)
    ordered = torch.where(valid, values, torch.full_like(values, float("inf"))).sort(-1).values
    lower = ordered.gather(-1, ((count - 1).clamp(min=0)) // 2)
    upper = ordered.gather(-1, (count // 2).clamp(max=values.shape[-1] - 1))
    middle = torch.where(lower == upper, lower, 0.5 * (lower + upper)).squeeze(-1)
    return torch.where(count.squeeze(-1) == 0, torch.full_like(middle, float("nan")), middle)


def sdr_museval(references, estimates, sample_rate: int, window_s: float = DEFAULT_WINDOW_S, hop_s: float = DEFAULT_HOP_S) -> np.ndarray:
    """The reference: museval v4 ``evaluate`` on one chunk, ``(n_sources, time)`` → ``(n_sources,)``."""
    import museval

    references, estimates = _validate(references, estimates)
    if references.ndim != 2:
        raise ValueError("sdr_museval takes one chunk, (n_sources, time); loop or use sdr() for batches")
    ref = references.numpy()[..., None]
    est = estimates.numpy()[..., None]
    frames, _, _, _ = museval.evaluate(ref, est, win=round(window_s * sample_rate), hop=round(hop_s * sample_rate))
    with np.errstate(all="ignore"):
        all_nan = np.isnan(frames).all(axis=1)
        medians = np.nanmedian(np.where(all_nan[:, None], 0.0, frames), axis=1)
    return np.where(all_nan, np.nan, medians)


def si_sdr(references, estimates, eps: float = 1e-12) -> torch.Tensor:
    """Scale-invariant SDR over the whole signal (Le Roux et al. 2019), ``(..., n_sources)``."""
    references, estimates = _validate(references, estimates)
    scale = (estimates * references).sum(-1, keepdim=True) / (references.pow(2).sum(-1, keepdim=True) + eps)
    target = scale * references
    noise = estimates - target
    return 10 * torch.log10((target.pow(2).sum(-1) + eps) / (noise.pow(2).sum(-1) + eps))


def psnr(references, estimates, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB over all but the leading axes of ``(..., n_sources, *dims)``.

    Images are ``(..., n_sources, H, W)``; pass them flattened to ``(..., n_sources, H*W)``.
    """
    references, estimates = _validate(references, estimates)
    mse = (references - estimates).pow(2).mean(-1)
    return 10 * torch.log10(data_range**2 / mse)


def permutation_invariant(metric, references, estimates, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """Best source order by the mean metric, for priors that do not know the class.

    Returns ``(scores (..., n_sources), permutation (..., n_sources))`` where
    ``estimates[..., permutation[k], :]`` is matched to ``references[..., k, :]``.
    Only legitimate when the method cannot tell the sources apart (one shared prior); for
    class-specific methods the permutation that maximises a truth-based score is an oracle.
    """
    references, estimates = _validate(references, estimates)
    n_sources = references.shape[-2]
    best_scores, best_perm, best_mean = None, None, None
    for perm in itertools.permutations(range(n_sources)):
        scores = metric(references, estimates[..., list(perm), :], **kwargs)
        mean = scores.nan_to_num(nan=-1e9).mean(-1)
        if best_mean is None:
            best_scores, best_mean = scores, mean
            best_perm = torch.tensor(perm).expand(*mean.shape, n_sources).clone()
        else:
            better = mean > best_mean
            best_scores = torch.where(better[..., None], scores, best_scores)
            best_perm = torch.where(better[..., None], torch.tensor(perm), best_perm)
            best_mean = torch.maximum(mean, best_mean)
    return best_scores, best_perm


def nan_summary(values) -> dict:
    """Mean, median and std over chunks, ignoring NaN chunks, with the count of NaNs reported."""
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    return {
        "mean": float(finite.mean()) if finite.size else float("nan"),
        "median": float(np.median(finite)) if finite.size else float("nan"),
        "std": float(finite.std()) if finite.size else float("nan"),
        "n": int(finite.size),
        "n_nan": int(np.isnan(values).sum()),
    }
