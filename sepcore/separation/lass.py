"""LASS: latent autoregressive source separation with a discrete count likelihood (paper 004).

The likelihood (Eq. 7-11). Over training pairs ``(x1, x2)`` with mixture ``m = mix(x1, x2)``
(:mod:`sepcore.mixing`), the codes ``i = z1_s, j = z2_s, k = m_s`` of every latent position are
counted, in both orders (Eq. 8-9: the sum is commutative)::

    C[i, j, k] += 1,   C[j, i, k] += 1,      p(m_s = k | i, j) = C[i, j, k] / sum_k' C[i, j, k'].

The counting is one vectorised sparse bincount (``torch.unique(..., return_counts=True)`` over the
flat keys ``(i K + j) K + k`` of both orders, so repeated triples are all counted). The tensor is
stored sparse, sorted by the mixture code ``k`` (a CSR over ``k``): for each ``k`` the non-zero
source tuples ``i K + j`` and their ``log p(k | i, j)`` -- exactly the slice Eq. 11 needs at
inference. Unseen triples get the floor ``log 1e-16`` (the reference code's value) when looked up
with :meth:`CountLikelihood.log_prob`; inference scores only the non-zero tuples of the slice (a
tuple outside it has likelihood 1e-16, i.e. it is never chosen next to a seen one). A mixture code
never seen in training has an empty slice: :meth:`CountLikelihood.remap_unseen` maps it to the
nearest seen code in the codebook.

N sources (our extension; paper 004 has N = 2). The same construction on N-source training
mixtures: keys ``((i_1 K + i_2) K + ... + i_N) K + k``, counted once for each of the ``N!`` orders
of the source codes, normalised per tuple ``(i_1, ..., i_N)``. The dense tensor has ``K^(N+1)``
cells, but the stored entries are at most ``N!`` per counted latent position, and the slice of a
mixture code holds only the tuples seen with it; inference over that slice is Algorithm 1
unchanged (:func:`sepcore.separation.lass_search.lass_search` takes N priors).

Inference (Algorithm 1) and refinement (Eq. 12-13) are in :mod:`sepcore.separation.lass_search`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

LOG_FLOOR = math.log(1e-16)           # log-likelihood of an unseen (i, j, k), as the reference code


@dataclass
class CountLikelihood:
    """Sparse ``log p(k | i_1, ..., i_N)`` (paper 004 Eq. 10), stored as a CSR over the mixture code ``k``.

    Attributes:
        K: codebook size.
        k_ptr: ``(K + 1,)`` long; the entries of mixture code ``k`` are ``[k_ptr[k], k_ptr[k+1])``.
        tuples: ``(nnz,)`` long, the source codes of each entry as one row-major index
            ``(i_1 K + i_2) K + ...`` (``i K + j`` for two sources).
        log_p: ``(nnz,)`` float, ``log p(k | i_1, ..., i_N)``.
        counts: ``(nnz,)`` long, the symmetric counts ``C[i_1, ..., i_N, k]``.
        n_positions: latent positions counted (each contributes ``N!`` entries, one per order).
        n_sources: ``N``.
    """

    binds_mixture = False       # scores codes of the mixture (see MagnitudeLikelihood.bind for the other kind)

    K: int
    k_ptr: torch.Tensor
    tuples: torch.Tensor
    log_p: torch.Tensor
    counts: torch.Tensor
    n_positions: int = 0
    n_sources: int = 2

    # ------------------------------------------------------------------ construction
    @staticmethod
    def count(*codes: torch.Tensor, K: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Symmetric sparse bincount (Eq. 8-9): ``(keys, counts)``, keys ``(tuple) K + k`` sorted.

        ``codes``: the N source codes then the mixture codes, tensors of one shape (flattened).
        Every position adds one to the key of each of the ``N!`` orders of its source codes (so
        ``i == j`` adds two to the same key for N = 2).
        """
        if len(codes) < 3:
            raise ValueError(f"count takes at least two source code tensors and the mixture codes, got {len(codes)}")
        flat = [t.reshape(-1).long() for t in codes]
        if len({t.shape for t in flat}) != 1:
            raise ValueError(f"code tensors must have equal sizes, got {[tuple(t.shape) for t in codes]}")
        *sources, k = flat
        keys = []
        for order in itertools.permutations(range(len(sources))):
            key = torch.zeros_like(k)
            for n in order:
                key = key * K + sources[n]
            keys.append(key * K + k)
        return torch.unique(torch.cat(keys), return_counts=True)

    @classmethod
    def from_counts(cls, keys: torch.Tensor, counts: torch.Tensor, K: int, n_positions: int = 0,
                    n_sources: int = 2) -> CountLikelihood:
        """Normalise per source tuple (Eq. 10) and sort into the CSR over ``k``."""
        tuple_, k = keys // K, keys % K
        _, inverse = torch.unique(tuple_, return_inverse=True)
        totals = torch.zeros(int(inverse.max()) + 1 if inverse.numel() else 0, dtype=torch.long).index_add_(0, inverse, counts)
        log_p = counts.double().log() - totals[inverse].double().log()
        order = torch.argsort(k * K**n_sources + tuple_)               # by k, then by tuple
        k_ptr = torch.zeros(K + 1, dtype=torch.long)
        k_ptr[1:] = torch.bincount(k[order], minlength=K).cumsum(0)
        return cls(K, k_ptr, tuple_[order], log_p[order].float(), counts[order], n_positions, n_sources)

    @classmethod
    def fit(cls, code_batches, K: int) -> CountLikelihood:
        """Count over an iterable of ``(codes_1, ..., codes_N, codes_mix)`` batches of equal shapes.

        Partial counts are merged with a second sparse bincount, so batches can be streamed.
        """
        all_keys, all_counts, n_positions, n_sources = [], [], 0, None
        for batch in code_batches:
            if n_sources is not None and len(batch) - 1 != n_sources:
                raise ValueError(f"every batch needs {n_sources} source code tensors and the mixture codes")
            n_sources = len(batch) - 1
            keys, counts = cls.count(*batch, K=K)
            all_keys.append(keys)
            all_counts.append(counts)
            n_positions += batch[0].numel()
        if not all_keys:
            raise ValueError("CountLikelihood.fit got no code batches; pass (codes_1, ..., codes_N, codes_mix) tuples")
        keys, inverse = torch.unique(torch.cat(all_keys), return_inverse=True)
        counts = torch.zeros(keys.shape[0], dtype=torch.long).index_add_(0, inverse, torch.cat(all_counts))
        return cls.from_counts(keys, counts, K, n_positions, n_sources)

    # ------------------------------------------------------------------ queries
    @property
    def nnz(self) -> int:
        return int(self.tuples.numel())

    @property
    def density(self) -> float:
        """Percentage of non-zero entries of the ``K^(N+1)`` tensor (paper 004 Table 1)."""
        return 100.0 * self.nnz / self.K ** (self.n_sources + 1)

    def source_codes(self, tuples: torch.Tensor) -> list[torch.Tensor]:
        """The row-major tuple index -> ``[i_1, ..., i_N]``, tensors of ``tuples``' shape."""
        out = []
        for _ in range(self.n_sources):
            out.append(tuples % self.K)
            tuples = tuples // self.K
        return out[::-1]

    def mixture_codes(self) -> torch.Tensor:
        """``(nnz,)`` the ``k`` of each stored entry."""
        return torch.repeat_interleave(torch.arange(self.K), self.k_ptr.diff())

    def to_sparse(self) -> torch.Tensor:
        """``log p(k | i_1..i_N)`` as a torch sparse COO tensor ``(K,) * (N + 1)`` indexed ``[i_1, ..., i_N, k]``."""
        index = torch.stack([*self.source_codes(self.tuples), self.mixture_codes()])
        return torch.sparse_coo_tensor(index, self.log_p, (self.K,) * (self.n_sources + 1),
                                       check_invariants=False).coalesce()

    def log_prob(self, *codes: torch.Tensor) -> torch.Tensor:
        """``log p(k | i_1, ..., i_N)`` for ``codes = (i_1, ..., i_N, k)`` of one shape; ``LOG_FLOOR`` where unseen."""
        if len(codes) != self.n_sources + 1:
            raise ValueError(f"log_prob takes {self.n_sources} source code tensors and the mixture codes")
        *sources, k = (c.long() for c in codes)
        key = k
        for c in sources:
            key = key * self.K + c
        key = key.reshape(-1)
        stored = self.mixture_codes() * self.K**self.n_sources + self.tuples   # sorted ascending
        pos = torch.searchsorted(stored, key).clamp(max=max(self.nnz - 1, 0))
        found = stored[pos] == key if self.nnz else torch.zeros_like(key, dtype=torch.bool)
        out = torch.where(found, self.log_p[pos] if self.nnz else key.float(), torch.tensor(LOG_FLOOR))
        return out.reshape(codes[0].shape)

    def slice(self, k: int) -> tuple[torch.Tensor, ...]:
        """Eq. 11 for one mixture code: ``(i_1, ..., i_N, log p(k | i_1..i_N))`` over its non-zero tuples."""
        a, b = int(self.k_ptr[k]), int(self.k_ptr[k + 1])
        return (*self.source_codes(self.tuples[a:b]), self.log_p[a:b])

    def gather_slices(self, k: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Padded slices for a batch of mixture codes ``k: (R,)``.

        Returns ``i_1, ..., i_N: (R, L)`` long and ``log_p: (R, L)`` with ``-inf`` on padding,
        ``L`` the longest slice among the rows. Codes with empty slices must be remapped first.
        """
        start = self.k_ptr[k]
        length = self.k_ptr[k + 1] - start
        if bool((length == 0).any()):
            raise ValueError("a mixture code has an empty likelihood slice; map codes with remap_unseen() first")
        L = int(length.max())
        ar = torch.arange(L, device=k.device)
        idx = (start[:, None] + ar).clamp(max=self.nnz - 1)
        valid = ar[None] < length[:, None]
        log_p = self.log_p[idx].masked_fill(~valid, float("-inf"))
        return (*self.source_codes(self.tuples[idx]), log_p)

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
        return CountLikelihood(self.K, self.k_ptr.to(device), self.tuples.to(device), self.log_p.to(device),
                               self.counts.to(device), self.n_positions, self.n_sources)

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict:
        small = self.K**self.n_sources < 2**31
        return {"K": self.K, "k_ptr": self.k_ptr.cpu(), "tuples": self.tuples.cpu().int() if small else self.tuples.cpu(),
                "log_p": self.log_p.cpu(), "counts": self.counts.cpu().int(), "n_positions": self.n_positions,
                "n_sources": self.n_sources}

    @classmethod
    def from_state_dict(cls, state: dict) -> CountLikelihood:
        tuples = state["tuples"] if "tuples" in state else state["pairs"]          # files written before N > 2
        return cls(state["K"], state["k_ptr"].long(), tuples.long(), state["log_p"].float(),
                   state["counts"].long(), state.get("n_positions", 0), state.get("n_sources", 2))


@torch.no_grad()
def fit_count_likelihood(vqvae, *sources: torch.Tensor, batch: int = 256, mixing: str | None = None) -> CountLikelihood:
    """Encode tuples ``(x_1, ..., x_N)`` and ``mix(x_1, ..., x_N)`` with ``vqvae`` and count (Eq. 8-10).

    Args:
        sources: N tensors ``(n, *spatial)`` of paired training chunks (audio ``(n, time)`` or
            images ``(n, H, W)`` / ``(n, 1, H, W)``); row ``r`` of each forms one mixture.
    """
    from sepcore.mixing import mix

    if len(sources) < 2 or len({tuple(x.shape) for x in sources}) != 1:
        raise ValueError(f"need at least two paired source tensors of equal shapes, got {[tuple(x.shape) for x in sources]}")
    device = vqvae.codebook.device

    def batches():
        for start in range(0, sources[0].shape[0], batch):
            xs = [x[start:start + batch].to(device) for x in sources]
            m = mix(torch.stack(xs, 1), mixing, dim=1)
            yield (*(vqvae.encode(x).cpu() for x in xs), vqvae.encode(m).cpu())

    return CountLikelihood.fit(batches(), vqvae.config.codebook_size)
