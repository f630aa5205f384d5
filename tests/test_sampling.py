"""The shared selection kernel: chunked == whole-table, and sample frequencies match softmax."""

import torch

from sepcore.separation.sampling import chunk_for_budget, select


def test_greedy_chunked_equals_topk():
    scores = torch.randn(4, 103)
    sel = select(scores, method="greedy", n=5, chunk_size=10)
    val, idx = scores.topk(5, 1)
    assert torch.equal(sel.indices, idx) and torch.allclose(sel.scores, val)
    assert torch.allclose(sel.log_normalizer, scores.logsumexp(1))


def test_function_table_and_lse():
    scores = torch.randn(3, 50)
    sel = select(lambda a, b: scores[:, a:b], 50, method="greedy", chunk_size=7, temperature=2.0)
    assert torch.allclose(sel.log_normalizer, (scores / 2).logsumexp(1), atol=1e-6)
    assert torch.equal(sel.indices[:, 0], scores.argmax(1))


def test_ancestral_chunked_frequencies_match_softmax():
    logits = torch.tensor([[0.0, 1.0, 2.0, -1.0, 0.5, 1.5, -0.5]])
    gen = torch.Generator().manual_seed(0)
    sel = select(logits.expand(20000, -1), method="ancestral", chunk_size=3, generator=gen)
    freq = torch.bincount(sel.indices[:, 0], minlength=7).float() / 20000
    assert (freq - logits.softmax(1)[0]).abs().max() < 0.015
    assert torch.allclose(sel.scores[:, 0], logits[0, sel.indices[:, 0]])


def test_top_k_and_top_p_support():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    gen = torch.Generator().manual_seed(0)
    topk = select(logits, method="top_k", top_k=2, n=4000, chunk_size=1, generator=gen)
    assert set(topk.indices.unique().tolist()) == {0, 1}
    assert abs((topk.indices == 0).float().mean().item() - 0.5 / 0.8) < 0.03
    topp = select(logits, method="top_p", top_p=0.7, n=4000, chunk_size=2, generator=gen)
    assert set(topp.indices.unique().tolist()) == {0, 1}                       # 0.5 + 0.3 >= 0.7
    assert not bool(topp.truncated.any())


def test_chunk_budget():
    assert chunk_for_budget(16, 65536, 2**20) == 65536
    assert chunk_for_budget(64, 2048**2, 2**24) == 2**18
