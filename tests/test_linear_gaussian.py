"""The closed-form model behind the ELBO chapter: identities of paper 000 Eq. 8-16 and 002 Eq. 18-23."""

import math

import torch

from sepcore.linear_gaussian import (
    Gaussian,
    LinearGaussianModel,
    kl_divergence,
    squared_exponential,
)

D = torch.float64


def random_model(seed=0, d=3, n=2):
    g = torch.Generator().manual_seed(seed)
    scale = torch.tril(torch.randn(d, d, generator=g, dtype=D)) * 0.3 + torch.eye(d, dtype=D)
    model = LinearGaussianModel(Gaussian(torch.randn(d, generator=g, dtype=D), scale),
                                torch.randn(n, d, generator=g, dtype=D), torch.randn(n, generator=g, dtype=D), 0.5)
    return model, g


def test_posterior_matches_bayes_rule_pointwise():
    model, g = random_model()
    _, x = model.sample(g)
    post = model.posterior(x)
    for _ in range(3):
        z = torch.randn(1, model.d, generator=g, dtype=D)
        lhs = post.distribution().log_prob(z)
        rhs = model.log_joint(x, z) - model.log_marginal(x)
        torch.testing.assert_close(lhs, rhs)


def test_elbo_plus_kl_is_evidence_and_bound_holds():
    model, g = random_model(1)
    _, x = model.sample(g)
    post = model.posterior(x)
    for _ in range(10):
        q = Gaussian(torch.randn(model.d, generator=g, dtype=D), torch.eye(model.d, dtype=D) * 0.5)
        torch.testing.assert_close(model.elbo(x, q) + kl_divergence(q, post), model.log_marginal(x))
        assert model.elbo(x, q) < model.log_marginal(x)
    torch.testing.assert_close(model.elbo(x, post), model.log_marginal(x))


def test_monte_carlo_elbo_is_unbiased():
    model, g = random_model(2)
    _, x = model.sample(g)
    q = Gaussian(torch.zeros(model.d, dtype=D), torch.eye(model.d, dtype=D))
    z = q.rsample(100_000, g)
    values = model.log_joint(x, z) - q.distribution().log_prob(z)
    se = values.std() / math.sqrt(len(values))
    assert abs(values.mean() - model.elbo(x, q)) < 4 * se


def test_separation_model_posterior_mean_satisfies_mixture_as_sigma_vanishes():
    time = 5
    means = torch.zeros(2, time, dtype=D)
    covs = torch.stack([torch.eye(time, dtype=D), squared_exponential(time, 2.0)])
    model = LinearGaussianModel.separation(means, covs, sigma=1e-4, mixing="mean")
    g = torch.Generator().manual_seed(0)
    sources, m = model.sample(g)
    post = model.posterior(m).mean.reshape(2, time)
    torch.testing.assert_close(post.mean(0), m, atol=1e-6, rtol=0)


def test_best_factorised_is_optimal_among_perturbations():
    time = 4
    covs = torch.stack([torch.eye(time, dtype=D), squared_exponential(time, 2.0)])
    model = LinearGaussianModel.separation(torch.zeros(2, time, dtype=D), covs, sigma=0.1)
    g = torch.Generator().manual_seed(1)
    _, m = model.sample(g)
    best = model.best_factorised(m, [time, time])
    best_elbo = model.elbo(m, best)
    for _ in range(5):
        mean = best.mean + 0.05 * torch.randn(2 * time, generator=g, dtype=D)
        blocks = [best.scale_tril[:time, :time] * 1.1, best.scale_tril[time:, time:] * 0.9]
        assert model.elbo(m, Gaussian(mean, torch.block_diag(*blocks))) < best_elbo
