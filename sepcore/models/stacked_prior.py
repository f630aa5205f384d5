"""Several :class:`TransformerPrior` of one architecture run as one batched call (inference only).

Separation runs one prior per source at every latent step (paper 003 Eq. 5, paper 004
Algorithm 1). With ``P`` priors of the same :class:`PriorConfig` (weights may differ, e.g. drums
and bass), their weights are stacked on a leading axis and each layer is one batched matrix
product (``torch.baddbmm``) over ``(P, rows, C)``, so a step issues one set of kernels instead of
``P``; on 2 CPU cores, where a step of these small models is dominated by per-operator overhead,
this is most of the saving. Two exact rewrites remove further operators:

* the LayerNorm affine ``g * n(x) + beta`` is folded into the linear layer that follows it
  (``W' = W diag(g)``, ``b' = b + W beta``), so LayerNorms run without weights;
* the KV cache of all priors is one :class:`KVCache` with batch ``P * rows``.

``StackedPriors(priors)(idx (P, rows, T), cache) -> (logits (P, rows, T, K), cache)`` equals
``[prior_p(idx[p], cache_p) for p]`` up to float rounding (the folded affine and batched products
sum in a different order; tests assert ``allclose``). The cache rows are ``p * rows + r``, so
:func:`sepcore.models.transformer.reorder_cache_inplace` applies with an index over ``P * rows``.

The weights are copied when the object is built: rebuild it after changing a prior's weights.

Cost per step and layer: ``O(P rows (C^2 + t C))`` for context length ``t``, like ``P`` separate
calls; memory: the stacked weights (a copy, ``P x`` one prior) and the cache
``2 n_layer P rows block_size C`` floats.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sepcore.models.transformer import KVCache


def _linear(layers, ln=None):
    """Stacked ``(W^T (P, in, out), b (P, 1, out))`` of ``nn.Linear`` layers, with a LayerNorm affine folded in."""
    weights, biases = [], []
    for p, layer in enumerate(layers):
        w = layer.weight.detach().float()                         # (out, in)
        b = layer.bias.detach().float() if layer.bias is not None else w.new_zeros(w.shape[0])
        if ln is not None:
            g, beta = ln[p].weight.detach().float(), ln[p].bias.detach().float()
            b = b + w @ beta
            w = w * g[None]
        weights.append(w.T.contiguous())
        biases.append(b[None])
    return torch.stack(weights), torch.stack(biases)


class StackedPriors:
    """``P`` priors of one architecture as one batched model; see the module docstring.

    Args:
        priors: :class:`TransformerPrior` instances with equal configs (``source_class`` aside);
            the same prior may appear twice (a class-agnostic prior).
    """

    def __init__(self, priors):
        priors = list(priors)
        first = priors[0].config
        shape = ("vocab_size", "block_size", "n_layer", "n_head", "n_embd")
        for prior in priors[1:]:
            if any(getattr(prior.config, f) != getattr(first, f) for f in shape):
                raise ValueError("StackedPriors needs priors of one architecture; got "
                                 f"{[{f: getattr(p.config, f) for f in shape} for p in priors]}; "
                                 "run them one by one instead (use_stacked=False)")
        self.config = first
        self.n = len(priors)
        self.n_head = first.n_head
        self.tok = torch.stack([p.tok.weight.detach().float() for p in priors]).flatten(0, 1)   # (P * (K+1), C)
        self.pos = torch.stack([p.pos.weight.detach().float() for p in priors])              # (P, block, C)
        self.layers = []
        for i in range(first.n_layer):
            blocks = [p.blocks[i] for p in priors]
            self.layers.append({
                "qkv": _linear([b.qkv for b in blocks], [b.ln1 for b in blocks]),
                "proj": _linear([b.proj for b in blocks]),
                "fc1": _linear([b.mlp[0] for b in blocks], [b.ln2 for b in blocks]),
                "fc2": _linear([b.mlp[2] for b in blocks]),
                "eps": (blocks[0].ln1.eps, blocks[0].ln2.eps),
            })
        self.head = _linear([p.head for p in priors], [p.ln_f for p in priors])
        self.eps_f = priors[0].ln_f.eps
        self.device = self.tok.device

    def empty_cache(self, rows: int) -> KVCache:
        c = self.config
        shape = (c.n_layer, self.n * rows, c.n_head, c.block_size, c.n_embd // c.n_head)
        return KVCache(self.tok.new_empty(shape), self.tok.new_empty(shape), 0)

    @torch.no_grad()
    def __call__(self, idx: torch.Tensor, cache: KVCache | None = None) -> tuple[torch.Tensor, KVCache]:
        """``idx: (P, rows, T)`` tokens following the cached ones -> ``(logits (P, rows, T, K), cache)``."""
        P, R, T = idx.shape
        C, H = self.config.n_embd, self.n_head
        if cache is None:
            cache = self.empty_cache(R)
        t = cache.length
        if t + T > self.config.block_size:
            raise ValueError(f"sequence length {t + T} exceeds block_size {self.config.block_size}; "
                             "separate shorter chunks or use a sliding context")
        offset = (torch.arange(P, device=idx.device) * (self.config.vocab_size + 1))[:, None, None]
        x = self.tok[idx + offset] + self.pos[:, t:t + T, None].transpose(1, 2)     # (P, R, T, C)
        x = x.reshape(P, R * T, C)
        scale = (C // H) ** -0.5
        mask = None if T == 1 else torch.ones(T, t + T, dtype=torch.bool, device=idx.device).tril(diagonal=t)
        for i, layer in enumerate(self.layers):
            eps1, eps2 = layer["eps"]
            w, b = layer["qkv"]
            qkv = torch.baddbmm(b, F.layer_norm(x, (C,), eps=eps1), w)                # (P, R*T, 3C)
            qkv = qkv.view(P * R, T, 3, H, C // H).permute(2, 0, 3, 1, 4)             # (3, P*R, H, T, hd)
            keys, values = cache.keys[i], cache.values[i]
            keys[:, :, t:t + T] = qkv[1]
            values[:, :, t:t + T] = qkv[2]
            if T == 1:    # one query: two batched mat-vec products beat the fused CPU kernel here
                scores = torch.matmul(qkv[0] * scale, keys[:, :, :t + 1].transpose(-1, -2))   # (P*R, H, 1, t+1)
                y = torch.matmul(scores.softmax(-1), values[:, :, :t + 1])
            else:
                y = F.scaled_dot_product_attention(qkv[0], keys[:, :, :t + T], values[:, :, :t + T], attn_mask=mask)
            y = y.transpose(1, 2).reshape(P, R * T, C)
            w, b = layer["proj"]
            x = torch.baddbmm(x, y, w).add_(b)
            w, b = layer["fc1"]
            h = F.gelu(torch.baddbmm(b, F.layer_norm(x, (C,), eps=eps2), w))
            w, b = layer["fc2"]
            x = torch.baddbmm(x, h, w).add_(b)
        w, b = self.head
        logits = torch.baddbmm(b, F.layer_norm(x, (C,), eps=self.eps_f), w)          # (P, R*T, K)
        return logits.view(P, R, T, -1), KVCache(cache.keys, cache.values, t + T)
