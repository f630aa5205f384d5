"""LASS inference (paper 004 Algorithm 1), post-inference refinement (Eq. 12-13) and separators.

At step ``s``, for every row ``r`` (a beam or a sample) with histories ``z1_<s, z2_<s``::

    score_r(i, j) = running_r + log p1(i | z1_<s) + log p2(j | z2_<s) + lambda log p(m_s | i, j)

evaluated only on the non-zero ``(i, j)`` of the likelihood slice of the mixture code ``m_s``
(Eq. 11; :meth:`CountLikelihood.gather_slices`). Samplers, all through the shared kernel
:func:`sepcore.separation.sampling.select`:

* ``greedy``: the argmax per row (MAP per step);
* ``beam``: the top ``B`` of the ``B x L`` table of each mixture (``running`` included), the
  priors' KV caches reordered in place (:func:`reorder_cache_inplace`); a surviving beam keeps
  its slot, so only forked beams are copied; the best final beam is returned;
* ``ancestral`` / ``top_k`` / ``top_p``: one draw per row from the (filtered) per-step posterior.

Rows are ``(n_mixtures * n_rows)``: several mixtures and candidates run in one batch (on CUDA
when the models are there). Sequences longer than a prior's ``block_size`` continue with a
sliding context: the cache is rebuilt from ``[start, last block_size // 2 codes]``.

Speed: with ``batched_priors`` (default) the two priors run as one
:class:`sepcore.models.stacked_prior.StackedPriors` call per step with one KV cache of ``N R``
rows (same search up to float rounding; tested), and a beam that forks copies its parent's cache
rows directly (:func:`reorder_cache_inplace`).

N > 2 sources: with an N-source :class:`CountLikelihood` (fitted on N-source training
mixtures) and N priors, the step is the same with ``(i, j)`` replaced by the tuples of the slice,
``score_r(i_1..i_N) = running_r + sum_n log p_n(i_n | z_n,<s) + lambda log p(m_s | i_1..i_N)``; the
cost per step is ``R L`` gathers for a slice of ``L`` tuples (the stored tuples of one mixture
code; ``L`` is bounded by ``N!`` times the counted positions with that code) plus the N prior
calls. Unlike the pruned latent Bayes of :mod:`sepcore.separation.latent_bayes_pruned`, nothing
is pruned: the slice already lists every tuple with non-floor likelihood. The price is coverage:
a triple never counted in training is never proposed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from sepcore.mixing import mix
from sepcore.models.stacked_prior import StackedPriors
from sepcore.models.transformer import KVCache, reorder_cache_inplace
from sepcore.profiles import ProfileConfig
from sepcore.separation.lass import CountLikelihood
from sepcore.separation.masking import check_output, codes_to_sources, mask_with_waveforms
from sepcore.separation.sampling import select
from sepcore.utils import resolve_device

SAMPLERS = ("greedy", "beam", "ancestral", "top_k", "top_p")


@dataclass
class LASSConfig(ProfileConfig):
    method: str = "beam"
    n_rows: int = 10                    # beams (beam) or candidates (samplers); greedy uses 1
    likelihood_weight: float = 3.0      # lambda: 3.0 audio, 1.0 images (reference code)
    top_k: int = 16
    top_p: float = 0.9
    temperature: float = 1.0
    refine_steps: int = 0               # Eq. 12-13 (500 for images in the reference)
    refine_lr: float = 0.1
    refine_proximity: float = 1e-3
    seed: int = 0
    batched_priors: bool = True         # priors of one architecture as one StackedPriors call per step
    output: str = "raw"                 # raw decodes, or "masked": the mixture masked by them (masking.py)
    mask_power: float = 2.0

    @classmethod
    def images(cls, **overrides):
        return cls(**{"method": "ancestral", "n_rows": 64, "likelihood_weight": 1.0, **overrides})


@dataclass
class SearchResult:
    codes: torch.Tensor       # (M, n_rows, N, S) sequences (the best row: ``score.argmax(1)``)
    score: torch.Tensor       # (M, n_rows) running log posterior score (unnormalised)
    seconds: float


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


@torch.no_grad()
def lass_search(priors, likelihood: CountLikelihood, mix_codes: torch.Tensor, config: LASSConfig,
                generator: torch.Generator | None = None, stacked: StackedPriors | None = None) -> SearchResult:
    """Algorithm 1 for ``mix_codes: (M, S)`` (flattened latent codes of M mixtures), N = ``len(priors)``.

    ``stacked``: the priors as one :class:`StackedPriors` (built here when ``config.batched_priors``
    and not given); the search is the same up to float rounding of the prior log-probabilities.

    Returns :class:`SearchResult` with ``codes: (M, n_rows, N, S)``.
    """
    if config.method not in SAMPLERS:
        raise ValueError(f"LASSConfig.method must be one of {SAMPLERS}, got {config.method!r}")
    N = len(priors)
    if N < 2 or N != likelihood.n_sources:
        raise ValueError(f"LASS takes one prior per source (one may be passed twice): got {N} priors for a "
                         f"{likelihood.n_sources}-source count likelihood")
    started = time.perf_counter()
    device = mix_codes.device
    M, S = mix_codes.shape
    B = 1 if config.method == "greedy" else config.n_rows
    R = M * B
    if config.batched_priors and stacked is None:
        stacked = stack_priors(priors)
    batched = config.batched_priors and stacked is not None
    if batched:
        state = _StackedState(stacked, R, device)
    else:
        states = [_PriorState(p, R, device) for p in priors]
    codes = torch.empty(R, N, S, dtype=torch.long, device=device)
    running = torch.zeros(M, B, device=device)
    if config.method == "beam":
        running[:, 1:] = float("-inf")              # all beams start identical: expand from one
    running = running.reshape(R)
    row_mix = torch.arange(M, device=device).repeat_interleave(B)
    lam = config.likelihood_weight
    for s in range(S):
        if batched:
            log_priors = state.log_probs(codes[:, :, :s])                       # (N, R, K)
        else:
            log_priors = [st.log_probs(codes[:, n, :s]) for n, st in enumerate(states)]
        *slice_codes, ll = likelihood.gather_slices(mix_codes[row_mix, s])   # N x (R, L), (R, L)
        table = lam * ll
        for lp, idx in zip(log_priors, slice_codes):
            table = table + lp.gather(1, idx)                                 # (R, L)
        if config.method == "beam":
            L = table.shape[1]
            total = (running[:, None] + table).reshape(M, B * L)
            chosen = select(total, method="greedy", n=B)                     # (M, B) over beams x tuples
            order = _keep_slots(chosen.indices // L, B).to(device)            # survivors stay in place
            flat = chosen.indices.gather(1, order)
            beam, col = flat // L, (flat % L).reshape(R)
            rows = (torch.arange(M, device=device)[:, None] * B + beam).reshape(R)
            running = chosen.scores.gather(1, order).reshape(R)
            codes = codes[rows]
        else:
            chosen = select(table, method="ancestral" if config.method == "ancestral" else config.method, n=1,
                            top_k=config.top_k, top_p=config.top_p,
                            temperature=1.0 if config.method == "greedy" else config.temperature, generator=generator)
            rows, col = None, chosen.indices[:, 0]
            running = running + table.gather(1, col[:, None])[:, 0]
        source_rows = torch.arange(R, device=device) if rows is None else rows
        step_codes = torch.stack([idx[source_rows, col] for idx in slice_codes])  # (N, R)
        codes[:, :, s] = step_codes.T
        if batched:
            state.advance(step_codes, rows)
        else:
            for st, c in zip(states, step_codes):
                st.advance(c, rows)
    return SearchResult(codes.reshape(M, B, N, S), running.reshape(M, B), time.perf_counter() - started)


def _keep_slots(parent: torch.Tensor, B: int) -> torch.Tensor:
    """``(M, B)`` order of the chosen entries so that entry ``order[m, b]`` has parent ``b`` when possible."""
    order = []
    for row in parent.tolist():
        slots, extra = [-1] * B, []
        for entry, p in enumerate(row):
            if slots[p] < 0:
                slots[p] = entry
            else:
                extra.append(entry)
        empty = [b for b in range(B) if slots[b] < 0]
        for b, entry in zip(empty, extra):
            slots[b] = entry
        order.append(slots)
    return torch.tensor(order, dtype=torch.long)


def refine(vqvae, codes: torch.Tensor, mixture: torch.Tensor, *, steps: int = 500, lr: float = 0.1,
           proximity: float = 1e-3, decay_every: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """Post-inference refinement (paper 004 Eq. 12-13): Adam on the continuous latents.

    ``z_k`` starts at the embeddings ``z0_k = e(codes_k)`` and minimises, per row,
    ``mean (mix(D(z1), D(z2)) - m)^2 + proximity * ||z - z0||^2`` (learning rate halved every
    ``decay_every`` steps, as the reference code).

    Args:
        codes: ``(R, N, *latent)``; mixture: ``(R, *spatial)``.
    Returns:
        ``(sources (R, N, *spatial), mixture error per step (steps + 1,))``.
    """
    R, N = codes.shape[:2]
    latent = codes.shape[2:]
    z0 = vqvae.embed(codes.reshape(R * N, *latent)).detach()
    z = z0.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([z], lr=lr)
    schedule = torch.optim.lr_scheduler.StepLR(optimiser, step_size=decay_every, gamma=0.5)
    target = mixture.reshape(R, -1)
    errors = []
    was_training = vqvae.training
    vqvae.eval()
    for p in vqvae.parameters():
        p.requires_grad_(False)
    try:
        with torch.enable_grad():                  # callers may hold no_grad (LASSSeparator.separate)
            for step in range(steps + 1):
                decoded = vqvae.decode_embeddings(z)
                sources = decoded.reshape(R, N, *decoded.shape[1:])
                err = (mix(sources, dim=1).reshape(R, -1) - target).pow(2).mean(1)        # (R,)
                errors.append(float(err.detach().mean()))
                if step == steps:
                    break
                loss = err.sum() + proximity * (z - z0).pow(2).flatten(1).sum(1).sum()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
    finally:
        for p in vqvae.parameters():
            p.requires_grad_(True)
        vqvae.train(was_training)
    return sources.detach(), torch.tensor(errors)


class LASSSeparator:
    """``separate(mixture (T,)) -> (N, T)`` for audio; ``separate_images(m (M, H, W)) -> (M, N, H, W)``.

    Args:
        vqvae: the (shared) VQ-VAE; priors: N :class:`TransformerPrior` (the same one twice for a
            class-agnostic prior); likelihood: the fitted N-source :class:`CountLikelihood`.
    """

    def __init__(self, vqvae, priors, likelihood: CountLikelihood, config: LASSConfig | None = None, device="auto"):
        self.device = resolve_device(device)
        self.vqvae = vqvae.to(self.device).eval()
        self.priors = [p.to(self.device).eval() for p in priors]
        K = vqvae.config.codebook_size
        if likelihood.K != K or any(p.config.vocab_size != K for p in self.priors):
            raise ValueError(f"codebook sizes differ: VQ-VAE {K}, likelihood {likelihood.K}, priors "
                             f"{[p.config.vocab_size for p in self.priors]}; fit all on the same VQ-VAE")
        if likelihood.n_sources != len(self.priors):
            raise ValueError(f"{len(self.priors)} priors for a {likelihood.n_sources}-source count likelihood; "
                             "pass one prior per source and counts fitted on mixtures of as many sources")
        self.likelihood = likelihood.to(self.device)
        self.remap = likelihood.remap_unseen(vqvae.codebook).to(self.device)
        self.config = config or LASSConfig()
        check_output(self.config.output)
        self.stacked = stack_priors(self.priors)
        self.last: SearchResult | None = None

    def _generator(self):
        return torch.Generator().manual_seed(self.config.seed)

    @torch.no_grad()
    def _codes(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self.likelihood, "bind"):        # a likelihood of the mixture itself: it scores its frames
            return self.likelihood.bind(x)
        return self.remap[self.vqvae.encode(x.to(self.device))]

    @torch.no_grad()
    def separate(self, mixture: torch.Tensor) -> torch.Tensor:
        """``(T,) -> (N, T)``: Algorithm 1 then decoding; the best beam, or the best-scoring sample."""
        T = mixture.shape[-1]
        padded = self.vqvae.pad_to_hop(mixture.reshape(1, -1))
        result = lass_search(self.priors, self.likelihood, self._codes(padded), self.config, self._generator(),
                             self.stacked)
        self.last = result
        best = result.score[0].argmax()
        codes = result.codes[0, best]                                             # (N, S)
        if self.config.refine_steps:
            sources, _ = refine(self.vqvae, codes[None], padded.to(self.device), steps=self.config.refine_steps,
                                lr=self.config.refine_lr, proximity=self.config.refine_proximity)
            sources = sources[0, :, :T].float().cpu()
            if self.config.output == "masked":
                return mask_with_waveforms(mixture.reshape(-1), sources, power=self.config.mask_power)
            return sources
        return codes_to_sources(self.vqvae, codes, mixture.reshape(-1), self.config.output, self.config.mask_power)

    def separate_images(self, mixtures: torch.Tensor, refine_steps: int | None = None) -> torch.Tensor:
        """``(M, H, W)`` or ``(M, 1, H, W)`` -> ``(M, N, H, W)`` in [0, 1].

        Of the ``n_rows`` candidates of each mixture, keeps the one whose decoded mixture is closest
        to ``m`` in L2 (the reference's rule for MNIST), then refines (Eq. 12-13) if asked.
        """
        m = mixtures.reshape(mixtures.shape[0], *mixtures.shape[-2:]).float().to(self.device)
        M = m.shape[0]
        with torch.no_grad():
            latent = self._codes(m)                                                # (M, h, w)
            result = lass_search(self.priors, self.likelihood, latent.flatten(1), self.config, self._generator(),
                                 self.stacked)
            self.last = result
            B = result.codes.shape[1]
            N = result.codes.shape[2]
            flat = result.codes.reshape(M * B * N, *latent.shape[1:])
            decoded = self.vqvae.decode(flat).reshape(M, B, N, *m.shape[1:])
            error = (mix(decoded, dim=2) - m[:, None]).pow(2).flatten(2).sum(-1)  # (M, B)
            best = error.argmin(1)
            chosen = result.codes[torch.arange(M), best].reshape(M, N, *latent.shape[1:])
            sources = decoded[torch.arange(M), best]
        steps = self.config.refine_steps if refine_steps is None else refine_steps
        if steps:
            sources, _ = refine(self.vqvae, chosen, m, steps=steps, lr=self.config.refine_lr,
                                proximity=self.config.refine_proximity)
        return sources.clamp(0, 1).cpu()


def kv_cache_bytes(cache: KVCache | None) -> int:
    return 0 if cache is None else cache.keys.numel() * cache.keys.element_size() * 2
