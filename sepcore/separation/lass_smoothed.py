"""A smoothed count likelihood: raw ratios back off to the codec's geometry (our extension).

Paper 004's likelihood is the raw ratio ``C[i, j, k] / C[i, j]`` (Eq. 10). On a few million
positions it leaves true triples unseen (so unreachable: they get the floor ``1e-16``) and makes
rare pairs look certain (a pair seen once has ``p = 1`` for its one mixture code). Here each pair
backs off to a kernel in the codebook, the latent likelihood of paper 003 (Eq. 6) made a
distribution over mixture codes::

    q(k | i, j) = softmax_k( -|| e_k - w (e_i + e_j) ||^2 / (2 sigma^2) ),
    p(k | i, j) = (C[i, j, k] + beta q(k | i, j)) / (C[i, j] + beta),

``w`` the mixing weight. A pair seen often keeps its ratio; a rare or unseen pair gets the
kernel's mass, so the search may propose pairs beyond the counted ones. ``beta`` (pseudo-counts)
and ``sigma`` are chosen on validation triples (the held-out log-likelihood,
:func:`fit_smoothing`), never on test data.

Inference (:func:`sepcore.separation.lass_search.lass_search`) needs only
``gather_slices(k) -> (i, j, log_p)``; the slice of ``k`` here holds its ``top_pairs`` most
likely pairs under the smoothed table (all ``K^2`` when ``top_pairs`` is ``None``). The dense
``(K, K, K)`` table is built at load time from the sparse counts (``K = 256``: 64 MB float32).

For ``N >= 3`` sources the same back-off, ``q`` centred on ``w (e_{i_1} + ... + e_{i_N})``, is kept
only for the tuples that were counted (:class:`SparseSmoothedCountLikelihood`, ``(tuples, K)``
float32; :func:`fit_sparse_smoothing` scores validation rows without a dense table):
``K^(N+1)`` cells (``4.3e9`` for ``K = 256``, ``N = 3``) do not fit. :func:`smoothed_likelihood`
picks the one for a count table.
"""

from __future__ import annotations

import math

import torch

from sepcore.mixing import mixing_weight
from sepcore.separation.lass import CountLikelihood


def kernel_log_q(codebook: torch.Tensor, sigma: float, chunk: int = 32) -> torch.Tensor:
    """``log q(k | i, j)`` as ``(K, K, K)`` indexed ``[i, j, k]`` (float32)."""
    e = codebook.detach().float().cpu()
    K = e.shape[0]
    w = mixing_weight(2)
    e2 = e.pow(2).sum(1)
    out = torch.empty(K, K, K)
    for start in range(0, K, chunk):
        mean = w * (e[start:start + chunk, None, :] + e[None, :, :])                    # (c, K, D)
        d2 = mean.pow(2).sum(-1, keepdim=True) - 2 * mean @ e.T + e2                      # (c, K, K)
        out[start:start + chunk] = (-d2.clamp_min(0) / (2 * sigma**2)).log_softmax(-1)
    return out


def dense_counts(likelihood: CountLikelihood) -> torch.Tensor:
    """The symmetric counts as a dense ``(K, K, K)`` float32 tensor indexed ``[i, j, k]``."""
    if likelihood.n_sources != 2:
        raise ValueError("the smoothed likelihood is built for two sources")
    K = likelihood.K
    i, j = likelihood.source_codes(likelihood.tuples)
    k = likelihood.mixture_codes()
    dense = torch.zeros(K * K * K)
    dense.index_add_(0, (i * K + j) * K + k, likelihood.counts.float())
    return dense.reshape(K, K, K)


def smoothed_log_table(counts: torch.Tensor, log_q: torch.Tensor, beta: float) -> torch.Tensor:
    """``log p(k | i, j)`` ``(K, K, K)`` from dense counts and the kernel (module docstring)."""
    totals = counts.sum(-1, keepdim=True)
    return torch.logaddexp(counts.log(), math.log(beta) + log_q) - torch.log(totals + beta)


def codebook_unit(codebook: torch.Tensor) -> float:
    """The median nearest-neighbour distance between codebook vectors: the unit of the kernel's ``sigma`` grid."""
    d = torch.cdist(codebook, codebook)
    d.fill_diagonal_(float("inf"))
    return float(d.min(1).values.median())


def fit_smoothing(likelihood: CountLikelihood, codebook: torch.Tensor, triples: torch.Tensor,
                  betas=(0.01, 0.1, 1.0, 10.0), sigma_scales=(0.25, 0.5, 1.0, 2.0, 4.0)) -> tuple[dict, list[dict]]:
    """Grid search of ``(beta, sigma)`` on validation ``triples`` (rows ``(i_1, ..., i_N, k)``, any
    ``N``); ``sigma`` in units of the codebook's median nearest-neighbour distance. Returns the best
    setting and every row of the grid (with the raw ratios' held-out log-likelihood, floor included,
    as the ``beta = 0`` row). The rows are scored directly (:func:`fit_sparse_smoothing`), which for
    two sources gives the dense table's values without building it."""
    return fit_sparse_smoothing(likelihood, codebook, triples, betas, sigma_scales)


