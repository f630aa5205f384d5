"""Latent Bayesian separation (paper 003 Eq. 5-6, Sec. 4.3) on a tiny K with hand-made priors."""

import torch

from sepcore.models.transformer import KVCache, PriorConfig
from sepcore.models.vqvae import VQVAE, VQVAEConfig
from sepcore.separation.latent_bayes import (
    Candidates,
    LatentBayesConfig,
    LatentBayesSeparator,
    oracle_best,
    pair_log_likelihood_table,
    posterior_table,
    prior_and_residual,
    rejection_scores,
    sample_pairs_exact,
    sample_pairs_kernel,
    solve_sigma_rej,
)

K = 4


class MarkovPrior(torch.nn.Module):
    """p(z_s | z_{s-1}) from a fixed table; same call shape as TransformerPrior. Its cache holds no
    keys (the last token is all it needs) and stays empty, so a stepper never slides its context."""

    def __init__(self, seed):
        super().__init__()
        self.config = PriorConfig(vocab_size=K, block_size=64)
        self.table = torch.randn(K + 1, K, generator=torch.Generator().manual_seed(seed)) * 2

    def forward(self, idx, cache=None):
        return self.table[idx], KVCache(torch.zeros(0), torch.zeros(0), length=0)


def tiny_vqvae():
    torch.manual_seed(0)
    model = VQVAE(VQVAEConfig.quick().replace(codebook_size=K, code_dim=2, width=4, strides=(2, 2)))
    model.quantizer.codebook.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]))
    return model.eval()


def test_step_posterior_equals_brute_force_product():
    sep = LatentBayesSeparator(tiny_vqvae(), [MarkovPrior(1), MarkovPrior(2)], LatentBayesConfig(sigma=0.3), device="cpu")
    e = sep.vqvae.codebook
    log_p1 = torch.randn(3, K).log_softmax(-1)
    log_p2 = torch.randn(3, K).log_softmax(-1)
    for m in range(K):
        table = posterior_table(log_p1, log_p2, pair_log_likelihood_table(sep.code_dist2, sep.pairs, m, 0.3))
        for b in range(3):
            brute = torch.empty(K, K)
            for i in range(K):
                for j in range(K):
                    mid = 0.5 * e[i] + 0.5 * e[j]
                    code = torch.cdist(mid[None], e)[0].argmin()          # B_Q(1/2 e_i + 1/2 e_j)
                    brute[i, j] = (log_p1[b, i] + log_p2[b, j]).exp() * torch.exp(-(e[code] - e[m]).pow(2).sum() / (2 * 0.3**2))
            brute /= brute.sum()
            assert torch.allclose(table[b].exp(), brute, atol=1e-5)


def test_exact_and_kernel_samplers_match_posterior_frequencies():
    sep = LatentBayesSeparator(tiny_vqvae(), [MarkovPrior(1), MarkovPrior(2)], LatentBayesConfig(sigma=0.5), device="cpu")
    n = 30000
    log_p1 = torch.tensor([[0.1, 0.5, 0.3, 0.1]]).log().expand(n, -1)
    log_p2 = torch.tensor([[0.4, 0.1, 0.2, 0.3]]).log().expand(n, -1)
    log_lik = pair_log_likelihood_table(sep.code_dist2, sep.pairs, 3, 0.5)
    target = posterior_table(log_p1[:1], log_p2[:1], log_lik)[0].exp().flatten()
    for sampler in ("exact", "kernel"):
        gen = torch.Generator().manual_seed(0)
        if sampler == "exact":
            i, j = sample_pairs_exact(log_p1, log_p2, log_lik, gen)
        else:
            i, j = sample_pairs_kernel(log_p1, log_p2, log_lik, LatentBayesConfig(max_elements=n * 8), gen)
        freq = torch.bincount(i * K + j, minlength=K * K).float() / n
        assert (freq - target).abs().max() < 0.012, sampler


