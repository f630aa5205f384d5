"""LASS (paper 004): count likelihood (Eq. 8-11), Algorithm 1 samplers, refinement (Eq. 12-13)."""

import itertools
import math

import pytest
import torch

from sepcore.mixing import set_mixing
from sepcore.models.transformer import PriorConfig, TransformerPrior
from sepcore.models.vqvae import VQVAE, VQVAEConfig
from sepcore.separation.lass import LOG_FLOOR, CountLikelihood
from sepcore.separation.lass_search import (
    LASSConfig,
    LASSSeparator,
    lass_search,
    refine,
    stack_priors,
)


def random_codes(K, shape, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, K, shape, generator=g) for _ in range(3)]


def brute_counts(i, j, k, K):
    counts = torch.zeros(K, K, K, dtype=torch.long)
    for a, b, c in zip(i.reshape(-1).tolist(), j.reshape(-1).tolist(), k.reshape(-1).tolist()):
        counts[a, b, c] += 1
        counts[b, a, c] += 1
    return counts


def dense(lik):
    out = torch.zeros(lik.K, lik.K, lik.K, dtype=torch.long)
    ks = lik.mixture_codes()
    out[(*lik.source_codes(lik.tuples), ks)] = lik.counts
    return out


def test_counts_equal_brute_force_loop_and_batches_merge():
    K = 5
    i, j, k = random_codes(K, (7, 11), seed=0)
    i[0, :4] = j[0, :4] = 2                       # i == j and repeated triples
    k[0, :4] = 3
    lik = CountLikelihood.fit([(i[:3], j[:3], k[:3]), (i[3:], j[3:], k[3:])], K)
    assert torch.equal(dense(lik), brute_counts(i, j, k, K))
    assert lik.n_positions == 77
    assert int(lik.counts.sum()) == 2 * 77


def test_symmetric_and_normalised_per_pair():
    K = 6
    lik = CountLikelihood.fit([random_codes(K, (400,), seed=1)], K)
    sparse = lik.to_sparse().to_dense()                             # (i, j, k) log p, 0 where absent
    present = dense(lik) > 0
    assert torch.equal(present, present.transpose(0, 1))
    assert torch.allclose(sparse, sparse.transpose(0, 1))
    probs = torch.where(present, sparse.exp(), torch.zeros(()))
    seen = present.any(-1)
    assert torch.allclose(probs.sum(-1)[seen], torch.ones(int(seen.sum())), atol=1e-6)
    c = dense(lik).double()
    expected = (c / c.sum(-1, keepdim=True)).log()
    assert torch.allclose(sparse[present].double(), expected[present], atol=1e-6)


def test_log_prob_floor_slices_and_density():
    K = 4
    i = torch.tensor([0, 1, 1])
    j = torch.tensor([1, 2, 2])
    k = torch.tensor([3, 0, 1])
    lik = CountLikelihood.fit([(i, j, k)], K)
    assert lik.nnz == 6 and math.isclose(lik.density, 100 * 6 / 64)
    assert torch.allclose(lik.log_prob(torch.tensor([1, 2, 1, 0]), torch.tensor([0, 1, 2, 0]), torch.tensor([3, 0, 1, 2])),
                          torch.tensor([0.0, math.log(0.5), math.log(0.5), LOG_FLOOR]))
    si, sj, sl = lik.slice(3)
    assert sorted(zip(si.tolist(), sj.tolist())) == [(0, 1), (1, 0)] and torch.allclose(sl, torch.zeros(2))
    gi, gj, gl = lik.gather_slices(torch.tensor([3, 0]))
    assert gi.shape == (2, 2) and torch.isfinite(gl).all()
    remap = lik.remap_unseen(torch.tensor([[0.0], [1.0], [1.9], [3.0]]))
    assert remap.tolist() == [0, 1, 1, 3]                      # code 2 never seen as a mixture -> nearest seen (1)


def tiny_setup(K=3, seed=0):
    torch.manual_seed(seed)
    priors = [TransformerPrior(PriorConfig(vocab_size=K, block_size=8, n_layer=1, n_head=1, n_embd=8)).eval() for _ in range(2)]
    for p in priors:                                                  # sharpen the priors a little
        torch.nn.init.normal_(p.head.weight, 0, 1.0)
    c = random_codes(K, (300,), seed)
    c[2] = (c[0] + c[1]) % K                                          # a deterministic-ish "sum"
    noise = torch.rand(300, generator=torch.Generator().manual_seed(1)) < 0.2
    c[2] = torch.where(noise, (c[2] + 1) % K, c[2])
    return priors, CountLikelihood.fit([c], K)


