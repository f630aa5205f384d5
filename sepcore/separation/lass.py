"""LASS: latent autoregressive source separation with a discrete count likelihood (paper 004).

The likelihood (Eq. 7-11). Over training pairs ``(x1, x2)`` with mixture ``m = mix(x1, x2)``
(:mod:`sepcore.mixing`), the codes ``i = z1_s, j = z2_s, k = m_s`` of every latent position are
counted, in both orders (Eq. 8-9: the sum is commutative)::

    C[i, j, k] += 1,   C[j, i, k] += 1,      p(m_s = k | i, j) = C[i, j, k] / sum_k' C[i, j, k'].

The counting is one vectorised sparse bincount (``torch.unique(..., return_counts=True)`` over the
flat keys ``(i K + j) K + k`` of both orders, so repeated triples are all counted). The tensor is
stored sparse, sorted by the mixture code ``k`` (a CSR over ``k``): for each ``k`` the non-zero
pairs ``i K + j`` and their ``log p(k | i, j)`` -- exactly the slice Eq. 11 needs at inference.
Unseen triples get the floor ``log 1e-16`` (the reference code's value) when looked up with
:meth:`CountLikelihood.log_prob`; inference scores only the non-zero pairs of the slice (a pair
outside it has likelihood 1e-16, i.e. it is never chosen next to a seen pair). A mixture code never
seen in training has an empty slice: :meth:`CountLikelihood.remap_unseen` maps it to the nearest
seen code in the codebook.

Inference (Algorithm 1) and refinement (Eq. 12-13) are in :mod:`sepcore.separation.lass_search`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

LOG_FLOOR = math.log(1e-16)           # log-likelihood of an unseen (i, j, k), as the reference code


@dataclass
class CountLikelihood:
    """Sparse ``log p(k | i, j)`` (paper 004 Eq. 10), stored as a CSR over the mixture code ``k``.

    Attributes:
        K: codebook size.
        k_ptr: ``(K + 1,)`` long; the entries of mixture code ``k`` are ``[k_ptr[k], k_ptr[k+1])``.
        pairs: ``(nnz,)`` long, ``i * K + j`` of each entry.
        log_p: ``(nnz,)`` float, ``log p(k | i, j)``.
        counts: ``(nnz,)`` long, the symmetric counts ``C[i, j, k]``.
        n_positions: latent positions counted (each contributes two entries, (i,j,k) and (j,i,k)).
    """

    K: int
    k_ptr: torch.Tensor
    pairs: torch.Tensor
    log_p: torch.Tensor
    counts: torch.Tensor
    n_positions: int = 0

    # ------------------------------------------------------------------ construction
    @staticmethod
    def count(i: torch.Tensor, j: torch.Tensor, k: torch.Tensor, K: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Symmetric sparse bincount (Eq. 8-9): ``(keys, counts)``, keys ``(i K + j) K + k`` sorted.

        ``i, j, k``: codes of any equal shape (flattened). Every position adds one to ``(i, j, k)``
        and one to ``(j, i, k)`` (so ``i == j`` adds two to the same key).
        """
        i, j, k = (t.reshape(-1).long() for t in (i, j, k))
        if not (i.shape == j.shape == k.shape):
            raise ValueError(f"code tensors must have equal sizes, got {i.shape}, {j.shape}, {k.shape}")
        keys = torch.cat([(i * K + j) * K + k, (j * K + i) * K + k])
        return torch.unique(keys, return_counts=True)

    @classmethod
    def from_counts(cls, keys: torch.Tensor, counts: torch.Tensor, K: int, n_positions: int = 0) -> CountLikelihood:
        """Normalise per ``(i, j)`` (Eq. 10) and sort into the CSR over ``k``."""
        pair, k = keys // K, keys % K
        _, inverse = torch.unique(pair, return_inverse=True)
        totals = torch.zeros(int(inverse.max()) + 1 if inverse.numel() else 0, dtype=torch.long).index_add_(0, inverse, counts)
        log_p = counts.double().log() - totals[inverse].double().log()
        order = torch.argsort(k * K * K + pair)                     # by k, then by pair
        k_sorted = k[order]
        k_ptr = torch.zeros(K + 1, dtype=torch.long)
        k_ptr[1:] = torch.bincount(k_sorted, minlength=K).cumsum(0)
        return cls(K, k_ptr, pair[order], log_p[order].float(), counts[order], n_positions)

    @classmethod
    def fit(cls, code_batches, K: int) -> CountLikelihood:
        """Count over an iterable of ``(codes1, codes2, codes_mix)`` batches of equal shapes.

        Partial counts are merged with a second sparse bincount, so batches can be streamed.
        """
        all_keys, all_counts, n_positions = [], [], 0
        for c1, c2, cm in code_batches:
            keys, counts = cls.count(c1, c2, cm, K)
            all_keys.append(keys)
            all_counts.append(counts)
            n_positions += c1.numel()
        if not all_keys:
            raise ValueError("CountLikelihood.fit got no code batches; pass (codes1, codes2, codes_mix) tuples")
        keys, inverse = torch.unique(torch.cat(all_keys), return_inverse=True)
        counts = torch.zeros(keys.shape[0], dtype=torch.long).index_add_(0, inverse, torch.cat(all_counts))
        return cls.from_counts(keys, counts, K, n_positions)

    # ------------------------------------------------------------------ queries
    @property
    def nnz(self) -> int:
        return int(self.pairs.numel())

    @property
    def density(self) -> float:
        """Percentage of non-zero entries of the ``K x K x K`` tensor (paper 004 Table 1)."""
        return 100.0 * self.nnz / self.K**3

    def mixture_codes(self) -> torch.Tensor:
        """``(nnz,)`` the ``k`` of each stored entry."""
        return torch.repeat_interleave(torch.arange(self.K), self.k_ptr.diff())

    def to_sparse(self) -> torch.Tensor:
        """The tensor ``log p(k | i, j)`` as a torch sparse COO tensor ``(K, K, K)`` indexed ``[i, j, k]``."""
        index = torch.stack([self.pairs // self.K, self.pairs % self.K, self.mixture_codes()])
        return torch.sparse_coo_tensor(index, self.log_p, (self.K,) * 3, check_invariants=False).coalesce()

    def log_prob(self, i: torch.Tensor, j: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """``log p(k | i, j)`` for code tensors of one shape; ``LOG_FLOOR`` where unseen."""
        K = self.K
        key = (k.long() * K * K + i.long() * K + j.long()).reshape(-1)
        stored = self.mixture_codes() * K * K + self.pairs                # sorted ascending
        pos = torch.searchsorted(stored, key).clamp(max=max(self.nnz - 1, 0))
        found = stored[pos] == key if self.nnz else torch.zeros_like(key, dtype=torch.bool)
        out = torch.where(found, self.log_p[pos] if self.nnz else key.float(), torch.tensor(LOG_FLOOR))
        return out.reshape(i.shape)

    def slice(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Eq. 11 for one mixture code: ``(i, j, log p(k | i, j))`` over its non-zero pairs."""
        a, b = int(self.k_ptr[k]), int(self.k_ptr[k + 1])
        pair = self.pairs[a:b]
        return pair // self.K, pair % self.K, self.log_p[a:b]

    def gather_slices(self, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Padded slices for a batch of mixture codes ``k: (R,)``.

        Returns ``i, j: (R, L)`` long and ``log_p: (R, L)`` with ``-inf`` on padding, ``L`` the
        longest slice among the rows. Codes with empty slices must be remapped first.
        """
        start = self.k_ptr[k]
        length = self.k_ptr[k + 1] - start
        if bool((length == 0).any()):
            raise ValueError("a mixture code has an empty likelihood slice; map codes with remap_unseen() first")
        L = int(length.max())
        ar = torch.arange(L, device=k.device)
        idx = (start[:, None] + ar).clamp(max=self.nnz - 1)
        valid = ar[None] < length[:, None]
        pair = self.pairs[idx]
        log_p = self.log_p[idx].masked_fill(~valid, float("-inf"))
        return pair // self.K, pair % self.K, log_p

    def remap_unseen(self, codebook: torch.Tensor) -> torch.Tensor:
        """``(K,)`` map: ``k`` itself when seen as a mixture code, else the nearest seen code (L2 in the codebook)."""
        seen = self.k_ptr.diff() > 0
        if not bool(seen.any()):
            raise ValueError("the count likelihood is empty; fit it on training codes first")
        e = codebook.detach().float().cpu()
        d2 = torch.cdist(e, e[seen])
        seen_codes = torch.nonzero(seen).squeeze(1)
        return torch.where(seen, torch.arange(self.K), seen_codes[d2.argmin(1)])

    def to(self, device) -> CountLikelihood:
        return CountLikelihood(self.K, self.k_ptr.to(device), self.pairs.to(device), self.log_p.to(device),
                               self.counts.to(device), self.n_positions)

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict:
        return {"K": self.K, "k_ptr": self.k_ptr.cpu(), "pairs": self.pairs.cpu().int(), "log_p": self.log_p.cpu(),
                "counts": self.counts.cpu().int(), "n_positions": self.n_positions}

    @classmethod
    def from_state_dict(cls, state: dict) -> CountLikelihood:
        return cls(state["K"], state["k_ptr"].long(), state["pairs"].long(), state["log_p"].float(),
                   state["counts"].long(), state.get("n_positions", 0))


@torch.no_grad()
def fit_count_likelihood(vqvae, sources_a: torch.Tensor, sources_b: torch.Tensor, *, batch: int = 256,
                         mixing: str | None = None) -> CountLikelihood:
    """Encode pairs ``(x1, x2)`` and ``mix(x1, x2)`` with ``vqvae`` and count (Eq. 8-10).

    Args:
        sources_a, sources_b: ``(N, *spatial)`` paired training chunks (audio ``(N, time)`` or
            images ``(N, H, W)`` / ``(N, 1, H, W)``).
    """
    from sepcore.mixing import mix

    if sources_a.shape != sources_b.shape:
        raise ValueError(f"paired sources must have equal shapes, got {tuple(sources_a.shape)} and {tuple(sources_b.shape)}")
    device = vqvae.codebook.device

    def batches():
        for start in range(0, sources_a.shape[0], batch):
            x1 = sources_a[start:start + batch].to(device)
            x2 = sources_b[start:start + batch].to(device)
            m = mix(torch.stack([x1, x2], 1), mixing, dim=1)
            yield vqvae.encode(x1).cpu(), vqvae.encode(x2).cpu(), vqvae.encode(m).cpu()

    return CountLikelihood.fit(batches(), vqvae.config.codebook_size)
