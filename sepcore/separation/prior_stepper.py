"""One stepper for N autoregressive priors over R rows, shared by LASS and latent Bayes.

Both searches advance N priors one code at a time over R candidate rows: LASS's beams (rows are
reordered when beams are replaced) and latent Bayes's B candidates (rows never move). The stepper
keeps the KV caches, feeds the codes chosen at the last step, rebuilds the context from the last
``block_size / 2`` codes when a cache fills its block (the sliding context of the reference
code), and reorders the caches by each row's parent.

Priors of one architecture run as one :class:`~sepcore.models.stacked_prior.StackedPriors` call
per step (one cache of ``N R`` rows); others one by one. Both paths give the same
log-probabilities up to float rounding.

Shapes: ``history (R, N, s)`` the codes chosen so far; ``log_probs -> (N, R, K)``;
``advance(codes (N, R), index (R,) | None)``.
"""

from __future__ import annotations

import torch

from sepcore.models.stacked_prior import StackedPriors
from sepcore.models.transformer import reorder_cache_inplace


class PriorStepper:
    """The N priors' next-code log-probabilities, one step at a time (see the module docstring)."""

    def __init__(self, priors, rows: int, device, *, batched: bool = True, stacked: StackedPriors | None = None):
        if batched and stacked is None:
            stacked = stack_priors(priors)
        self.batched = batched and stacked is not None
        if self.batched:
            self.state = _StackedState(stacked, rows, device)
        else:
            self.states = [_PriorState(p, rows, device) for p in priors]

    def log_probs(self, history: torch.Tensor) -> torch.Tensor:
        """``history (R, N, s)`` -> ``(N, R, K)`` log-probabilities of every prior's next code."""
        if self.batched:
            return self.state.log_probs(history)
        return torch.stack([state.log_probs(history[:, n]) for n, state in enumerate(self.states)])

    def advance(self, codes: torch.Tensor, index: torch.Tensor | None = None) -> None:
        """Feed ``codes (N, R)``; ``index (R,)``: the parent row of every row (``None``: rows stay)."""
        if self.batched:
            self.state.advance(codes, index)
        else:
            for state, c in zip(self.states, codes):
                state.advance(c, index)


class _PriorState:
    """One prior's KV cache and inputs for rows ``R``, with the sliding-context rebuild."""

    def __init__(self, prior, rows: int, device):
        self.prior, self.cache = prior, None
        self.block = prior.config.block_size
        self.start = prior.config.start_token
        self.next_input = torch.full((rows, 1), self.start, dtype=torch.long, device=device)

    def log_probs(self, history: torch.Tensor) -> torch.Tensor:
        """Next-code log-probabilities ``(R, K)``; ``history: (R, s)`` the codes chosen so far."""
        if self.cache is not None and self.cache.length >= self.block:
            keep = self.block // 2
            context = torch.cat([torch.full_like(history[:, :1], self.start), history[:, -(keep - 1):]], 1)
            logits, self.cache = self.prior(context, None)
        else:
            logits, self.cache = self.prior(self.next_input, self.cache)
        return logits[:, -1].float().log_softmax(-1)

    def advance(self, codes: torch.Tensor, index: torch.Tensor | None = None) -> None:
        if index is not None and self.cache is not None:
            self.cache = reorder_cache_inplace(self.cache, index)
        self.next_input = codes[:, None]


class _StackedState:
    """All priors as one :class:`StackedPriors` with one cache of ``P * R`` rows; same steps as :class:`_PriorState`."""

    def __init__(self, stacked: StackedPriors, rows: int, device):
        self.stacked, self.cache, self.rows = stacked, None, rows
        self.block = stacked.config.block_size
        self.start = stacked.config.start_token
        self.next_input = torch.full((stacked.n, rows, 1), self.start, dtype=torch.long, device=device)

    def log_probs(self, history: torch.Tensor) -> torch.Tensor:
        """``(P, R, K)``; ``history: (R, P, s)`` the codes chosen so far."""
        if self.cache is not None and self.cache.length >= self.block:
            keep = self.block // 2
            past = history[:, :, -(keep - 1):].transpose(0, 1)                      # (P, R, keep - 1)
            context = torch.cat([torch.full_like(past[:, :, :1], self.start), past], 2)
            logits, self.cache = self.stacked(context, None)
        else:
            logits, self.cache = self.stacked(self.next_input, self.cache)
        return logits[:, :, -1].float().log_softmax(-1)

    def advance(self, codes: torch.Tensor, index: torch.Tensor | None = None) -> None:
        """``codes: (P, R)``; ``index: (R,)`` the parent row of every row (the same for all priors)."""
        if index is not None and self.cache is not None:
            offsets = torch.arange(self.stacked.n, device=index.device)[:, None] * self.rows
            self.cache = reorder_cache_inplace(self.cache, (index[None] + offsets).flatten())
        self.next_input = codes[:, :, None]


def stack_priors(priors) -> StackedPriors | None:
    """:class:`StackedPriors` of ``priors``, or ``None`` when their architectures differ."""
    try:
        return StackedPriors(priors)
    except (ValueError, AttributeError):
        return None
