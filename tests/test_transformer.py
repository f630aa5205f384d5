"""Transformer prior: cached == uncached logits, normalised log-probs, cache reordering."""

import itertools

import torch

from sepcore.models.transformer import PriorConfig, TransformerPrior, reorder_cache


def model(**kw):
    torch.manual_seed(0)
    return TransformerPrior(PriorConfig.quick().replace(vocab_size=5, block_size=16, **kw)).eval()


def test_cached_equals_uncached():
    m = model()
    codes = torch.randint(0, 5, (3, 10))
    full, _ = m(m.with_start(codes))
    idx = m.with_start(codes)
    cache, steps = None, []
    for t in range(10):
        logits, cache = m(idx[:, t:t + 1], cache)
        steps.append(logits)
    assert torch.allclose(torch.cat(steps, 1), full, atol=1e-5)
    # a prefix in one go, then the rest token by token
    logits_a, cache = m(idx[:, :4])
    logits_b, cache = m(idx[:, 4:], cache)
    assert torch.allclose(torch.cat([logits_a, logits_b], 1), full, atol=1e-5)


def test_log_prob_normalised():
    """sum_z p(z) over all K^S sequences of length 3 equals 1."""
    m = model()
    seqs = torch.tensor(list(itertools.product(range(5), repeat=3)))
    assert abs(m.log_prob(seqs).exp().sum().item() - 1.0) < 1e-4


def test_reorder_cache_selects_rows():
    m = model()
    idx = torch.randint(0, 6, (3, 4))
    _, cache = m(idx)
    index = torch.tensor([2, 2, 0])
    _, cache_sel = m(idx[index])
    picked = reorder_cache(cache, index)
    n = cache.length
    assert picked.length == cache_sel.length == 4
    assert torch.allclose(picked.keys[..., :n, :], cache_sel.keys[..., :n, :], atol=1e-6)
    assert torch.allclose(picked.values[..., :n, :], cache_sel.values[..., :n, :], atol=1e-6)


def test_seeded_sampling_reproducible():
    m = model()
    a = m.sample(4, 6, generator=torch.Generator().manual_seed(3))
    b = m.sample(4, 6, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.max() < 5


def test_offset_shifts_positions_like_a_cache():
    """An uncached call at offset p equals the last rows of a call whose first p positions are cached."""
    m = model()
    idx = torch.randint(0, 6, (2, 7))
    full, _ = m(idx)
    _, cache = m(idx[:, :3])
    tail, _ = m(idx[:, 3:], cache)
    shifted, _ = m(idx[:, 3:], use_cache=False, offset=3)
    assert torch.allclose(tail, full[:, 3:], atol=1e-5)
    assert shifted.shape == tail.shape and not torch.allclose(shifted, m(idx[:, 3:], use_cache=False)[0])


def test_stacked_priors_equal_separate_calls_cached_and_prefix():
    from sepcore.models.stacked_prior import StackedPriors
    from sepcore.models.transformer import reorder_cache_inplace
    priors = []
    for seed in (1, 2, 3):
        torch.manual_seed(seed)
        m = TransformerPrior(PriorConfig.quick().replace(vocab_size=5, block_size=16)).eval()
        with torch.no_grad():                       # non-trivial LayerNorm affines (folded by StackedPriors)
            for p in m.parameters():
                p.add_(0.3 * torch.randn_like(p))
        priors.append(m)
    stacked = StackedPriors(priors)
    codes = torch.randint(0, 5, (3, 2, 9))
    idx = torch.stack([p.with_start(codes[k]) for k, p in enumerate(priors)])        # (P, rows, T)
    with torch.no_grad():
        full = torch.stack([p(idx[k])[0] for k, p in enumerate(priors)])
        head, cache = stacked(idx[:, :, :4])                                        # prefix (masked), then steps
        steps = [head] + [None] * 5
        for t in range(4, 9):
            steps[t - 3], cache = stacked(idx[:, :, t:t + 1], cache)
        assert torch.allclose(torch.cat(steps, 2), full, atol=1e-5)
        # reordering rows of the stacked cache = reordering each prior's rows
        cache = reorder_cache_inplace(cache, torch.tensor([1, 1, 2, 3, 5, 4]))    # rows p * 2 + r
        nxt = torch.zeros(3, 2, 1, dtype=torch.long)
        out, _ = stacked(nxt, cache)
        swapped = torch.stack([idx[0, [1, 1]], idx[1, [0, 1]], idx[2, [1, 0]]])
        ref = torch.stack([p(torch.cat([swapped[k], nxt[k]], 1))[0][:, -1:] for k, p in enumerate(priors)])
        assert torch.allclose(out, ref, atol=1e-5)


def test_reorder_cache_inplace_equals_copying_reorder_with_and_without_overlap():
    from sepcore.models.transformer import reorder_cache_inplace
    m = model()
    idx = torch.randint(0, 6, (5, 4))
    for index in ([0, 0, 2, 2, 4], [1, 0, 2, 4, 4], [3, 1, 1, 3, 4]):   # disjoint, overlapping (swap), disjoint
        index = torch.tensor(index)
        _, cache = m(idx)
        expected = reorder_cache(cache, index)
        got = reorder_cache_inplace(cache, index)
        assert torch.equal(got.keys[..., :4, :], expected.keys[..., :4, :])
        assert torch.equal(got.values[..., :4, :], expected.values[..., :4, :])