def joint_score(priors, lik, z1, z2, m, lam):
    """log p1(z1) + log p2(z2) + lam * sum_s log p(m_s | z1_s, z2_s), (n,)."""
    return priors[0].log_prob(z1) + priors[1].log_prob(z2) + lam * lik.log_prob(z1, z2, m.expand_as(z1)).sum(-1)


def test_beam_search_with_enough_beams_is_exact_map_and_greedy_is_one_beam():
    K, S = 3, 3
    priors, lik = tiny_setup(K)
    m = torch.tensor([[1, 0, 2]])
    seqs = torch.tensor(list(itertools.product(range(K), repeat=S)))
    z1, z2 = seqs.repeat_interleave(len(seqs), 0), seqs.repeat(len(seqs), 1)
    with torch.no_grad():
        scores = joint_score(priors, lik, z1, z2, m, 2.0)
    best = scores.argmax()
    res = lass_search(priors, lik, m, LASSConfig(method="beam", n_rows=(K * K) ** S, likelihood_weight=2.0))
    top = res.codes[0, res.score[0].argmax()]
    assert torch.equal(top[0], z1[best]) and torch.equal(top[1], z2[best])
    assert math.isclose(float(res.score[0].max()), float(scores[best]), abs_tol=1e-4)
    # every beam's running score is its sequence's exact joint score (caches reordered correctly)
    with torch.no_grad():
        again = joint_score(priors, lik, res.codes[0, :, 0], res.codes[0, :, 1], m, 2.0)
    finite = torch.isfinite(res.score[0])
    assert torch.allclose(again[finite], res.score[0][finite], atol=1e-3)
    for B in (2, 4):                                                 # forking beams: in-place cache reorder
        small = lass_search(priors, lik, torch.tensor([[1, 0, 2, 1, 1, 0]]), LASSConfig(method="beam", n_rows=B))
        with torch.no_grad():
            again = joint_score(priors, lik, small.codes[0, :, 0], small.codes[0, :, 1], torch.tensor([[1, 0, 2, 1, 1, 0]]), 3.0)
        assert torch.allclose(again, small.score[0], atol=1e-3)
    greedy = lass_search(priors, lik, m, LASSConfig(method="greedy", likelihood_weight=2.0))
    beam1 = lass_search(priors, lik, m, LASSConfig(method="beam", n_rows=1, likelihood_weight=2.0))
    assert torch.equal(greedy.codes, beam1.codes)


def test_ancestral_first_step_matches_the_posterior():
    K = 3
    priors, lik = tiny_setup(K)
    m = torch.tensor([[2]]).repeat(1, 1)
    n = 20000
    res = lass_search(priors, lik, m, LASSConfig(method="ancestral", n_rows=n, likelihood_weight=1.5),
                      generator=torch.Generator().manual_seed(0))
    pairs = res.codes[0, :, 0, 0] * K + res.codes[0, :, 1, 0]
    freq = torch.bincount(pairs, minlength=K * K).double() / n
    with torch.no_grad():
        start = torch.full((1, 1), K)
        lp = [p(start)[0][0, -1].log_softmax(-1).double() for p in priors]
    ii, jj = torch.meshgrid(torch.arange(K), torch.arange(K), indexing="ij")
    ll = lik.log_prob(ii, jj, torch.full_like(ii, 2)).double()
    post = lp[0][:, None] + lp[1][None] + 1.5 * torch.where(ll > LOG_FLOOR, ll, torch.tensor(-math.inf, dtype=torch.float64))
    post = post.flatten().softmax(0)
    assert (freq - post).abs().max() < 0.015


def test_samples_stay_in_the_nonzero_slice_with_sliding_context():
    K, S = 3, 12                                                     # S > block_size = 8
    priors, lik = tiny_setup(K)
    m = torch.randint(0, K, (2, S), generator=torch.Generator().manual_seed(3))
    for method in ("top_k", "top_p", "beam"):
        res = lass_search(priors, lik, m, LASSConfig(method=method, n_rows=4, top_k=2, top_p=0.8))
        z = res.codes                                                # (2, 4, 2, S)
        lp = lik.log_prob(z[:, :, 0], z[:, :, 1], m[:, None].expand(-1, 4, -1))
        assert (lp > LOG_FLOOR).all(), method


