"""A smoothed count likelihood for two sources: raw ratios back off to the codec's geometry (our extension).

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


def held_out_log_likelihood(table: torch.Tensor, triples: torch.Tensor) -> float:
    """Mean ``log p(k | i, j)`` (nats per position) of validation ``triples (n, 3)`` = ``(i, j, k)``."""
    return float(table[triples[:, 0], triples[:, 1], triples[:, 2]].mean())


def fit_smoothing(likelihood: CountLikelihood, codebook: torch.Tensor, triples: torch.Tensor,
                  betas=(0.01, 0.1, 1.0, 10.0), sigma_scales=(0.25, 0.5, 1.0, 2.0, 4.0)) -> tuple[dict, list[dict]]:
    """Grid search of ``(beta, sigma)`` on validation ``triples``; ``sigma`` in units of the codebook's
    median nearest-neighbour distance. Returns the best setting and every row of the grid (with the
    raw ratios' held-out log-likelihood, floor included, as the ``beta = 0`` row)."""
    counts = dense_counts(likelihood)
    e = codebook.detach().float().cpu()
    d = torch.cdist(e, e)
    d.fill_diagonal_(float("inf"))
    unit = float(d.min(1).values.median())
    rows = []
    raw = torch.where(counts > 0, (counts / counts.sum(-1, keepdim=True).clamp_min(1)).log(), torch.tensor(math.log(1e-16)))
    rows.append({"beta": 0.0, "sigma": float("nan"), "held_out_nats": held_out_log_likelihood(raw, triples),
                 "unseen_percent": 100.0 * float((counts[triples[:, 0], triples[:, 1], triples[:, 2]] == 0).float().mean())})
    for scale in sigma_scales:
        log_q = kernel_log_q(e, scale * unit)
        for beta in betas:
            table = smoothed_log_table(counts, log_q, beta)
            rows.append({"beta": beta, "sigma": scale * unit, "held_out_nats": held_out_log_likelihood(table, triples),
                         "unseen_percent": rows[0]["unseen_percent"]})
    best = max(rows[1:], key=lambda r: r["held_out_nats"])
    return {"beta": best["beta"], "sigma": best["sigma"]}, rows


class SmoothedCountLikelihood:
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
        self.slice_log_p, self.slice_pairs = by_k.topk(L, dim=1)                                  # (K, L)
        self.top_pairs = L
        self.n_positions = counts.n_positions

    @property
    def density(self) -> float:
        return self.counts.density

    @property
    def nnz(self) -> int:
        return self.counts.nnz

    def gather_slices(self, k: torch.Tensor):
        pairs = self.slice_pairs[k]
        return pairs // self.K, pairs % self.K, self.slice_log_p[k]

    def log_prob(self, i: torch.Tensor, j: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return self.table.to(k.device)[i.long(), j.long(), k.long()]

    def remap_unseen(self, codebook: torch.Tensor) -> torch.Tensor:
        return torch.arange(self.K)

    def to(self, device) -> SmoothedCountLikelihood:
        self.slice_log_p, self.slice_pairs = self.slice_log_p.to(device), self.slice_pairs.to(device)
        return self