class _BackedOff:
    """What both smoothed likelihoods share: the raw table's size, and no unseen mixture code (the
    kernel gives every code mass, so the search needs no remapping)."""

    binds_mixture = False       # scores codes of the mixture

    counts: CountLikelihood
    K: int

    @property
    def density(self) -> float:
        return self.counts.density

    @property
    def nnz(self) -> int:
        return self.counts.nnz

    def remap_unseen(self, codebook: torch.Tensor) -> torch.Tensor:
        return torch.arange(self.K)


class SmoothedCountLikelihood(_BackedOff):
    """Two-source ``log p(k | i, j)`` with back-off, in the interface of :class:`CountLikelihood` that
    the search uses (``K``, ``n_sources``, ``gather_slices``, ``log_prob``, ``remap_unseen``, ``to``)."""

    n_sources = 2

    def __init__(self, counts: CountLikelihood, codebook: torch.Tensor, beta: float, sigma: float,
                 top_pairs: int | None = 8192):
        self.counts, self.beta, self.sigma = counts, float(beta), float(sigma)
        self.K = counts.K
        table = smoothed_log_table(dense_counts(counts), kernel_log_q(codebook, sigma), beta)    # [i, j, k]
        self.table = table                                                                       # for log_prob
        by_k = table.permute(2, 0, 1).reshape(self.K, self.K * self.K)                           # [k, i K + j]
        L = by_k.shape[1] if top_pairs is None else min(int(top_pairs), by_k.shape[1])
        self.slice_log_p, pairs = by_k.topk(L, dim=1)                                             # (K, L)
        self.slice_i, self.slice_j = pairs // self.K, pairs % self.K          # split once, not at every step
        self.top_pairs = L
        self.n_positions = counts.n_positions

    def gather_slices(self, k: torch.Tensor):
        return self.slice_i[k], self.slice_j[k], self.slice_log_p[k]

    def log_prob(self, i: torch.Tensor, j: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return self.table.to(k.device)[i.long(), j.long(), k.long()]

    def to(self, device) -> SmoothedCountLikelihood:
        self.slice_log_p, self.slice_i, self.slice_j = (t.to(device) for t in (self.slice_log_p, self.slice_i, self.slice_j))
        return self


# ----------------------------------------------------------------------------- N sources, sparse
def tuple_kernel_log_q(codebook: torch.Tensor, codes: list[torch.Tensor], sigma: float, chunk: int = 16384) -> torch.Tensor:
    """``log q(k | i_1, ..., i_N)`` ``(n, K)`` for ``n`` source tuples given as ``N`` code tensors ``(n,)``:
    the kernel of the module docstring around ``w (e_{i_1} + ... + e_{i_N})``, ``w`` the mixing
    weight of ``N`` sources."""
    e = codebook.detach().float().cpu()
    w = mixing_weight(len(codes))
    e2 = e.pow(2).sum(1)
    n = codes[0].numel()
    out = torch.empty(n, e.shape[0])
    for start in range(0, n, chunk):
        mean = w * sum(e[c[start:start + chunk].long().cpu()] for c in codes)                    # (c, D)
        d2 = mean.pow(2).sum(-1, keepdim=True) - 2 * mean @ e.T + e2                            # (c, K)
        out[start:start + chunk] = (-d2.clamp_min(0) / (2 * sigma**2)).log_softmax(-1)
    return out


def _seen_counts(likelihood: CountLikelihood, tuples: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(C[t, k], C[t])`` for source tuples ``t`` (row-major indices ``(n,)``) and mixture codes ``k (n,)``."""
    K, N = likelihood.K, likelihood.n_sources
    stored = likelihood.mixture_codes() * K**N + likelihood.tuples                  # ascending
    key = k.long() * K**N + tuples
    pos = torch.searchsorted(stored, key).clamp(max=likelihood.nnz - 1)
    entry = torch.where(stored[pos] == key, likelihood.counts[pos], torch.zeros_like(key)).double()
    contexts, inverse = torch.unique(likelihood.tuples, return_inverse=True)
    totals = torch.zeros(contexts.numel(), dtype=torch.long).index_add_(0, inverse, likelihood.counts)
    at = torch.searchsorted(contexts, tuples).clamp(max=contexts.numel() - 1)
    total = torch.where(contexts[at] == tuples, totals[at], torch.zeros_like(tuples)).double()
    return entry, total


def fit_sparse_smoothing(likelihood: CountLikelihood, codebook: torch.Tensor, rows: torch.Tensor,
                         betas=(0.01, 0.1, 1.0, 10.0), sigma_scales=(0.25, 0.5, 1.0, 2.0, 4.0)) -> tuple[dict, list[dict]]:
    """The grid search of :func:`fit_smoothing`, for ``N`` sources, without a dense table: validation ``rows (n, N + 1)``
    (the source codes, then the mixture code) are scored directly, ``p = (C[t, k] + beta q(k | t)) /
    (C[t] + beta)``, which is ``q(k | t)`` for a tuple never counted."""
    N = likelihood.n_sources
    codes = [rows[:, n].long() for n in range(N)]
    tuples = torch.zeros_like(codes[0])
    for c in codes:
        tuples = tuples * likelihood.K + c
    k = rows[:, N].long()
    entry, total = _seen_counts(likelihood, tuples, k)
    e = codebook.detach().float().cpu()
    unit = codebook_unit(e)
    raw = torch.where(entry > 0, (entry / total.clamp_min(1)).log(), torch.tensor(math.log(1e-16), dtype=torch.double))
    rows_out = [{"beta": 0.0, "sigma": float("nan"), "held_out_nats": float(raw.mean()),
                 "unseen_percent": 100.0 * float((entry == 0).double().mean())}]
    for scale in sigma_scales:
        log_q = tuple_kernel_log_q(e, codes, scale * unit).gather(1, k[:, None]).squeeze(1).double()
        for beta in betas:
            log_p = torch.logaddexp(entry.log(), math.log(beta) + log_q) - torch.log(total + beta)
            rows_out.append({"beta": beta, "sigma": scale * unit, "held_out_nats": float(log_p.mean()),
                             "unseen_percent": rows_out[0]["unseen_percent"]})
    best = max(rows_out[1:], key=lambda r: r["held_out_nats"])
    return {"beta": best["beta"], "sigma": best["sigma"]}, rows_out


class SparseSmoothedCountLikelihood(_BackedOff):
    """``log p(k | i_1, ..., i_N)`` with the back-off of the module docstring for any ``N``, stored
    only for the source tuples that were counted (``K^(N+1)`` cells do not fit for ``N = 3``).

    Every counted tuple gets mass on every mixture code (its ratio, backed off to the kernel), so the
    search may propose a tuple with a mixture code it was never counted with; a tuple never counted
    is scored by the kernel alone (:meth:`log_prob`) but never proposed. The slice of ``k`` holds
    its ``top_tuples`` most likely counted tuples. Memory: ``(tuples, K)`` float32.
    """

    def __init__(self, counts: CountLikelihood, codebook: torch.Tensor, beta: float, sigma: float,
                 top_tuples: int | None = 8192):
        self.counts, self.beta, self.sigma = counts, float(beta), float(sigma)
        self.K, self.n_sources, self.n_positions = counts.K, counts.n_sources, counts.n_positions
        self.codebook = codebook.detach().float().cpu()
        contexts, inverse = torch.unique(counts.tuples, return_inverse=True)
        dense = torch.zeros(contexts.numel(), self.K)
        dense.index_put_((inverse, counts.mixture_codes()), counts.counts.float(), accumulate=True)
        log_q = tuple_kernel_log_q(self.codebook, counts.source_codes(contexts), self.sigma)
        totals = dense.sum(1, keepdim=True)
        table = torch.logaddexp(dense.log(), math.log(self.beta) + log_q) - torch.log(totals + self.beta)
        del dense, log_q
        self.contexts, self.table = contexts, table                                       # (C,), (C, K)
        L = contexts.numel() if top_tuples is None else min(int(top_tuples), contexts.numel())
        self.slice_log_p, index = table.T.topk(L, dim=1)                                  # (K, L)
        self.slice_tuples = contexts[index]
        self.top_tuples = L

    def gather_slices(self, k: torch.Tensor):
        return (*self.counts.source_codes(self.slice_tuples[k]), self.slice_log_p[k])

    def log_prob(self, *codes: torch.Tensor) -> torch.Tensor:
        """``log p(k | i_1..i_N)`` for ``codes = (i_1, ..., i_N, k)`` of one shape."""
        if len(codes) != self.n_sources + 1:
            raise ValueError(f"log_prob takes {self.n_sources} source code tensors and the mixture codes")
        *sources, k = (c.long().reshape(-1).cpu() for c in codes)
        tuples = torch.zeros_like(k)
        for c in sources:
            tuples = tuples * self.K + c
        at = torch.searchsorted(self.contexts, tuples).clamp(max=self.contexts.numel() - 1)
        seen = self.contexts[at] == tuples
        out = tuple_kernel_log_q(self.codebook, sources, self.sigma).gather(1, k[:, None]).squeeze(1)
        out[seen] = self.table[at[seen], k[seen]]
        return out.reshape(codes[0].shape).to(codes[0].device)

    def to(self, device) -> SparseSmoothedCountLikelihood:
        self.slice_log_p, self.slice_tuples = self.slice_log_p.to(device), self.slice_tuples.to(device)
        return self


def smoothed_likelihood(counts: CountLikelihood, codebook: torch.Tensor, beta: float, sigma: float, **kwargs):
    """The smoothed likelihood of ``counts``: the dense table for two sources
    (:class:`SmoothedCountLikelihood`), the sparse one beyond (:class:`SparseSmoothedCountLikelihood`)."""
    if counts.n_sources == 2:
        return SmoothedCountLikelihood(counts, codebook, beta, sigma, **kwargs)
    return SparseSmoothedCountLikelihood(counts, codebook, beta, sigma, **kwargs)
