"""One batched selection kernel over a score table: greedy, top-k, top-p and ancestral sampling.

Shared by latent Bayesian separation (paper 003) and LASS (paper 004). The table is
``(batch, N)`` unnormalised log-scores, e.g. the ``N = K*K`` code pairs of every candidate.
It can be given whole, or as a function ``scores(start, stop) -> (batch, stop - start)`` that
is evaluated in column chunks so that ``batch x N`` is never materialised:

* ``greedy`` / ``top_k``: a running top-k merged chunk by chunk (exact);
* ``ancestral``: the Gumbel-max trick, ``argmax(s + G)`` with ``G ~ Gumbel(0, 1)``, whose
  running maximum over chunks is an exact sample from ``softmax(s / temperature)``;
* ``top_p`` (nucleus): exact over the running top ``max_candidates`` entries, normalised by the
  exact ``logsumexp`` of the whole row (streamed); when the nucleus is larger than
  ``max_candidates`` it is truncated there (``Selection.truncated`` says where).

Every method also returns the exact per-row ``log_normalizer = logsumexp(s / temperature)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

METHODS = ("greedy", "top_k", "top_p", "ancestral")
ScoreFn = Callable[[int, int], torch.Tensor]


@dataclass
class Selection:
    indices: torch.Tensor          # (batch, n) long, column indices into the table
    scores: torch.Tensor           # (batch, n) the (temperature-scaled) scores of those entries
    log_normalizer: torch.Tensor   # (batch,) logsumexp of the scaled row
    truncated: torch.Tensor | None = None  # (batch,) bool, top_p only


def _gumbel(shape, generator, device, dtype):
    u = torch.rand(shape, generator=generator, dtype=dtype, device="cpu" if generator is not None else device)
    return -torch.log(-torch.log(u.clamp_min(1e-20).to(device)))


def select(
    scores: torch.Tensor | ScoreFn,
    n_total: int | None = None,
    *,
    method: str = "ancestral",
    n: int = 1,
    top_k: int = 1,
    top_p: float = 0.9,
    temperature: float = 1.0,
    max_candidates: int = 1024,
    chunk_size: int | None = None,
    generator: torch.Generator | None = None,
) -> Selection:
    """Pick ``n`` entries per row of a ``(batch, N)`` log-score table.

    Args:
        scores: the table, or ``fn(start, stop)`` returning its columns ``[start, stop)``.
        n_total: N, required when ``scores`` is a function.
        method: ``greedy`` (the n best), ``top_k`` (n samples with replacement from the
            renormalised ``top_k`` best), ``top_p`` (n samples from the nucleus of mass
            ``top_p``), ``ancestral`` (n samples from the full softmax, with replacement).
        chunk_size: columns per chunk (default: the whole table at once).
        generator: a CPU ``torch.Generator`` for reproducible draws.

    Returns:
        :class:`Selection` with ``indices, scores: (batch, n)``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}; use method='greedy' for the MAP")
    if callable(scores):
        if n_total is None:
            raise ValueError("n_total is required when scores is a function")
        fn = scores
    else:
        table = scores
        n_total = table.shape[-1]

        def fn(start, stop):
            return table[:, start:stop]
    chunk_size = chunk_size or n_total
    keep = {"greedy": n, "top_k": top_k, "top_p": max_candidates, "ancestral": 0}[method]
    run_lse = best_val = best_idx = None
    gumbel_val = gumbel_idx = gumbel_score = None
    for start in range(0, n_total, chunk_size):
        stop = min(start + chunk_size, n_total)
        s = fn(start, stop) / temperature                                  # (batch, chunk)
        lse = torch.logsumexp(s, -1)
        run_lse = lse if run_lse is None else torch.logaddexp(run_lse, lse)
        if keep:
            idx = torch.arange(start, stop, device=s.device).expand_as(s)
            if best_val is not None:
                s_cat, idx = torch.cat([best_val, s], 1), torch.cat([best_idx, idx], 1)
            else:
                s_cat = s
            k = min(keep, s_cat.shape[1])
            best_val, pos = s_cat.topk(k, dim=1)
            best_idx = idx.gather(1, pos)
        else:
            noisy = s.unsqueeze(1) + _gumbel((s.shape[0], n, s.shape[1]), generator, s.device, s.dtype)  # (batch, n, chunk)
            val, pos = noisy.max(-1)                                       # (batch, n)
            sc = s.gather(1, pos)
            pos = pos + start
            if gumbel_val is None:
                gumbel_val, gumbel_idx, gumbel_score = val, pos, sc
            else:
                better = val > gumbel_val
                gumbel_val = torch.where(better, val, gumbel_val)
                gumbel_idx = torch.where(better, pos, gumbel_idx)
                gumbel_score = torch.where(better, sc, gumbel_score)
    if method == "ancestral":
        return Selection(gumbel_idx, gumbel_score, run_lse)
    if method == "greedy":
        return Selection(best_idx[:, :n], best_val[:, :n], run_lse)
    truncated = None
    logits = best_val
    if method == "top_p":
        probs = (best_val - run_lse[:, None]).exp()                        # sorted descending
        mass_before = probs.cumsum(1) - probs
        inside = mass_before < top_p
        truncated = inside.all(1) & (probs.sum(1) < top_p)
        logits = best_val.masked_fill(~inside, float("-inf"))
    draw = torch.multinomial(logits.softmax(1).cpu(), n, replacement=True, generator=generator).to(logits.device)
    return Selection(best_idx.gather(1, draw), best_val.gather(1, draw), run_lse, truncated)


def chunk_for_budget(batch: int, n_total: int, max_elements: int = 2**24) -> int:
    """Columns per chunk so that a ``(batch, chunk)`` float table stays under ``max_elements``."""
    return max(1, min(n_total, max_elements // max(1, batch)))