@pytest.mark.parametrize("mixing", ["sum", "mean"])
def test_refinement_lowers_the_mixture_error(mixing):
    torch.manual_seed(0)
    vq = VQVAE(VQVAEConfig(dims=2, strides=(2, 2), width=8, res_depth=1, dilation_growth=1, codebook_size=16, code_dim=4))
    codes = torch.randint(0, 16, (2, 2, 4, 4))
    weight = 0.5 if mixing == "mean" else 1.0
    with torch.no_grad():                                            # a mixture the decoder can reach
        z_true = vq.embed(codes.reshape(4, 4, 4)) + 0.5 * torch.randn(4, 4, 4, 4)
        target = vq.decode_embeddings(z_true).reshape(2, 2, 16, 16).sum(1) * weight
    with set_mixing(mixing):
        sources, errors = refine(vq, codes, target, steps=40, lr=0.05, proximity=0.0)
        _, anchored = refine(vq, codes, target, steps=10, lr=0.05)
    assert sources.shape == (2, 2, 16, 16)
    assert errors[-1] < 0.8 * errors[0]
    assert torch.allclose(weight * sources.sum(1), target, atol=0.2)
    assert anchored[-1] <= anchored[0]


def test_separator_images_and_audio_shapes():
    torch.manual_seed(0)
    vq = VQVAE(VQVAEConfig(dims=2, strides=(2, 2), width=8, res_depth=1, dilation_growth=1, codebook_size=8, code_dim=4))
    prior = TransformerPrior(PriorConfig(vocab_size=8, block_size=16, n_layer=1, n_head=1, n_embd=8))
    x = torch.rand(40, 8, 8)
    with set_mixing("sum"):
        from sepcore.separation.lass import fit_count_likelihood
        lik = fit_count_likelihood(vq, x[:20], x[20:])
        sep = LASSSeparator(vq, [prior, prior], lik, LASSConfig.images(n_rows=4), device="cpu")
        out = sep.separate_images(x[:2] + x[2:4], refine_steps=2)
    assert out.shape == (2, 2, 8, 8) and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("mixing", ["sum", "mean"])
def test_average_baseline_remixes_to_the_mixture(mixing):
    from sepcore.mixing import mix
    from sepcore.separation.image_baselines import average_separation

    m = torch.rand(3, 5, 5)
    with set_mixing(mixing):
        est = average_separation(m)
        assert est.shape == (3, 2, 5, 5)
        assert torch.allclose(mix(est, dim=1), m)
        assert torch.allclose(est[:, 0], est[:, 1])


def test_batched_priors_search_equals_one_prior_at_a_time_with_sliding_context():
    K, S = 3, 12                                                     # S > block_size = 8: the context is rebuilt
    priors, lik = tiny_setup(K)
    m = torch.randint(0, K, (2, S), generator=torch.Generator().manual_seed(5))
    assert stack_priors(priors) is not None
    for method, rows in (("beam", 4), ("ancestral", 3), ("top_p", 3)):
        out = {}
        for batched in (True, False):
            config = LASSConfig(method=method, n_rows=rows, batched_priors=batched)
            out[batched] = lass_search(priors, lik, m, config, generator=torch.Generator().manual_seed(1))
        assert torch.equal(out[True].codes, out[False].codes), method
        assert torch.allclose(out[True].score, out[False].score, atol=1e-4), method


# ---------------------------------------------------------------------------- N = 3 sources


def test_three_source_counts_are_symmetric_over_all_orders_and_normalised():
    K = 3
    g = torch.Generator().manual_seed(4)
    i, j, h, k = (torch.randint(0, K, (200,), generator=g) for _ in range(4))
    lik = CountLikelihood.fit([(i[:90], j[:90], h[:90], k[:90]), (i[90:], j[90:], h[90:], k[90:])], K)
    brute = torch.zeros(K, K, K, K, dtype=torch.long)
    for a, b, c, m in zip(i.tolist(), j.tolist(), h.tolist(), k.tolist()):
        for p in itertools.permutations((a, b, c)):
            brute[(*p, m)] += 1
    out = torch.zeros_like(brute)
    out[(*lik.source_codes(lik.tuples), lik.mixture_codes())] = lik.counts
    assert torch.equal(out, brute)
    assert lik.n_sources == 3 and int(lik.counts.sum()) == 6 * 200
    assert math.isclose(lik.density, 100 * int((brute > 0).sum()) / K**4)
    dense_lp = lik.to_sparse().to_dense()
    probs = torch.where(brute > 0, dense_lp.exp(), torch.zeros(()))
    seen = (brute > 0).any(-1)
    assert torch.allclose(probs.sum(-1)[seen], torch.ones(int(seen.sum())), atol=1e-6)
    want = (brute.double() / brute.sum(-1, keepdim=True).clamp(min=1)).log()
    assert torch.allclose(lik.log_prob(i, j, h, k).double(), want[i, j, h, k], atol=1e-6)
    *codes, lp = lik.gather_slices(torch.tensor([0, 2]))
    assert len(codes) == 3 and all(c.shape == lp.shape for c in codes)
    finite = torch.isfinite(lp)
    assert torch.allclose(lik.log_prob(*codes, torch.tensor([[0], [2]]).expand_as(lp))[finite], lp[finite])
    again = CountLikelihood.from_state_dict(lik.state_dict())
    assert again.n_sources == 3 and torch.equal(again.tuples, lik.tuples)