def test_greedy_picks_the_posterior_mode():
    sep = LatentBayesSeparator(tiny_vqvae(), [MarkovPrior(1), MarkovPrior(2)], LatentBayesConfig(sigma=0.5), device="cpu")
    log_p1, log_p2 = torch.randn(5, K).log_softmax(-1), torch.randn(5, K).log_softmax(-1)
    log_lik = pair_log_likelihood_table(sep.code_dist2, sep.pairs, 1, 0.5)
    i, j = sample_pairs_kernel(log_p1, log_p2, log_lik, LatentBayesConfig(method="greedy", max_elements=12))
    mode = posterior_table(log_p1, log_p2, log_lik).flatten(1).argmax(1)
    assert torch.equal(i * K + j, mode)


def test_separator_shapes_scores_and_seed():
    sep = LatentBayesSeparator(tiny_vqvae(), [MarkovPrior(1), MarkovPrior(2)], LatentBayesConfig(n_candidates=5), device="cpu")
    mixture = torch.randn(4 * 9 + 3)                        # not a multiple of the hop: padded and trimmed
    cands = sep.sample(mixture)
    assert cands.codes.shape == (5, 2, 10) and cands.estimates.shape == (5, 2, 39)
    # the recorded prior score is the priors' log-probability of the sampled codes
    for k, prior in enumerate(sep.priors):
        seq = cands.codes[:, k]
        inputs = torch.cat([torch.full((5, 1), K), seq[:, :-1]], 1)
        lp = prior.table[inputs].log_softmax(-1).gather(-1, seq[..., None]).squeeze(-1).sum(1)
        assert torch.allclose(cands.prior_log_prob[:, k].float(), lp, atol=1e-4)
    again = sep.sample(mixture)
    assert torch.equal(again.codes, cands.codes)            # seeded
    assert sep.separate(mixture).shape == (2, 39)


def test_sigma_rej_balances_means_and_alpha_zero_is_prior_only():
    B, T = 6, 20
    cands = Candidates(torch.zeros(B, 2, 10, dtype=torch.long), torch.randn(B, 2, dtype=torch.float64) * 10,
                       torch.randn(B, 2, T), 0.0)
    mixture = torch.randn(T)
    prior, residual = prior_and_residual(cands, mixture)
    assert abs(prior.exp().sum().item() - 1) < 1e-9         # normalised over the batch
    sigma = solve_sigma_rej(prior, residual)
    assert torch.allclose(prior.mean(), (-residual / (2 * sigma**2)).mean())
    assert torch.equal(rejection_scores(cands, mixture, 0.0), prior)
    full = rejection_scores(cands, mixture, 1.0)
    assert torch.allclose(full, prior - residual / (2 * sigma**2))


def test_oracle_picks_best_candidate_per_source():
    refs = torch.randn(2, 22050)
    est = torch.stack([refs + 0.5 * torch.randn(2, 22050), refs + 0.1 * torch.randn(2, 22050), torch.randn(2, 22050)])
    est[1, 1] = torch.randn(22050)                         # candidate 1 is best for source 0 only
    cands = Candidates(torch.zeros(3, 2, 1, dtype=torch.long), torch.zeros(3, 2), est, 0.0)
    best = oracle_best(cands, refs, 22050)
    assert torch.equal(best[0], est[1, 0]) and torch.equal(best[1], est[0, 1])


def random_transformer_priors(n, vocab=K):
    from sepcore.models.transformer import TransformerPrior
    priors = []
    for seed in range(n):
        torch.manual_seed(10 + seed)
        m = TransformerPrior(PriorConfig.quick().replace(vocab_size=vocab, block_size=32, n_embd=16)).eval()
        with torch.no_grad():
            for p in m.parameters():
                p.add_(0.5 * torch.randn_like(p))
        priors.append(m)
    return priors


def test_batched_path_gives_the_same_draws_as_one_prior_at_a_time():
    mixture = torch.randn(4 * 20)
    for method in ("ancestral", "top_p"):
        out = {}
        for batched in (True, False):
            config = LatentBayesConfig(n_candidates=6, method=method, batched_priors=batched, sigma=0.5)
            sep = LatentBayesSeparator(tiny_vqvae(), random_transformer_priors(2), config, device="cpu")
            assert sep.stacked is not None
            out[batched] = sep.sample(mixture)
        assert torch.equal(out[True].codes, out[False].codes), method
        assert torch.allclose(out[True].prior_log_prob, out[False].prior_log_prob, atol=1e-4)
        assert torch.allclose(out[True].estimates, out[False].estimates, atol=1e-5)


