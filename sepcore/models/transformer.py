"""A small GPT-style autoregressive prior over code sequences (paper 003 Sec. 3.2; paper 004).

``p(z) = prod_s p(z_s | z_<s)``. A start token (index ``K``) is prepended, so ``forward`` on
``(batch, T)`` inputs ``[start, z_1, ..., z_{T-1}]`` returns the logits of ``z_1 .. z_T``.

The key/value cache is explicit state: ``forward(idx, cache) -> (logits, cache)``. A
:class:`KVCache` holds preallocated buffers ``(n_layer, batch, n_head, block_size, head_dim)``
and the number of filled positions, so a step costs no reallocation (growing the cache by
concatenation would copy O(S^2) numbers over a sequence). ``forward`` writes the new positions
into the buffers and returns the cache with its new length: a cache object is consumed by the
call (keep a copy with :func:`reorder_cache` to branch). ``reorder_cache(cache, index)``
selects/duplicates batch rows (beam search, resampling).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sepcore.profiles import ProfileConfig


@dataclass
class KVCache:
    keys: torch.Tensor       # (n_layer, batch, n_head, block_size, head_dim)
    values: torch.Tensor     # (n_layer, batch, n_head, block_size, head_dim)
    length: int = 0          # filled positions


Cache = KVCache


@dataclass
class PriorConfig(ProfileConfig):
    vocab_size: int = 256          # K (codes); the start token is index K
    block_size: int = 1024         # longest sequence (3 s at hop 64 = 1024 tokens)
    n_layer: int = 3
    n_head: int = 4
    n_embd: int = 96
    dropout: float = 0.0
    source_class: str = ""

    @classmethod
    def quick(cls):
        return cls(vocab_size=32, block_size=256, n_layer=2, n_head=2, n_embd=32)

    @classmethod
    def default(cls):
        return cls()

    @classmethod
    def full(cls):
        return cls(vocab_size=2048, block_size=2048, n_layer=12, n_head=8, n_embd=512, dropout=0.1)

    @property
    def start_token(self) -> int:
        return self.vocab_size


class Block(nn.Module):
    def __init__(self, c: PriorConfig):
        super().__init__()
        self.n_head = c.n_head
        self.ln1, self.ln2 = nn.LayerNorm(c.n_embd), nn.LayerNorm(c.n_embd)
        self.qkv = nn.Linear(c.n_embd, 3 * c.n_embd)
        self.proj = nn.Linear(c.n_embd, c.n_embd)
        self.mlp = nn.Sequential(nn.Linear(c.n_embd, 4 * c.n_embd), nn.GELU(), nn.Linear(4 * c.n_embd, c.n_embd))
        self.drop = nn.Dropout(c.dropout)
        self.dropout = c.dropout

    def forward(self, x, past=None, t_past: int = 0):
        """``past``: ``(keys, values)`` buffers ``(B, H, block_size, hd)`` of this layer, filled up to ``t_past``."""
        B, T, C = x.shape                                               # (B, T, C)
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, H, T, hd)
        if past is not None:
            past[0][:, :, t_past:t_past + T] = k
            past[1][:, :, t_past:t_past + T] = v
            k, v = past[0][:, :, :t_past + T], past[1][:, :, :t_past + T]
        if T == 1:
            mask = None                                                 # one new token attends to everything
        else:
            mask = torch.ones(T, k.shape[2], dtype=torch.bool, device=x.device).tril(diagonal=t_past)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).reshape(B, T, C)
        x = x + self.drop(self.proj(y))
        x = x + self.drop(self.mlp(self.ln2(x)))
        return x


class TransformerPrior(nn.Module):
    """GPT prior with explicit KV cache; ``log_prob`` and ``sample`` follow the prior interface."""

    def __init__(self, config: PriorConfig):
        super().__init__()
        self.config = c = config
        self.tok = nn.Embedding(c.vocab_size + 1, c.n_embd)
        self.pos = nn.Embedding(c.block_size, c.n_embd)
        self.blocks = nn.ModuleList([Block(c) for _ in range(c.n_layer)])
        self.ln_f = nn.LayerNorm(c.n_embd)
        self.head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * c.n_layer))

    @staticmethod
    def _init(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, 0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def empty_cache(self, batch: int) -> KVCache:
        c = self.config
        weight = self.head.weight
        shape = (c.n_layer, batch, c.n_head, c.block_size, c.n_embd // c.n_head)
        return KVCache(weight.new_empty(shape), weight.new_empty(shape), 0)

    def forward(self, idx: torch.Tensor, cache: KVCache | None = None, use_cache: bool = True,
                offset: int = 0) -> tuple[torch.Tensor, KVCache | None]:
        """``idx: (batch, T)`` tokens (codes or the start token) following the cached ones.

        ``offset`` shifts the positions of an uncached call (training on windows shorter than
        ``block_size`` at random offsets, so every positional embedding is trained).

        Returns ``logits: (batch, T, K)`` (next-code logits after each input token) and the
        updated cache (past length + T positions; ``None`` with ``use_cache=False``).
        """
        if cache is None and use_cache:
            cache = self.empty_cache(idx.shape[0])
        t_past = offset if cache is None else cache.length
        T = idx.shape[1]
        if t_past + T > self.config.block_size:
            raise ValueError(f"sequence length {t_past + T} exceeds block_size {self.config.block_size}; "
                             "train the prior with a larger PriorConfig.block_size or separate shorter chunks")
        pos = torch.arange(t_past, t_past + T, device=idx.device)
        x = self.tok(idx) + self.pos(pos)
        for i, block in enumerate(self.blocks):
            x = block(x, None if cache is None else (cache.keys[i], cache.values[i]), 0 if cache is None else t_past)
        if cache is not None:
            cache = KVCache(cache.keys, cache.values, t_past + T)
        return self.head(self.ln_f(x)), cache

    def with_start(self, codes: torch.Tensor) -> torch.Tensor:
        """(batch, S) codes -> (batch, S) inputs ``[start, z_1, ..., z_{S-1}]``."""
        start = codes.new_full((codes.shape[0], 1), self.config.start_token)
        return torch.cat([start, codes[:, :-1]], 1)

    def loss(self, codes: torch.Tensor) -> torch.Tensor:
        """Mean next-code cross-entropy (nats per token) of ``codes: (batch, S)``."""
        logits, _ = self(self.with_start(codes), use_cache=False)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), codes.reshape(-1))

    def log_prob(self, codes: torch.Tensor) -> torch.Tensor:
        """log p(z) summed over positions, ``(batch,)``."""
        logits, _ = self(self.with_start(codes), use_cache=False)
        return logits.log_softmax(-1).gather(-1, codes[..., None]).squeeze(-1).sum(-1)

    @torch.no_grad()
    def sample(self, n: int, length: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        """Ancestral samples ``(n, length)`` using the KV cache."""
        device = self.head.weight.device
        token = torch.full((n, 1), self.config.start_token, dtype=torch.long, device=device)
        cache, out = None, []
        for _ in range(length):
            logits, cache = self(token, cache)
            probs = (logits[:, -1] / temperature).softmax(-1)
            token = torch.multinomial(probs.cpu(), 1, generator=generator).to(device)
            out.append(token)
        return torch.cat(out, 1)


def reorder_cache(cache: KVCache, index: torch.Tensor) -> KVCache:
    """A new cache with batch rows ``index: (new_batch,)`` of every layer's keys and values (copied).

    Only the ``cache.length`` filled positions are copied (the rest of the new buffers is
    uninitialised, as in :meth:`TransformerPrior.empty_cache`), so a beam-search step costs
    O(length), not O(block_size).
    """
    n = cache.length
    shape = (cache.keys.shape[0], index.shape[0], *cache.keys.shape[2:])
    keys, values = cache.keys.new_empty(shape), cache.values.new_empty(shape)
    keys[:, :, :, :n] = cache.keys[:, :, :, :n].index_select(1, index)
    values[:, :, :, :n] = cache.values[:, :, :, :n].index_select(1, index)
    return KVCache(keys, values, n)


def reorder_cache_inplace(cache: KVCache, index: torch.Tensor) -> KVCache:
    """Like :func:`reorder_cache` (``new_batch == batch``) but in place, copying only the rows that change.

    Row ``r`` becomes old row ``index[r]``; rows with ``index[r] == r`` are not touched, so a beam
    search that keeps surviving beams in their slots copies only the forked ones.
    """
    n = cache.length
    changed = torch.nonzero(index != torch.arange(index.shape[0], device=index.device)).squeeze(1)
    if changed.numel() and n:
        source = index[changed]
        if bool(torch.isin(changed, source).any()):                        # a row is read and overwritten:
            cache.keys[:, changed, :, :n] = cache.keys[:, source, :, :n]  # advanced indexing copies first
            cache.values[:, changed, :, :n] = cache.values[:, source, :, :n]
        else:                                                              # disjoint: copy row to row, no temporary
            for dst, src in zip(changed.tolist(), source.tolist()):
                cache.keys[:, dst, :, :n].copy_(cache.keys[:, src, :, :n])
                cache.values[:, dst, :, :n].copy_(cache.values[:, src, :, :n])
    return cache