def test_three_source_beam_search_with_enough_beams_is_exact_map():
    K, S, N = 2, 2, 3
    torch.manual_seed(1)
    priors = [TransformerPrior(PriorConfig(vocab_size=K, block_size=8, n_layer=1, n_head=1, n_embd=8)).eval() for _ in range(N)]
    for p in priors:
        torch.nn.init.normal_(p.head.weight, 0, 1.0)
    g = torch.Generator().manual_seed(2)
    c = [torch.randint(0, K, (300,), generator=g) for _ in range(N)]
    mixed = (c[0] + c[1] + c[2]) % K
    noise = torch.rand(300, generator=g) < 0.25
    lik = CountLikelihood.fit([(*c, torch.where(noise, 1 - mixed, mixed))], K)
    m = torch.tensor([[1, 0]])
    seqs = torch.tensor(list(itertools.product(range(K), repeat=S)))                       # (K^S, S)
    grid = torch.tensor(list(itertools.product(range(len(seqs)), repeat=N)))               # every triple of sequences
    z = [seqs[grid[:, n]] for n in range(N)]
    with torch.no_grad():
        scores = sum(p.log_prob(zn) for p, zn in zip(priors, z)) + 2.0 * lik.log_prob(*z, m.expand_as(z[0])).sum(-1)
    best = scores.argmax()
    res = lass_search(priors, lik, m, LASSConfig(method="beam", n_rows=(K**N) ** S, likelihood_weight=2.0))
    top = res.codes[0, res.score[0].argmax()]                                             # (N, S)
    assert res.codes.shape[2] == N
    assert all(torch.equal(top[n], z[n][best]) for n in range(N))
    assert math.isclose(float(res.score[0].max()), float(scores[best]), abs_tol=1e-4)
    unbatched = lass_search(priors, lik, m, LASSConfig(method="beam", n_rows=4, likelihood_weight=2.0, batched_priors=False))
    batched = lass_search(priors, lik, m, LASSConfig(method="beam", n_rows=4, likelihood_weight=2.0))
    assert torch.equal(unbatched.codes, batched.codes)
    with pytest.raises(ValueError, match="3-source count likelihood"):
        lass_search(priors[:2], lik, m, LASSConfig(method="greedy"))
    vq = VQVAE(VQVAEConfig(dims=1, strides=(2,), width=8, res_depth=1, dilation_growth=1, codebook_size=K, code_dim=4))
    with pytest.raises(ValueError, match="one prior per source"):
        LASSSeparator(vq, priors[:2], lik, device="cpu")


def test_fit_count_likelihood_takes_n_sources():
    from sepcore.separation.lass import fit_count_likelihood

    torch.manual_seed(0)
    vq = VQVAE(VQVAEConfig(dims=1, strides=(2, 2), width=8, res_depth=1, dilation_growth=1, codebook_size=8, code_dim=4))
    x = torch.randn(3, 6, 64)
    lik = fit_count_likelihood(vq, x[0], x[1], x[2], batch=4)
    assert lik.n_sources == 3 and lik.n_positions == 6 * 16 and int(lik.counts.sum()) == 6 * lik.n_positions
    with pytest.raises(ValueError, match="paired source tensors"):
        fit_count_likelihood(vq, x[0], x[1, :3])


def test_audio_separator_refines_under_its_no_grad():
    """``separate`` runs under ``no_grad``; refinement must still take gradient steps (it once raised)."""
    torch.manual_seed(0)
    vq = VQVAE(VQVAEConfig(dims=1, strides=(2, 2), width=8, res_depth=1, dilation_growth=1, codebook_size=8, code_dim=4))
    prior = TransformerPrior(PriorConfig(vocab_size=8, block_size=32, n_layer=1, n_head=1, n_embd=8))
    x = torch.randn(2, 20, 64)
    from sepcore.separation.lass import fit_count_likelihood

    lik = fit_count_likelihood(vq, x[0], x[1])
    m = 0.5 * (x[0, 0] + x[1, 0])
    plain = LASSSeparator(vq, [prior, prior], lik, LASSConfig(method="greedy"), device="cpu").separate(m)
    refined = LASSSeparator(vq, [prior, prior], lik, LASSConfig(method="greedy", refine_steps=30, refine_proximity=0.0),
                            device="cpu").separate(m)
    assert plain.shape == refined.shape == (2, 64)
    assert (refined.mean(0) - m).pow(2).mean() < 0.9 * (plain.mean(0) - m).pow(2).mean()