def test_separate_alpha_zero_decodes_only_the_prior_best_candidate():
    sep = LatentBayesSeparator(tiny_vqvae(), random_transformer_priors(2), LatentBayesConfig(n_candidates=5), device="cpu")
    mixture = torch.randn(39)
    full = sep.sample(mixture)
    best = rejection_scores(full, mixture, 0.0).argmax()
    assert torch.allclose(sep.separate(mixture), full.estimates[best], atol=1e-5)
    assert sep.last.estimates is None and sep.last.sampling_seconds > 0


def brute_force_triple_posterior(log_p, e, m, sigma):
    """Enumerate all K^3 triples: Q of the mean embedding by cdist, Gaussian latent likelihood (Eq. 5-6, N = 3)."""
    Kc = e.shape[0]
    out = torch.empty(log_p.shape[1], Kc, Kc, Kc)
    for i in range(Kc):
        for j in range(Kc):
            for ll in range(Kc):
                mean = (e[i] + e[j] + e[ll]) / 3
                code = torch.cdist(mean[None], e)[0].argmin()
                out[:, i, j, ll] = (log_p[0, :, i] + log_p[1, :, j] + log_p[2, :, ll]
                                    - (e[code] - e[m]).pow(2).sum() / (2 * sigma**2))
    return out.flatten(1).log_softmax(1).reshape(out.shape)


def test_three_source_step_equals_brute_force_without_pruning_and_prunes_to_top_k():
    from sepcore.separation.latent_bayes_pruned import gram, pruned_scores, sample_tuples, unravel
    Kc = 8
    e = torch.randn(Kc, 3, generator=torch.Generator().manual_seed(0))
    G, norms = gram(e)
    dist2 = torch.cdist(e, e).pow(2)
    log_p = torch.randn(3, 2, Kc, generator=torch.Generator().manual_seed(1)).log_softmax(-1)
    for m in (0, 5):
        brute = brute_force_triple_posterior(log_p, e, m, 0.7)
        scores, idx = pruned_scores(log_p, dist2[:, m], G, norms, 1 / 3, 0.7, top_k=Kc, max_elements=64)
        post = scores.log_softmax(1)                                            # (B, K^3) over permuted codes
        flat = torch.arange(Kc**3).repeat(2, 1)
        for b in range(2):
            tup = unravel(flat[b], idx[:, b:b + 1].expand(3, Kc**3, Kc))         # (3, K^3) codes
            assert torch.allclose(post[b], brute[b][tup[0], tup[1], tup[2]], atol=1e-5)
    # pruning: every drawn triple comes from the priors' top-k sets
    config = LatentBayesConfig(prune_k=3, sigma=0.7)
    log_p = torch.randn(3, 50, Kc).log_softmax(-1)
    codes = sample_tuples(log_p, dist2[:, 2], G, norms, 1 / 3, config, torch.Generator().manual_seed(0))
    top = log_p.topk(3, dim=-1).indices
    assert all(bool((top[n] == codes[n][:, None]).any(1).all()) for n in range(3))


def test_three_source_separator_shapes_and_batched_equals_one_by_one():
    mixture = torch.randn(4 * 12)
    out = {}
    for batched in (True, False):
        config = LatentBayesConfig(n_candidates=4, prune_k=3, batched_priors=batched)
        sep = LatentBayesSeparator(tiny_vqvae(), random_transformer_priors(3), config, device="cpu")
        out[batched] = sep.sample(mixture)
    assert out[True].codes.shape == (4, 3, 12) and out[True].estimates.shape == (4, 3, 48)
    assert torch.equal(out[True].codes, out[False].codes)
    assert sep.separate(mixture).shape == (3, 48)
