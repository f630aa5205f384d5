"""Score priors, the exact toy prior and the Langevin variants, against closed forms."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from sepcore.data.toy import ToyConfig
from sepcore.models.score_prior import ScorePrior, ScorePriorConfig
from sepcore.models.toy_exact import ExactToyPrior, _log_ndtr_diff
from sepcore.separation.langevin import (
    GaussianPrior,
    LangevinConfig,
    annealed_langevin,
    chain_scores,
)


class ScoredGaussian(GaussianPrior):
    """A Gaussian prior that also gives its score directly (the score-prior code path)."""

    def score(self, x, sigma):
        return -(x - self.mean) / (self.std**2 + sigma**2)


# ---- score prior -------------------------------------------------------------------------------

def test_untrained_score_prior_is_the_wiener_denoiser_of_its_data_scale():
    """With a zero head, D(y) = c_skip y = sd^2 / (sd^2 + sigma^2) y: the posterior mean for N(0, sd^2)."""
    prior = ScorePrior(ScorePriorConfig.quick().replace(sigma_data=0.3))
    y = torch.randn(3, 100)
    for sigma in (0.05, 0.3, 2.0):
        expected = 0.09 / (0.09 + sigma**2) * y
        assert torch.allclose(prior.denoise(y, sigma), expected, atol=1e-6)
        assert torch.allclose(prior.score(y, sigma), (expected - y) / sigma**2, atol=1e-4)


def test_score_prior_refuses_zero_noise():
    with pytest.raises(ValueError, match="sigma > 0"):
        ScorePrior(ScorePriorConfig.quick()).score(torch.zeros(1, 8), 0.0)


def test_dsm_learns_the_posterior_mean_of_a_correlated_gaussian():
    """Data x_t = a (white, variance 1) smoothed by [1, 1]/sqrt(2): the Bayes denoiser is linear and
    known; DSM training must approach it far better than the untrained (white Wiener) denoiser."""
    torch.manual_seed(0)
    prior = ScorePrior(ScorePriorConfig.quick().replace(sigma_data=1.0, max_dilation=2))
    kernel = torch.tensor([1.0, 1.0]) / math.sqrt(2)

    def draw(n, t=64):
        white = torch.randn(n, t + 1)
        return white[:, 1:] * kernel[0] + white[:, :-1] * kernel[1]

    t = 64
    cov = torch.eye(t) + 0.5 * (torch.diag(torch.ones(t - 1), 1) + torch.diag(torch.ones(t - 1), -1))
    sigma = 0.7
    bayes = cov @ torch.linalg.inv(cov + sigma**2 * torch.eye(t))       # E[x|y] = C (C + s^2 I)^-1 y
    clean = draw(256)
    noisy = clean + sigma * torch.randn(clean.shape)
    optimal = ((noisy @ bayes.T - clean) ** 2).mean()
    with torch.no_grad():
        before = float(((prior.denoise(noisy, sigma) - clean) ** 2).mean())
    opt = torch.optim.Adam(prior.parameters(), lr=3e-3)
    for _ in range(300):
        x = draw(32)
        s = torch.exp(torch.empty(32).uniform_(math.log(0.3), math.log(1.5)))
        loss = prior.dsm_loss(x, s, torch.randn(x.shape))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = float(((prior.denoise(noisy, sigma) - clean) ** 2).mean())
    assert after < before
    assert after < 1.08 * float(optimal), (after, float(optimal), before)


# ---- exact toy prior ---------------------------------------------------------------------------

def test_log_ndtr_diff_matches_scipy_in_both_tails():
    alpha = torch.tensor([-40.0, -3.0, 0.5, 9.0, 30.0], dtype=torch.float64)
    beta = alpha + torch.tensor([1.0, 0.1, 2.0, 0.5, 1.0], dtype=torch.float64)
    expected = [stats.norm.logsf(a) + np.log1p(-np.exp(stats.norm.logsf(b) - stats.norm.logsf(a))) if a > 0
                else stats.norm.logcdf(b) + np.log1p(-np.exp(stats.norm.logcdf(a) - stats.norm.logcdf(b)))
                for a, b in zip(alpha.tolist(), beta.tolist())]
    assert torch.allclose(_log_ndtr_diff(alpha, beta), torch.tensor(expected, dtype=torch.float64), rtol=1e-9, atol=1e-9)


def small_exact_prior(source="sine", top_k=10_000):
    config = ToyConfig(length=64, sample_rate=2000, key_range=(40.0, 45.0))
    return ExactToyPrior(source, config, max_drift=0.25, n_phases=6, top_k=top_k), config


@pytest.mark.parametrize("sigma", [0.3, 0.05])
def test_exact_prior_log_prob_is_the_template_mixture_integral(sigma):
    """log p(y | sigma) against brute force: sum over the grid of the amplitude integral by quadrature."""
    prior, config = small_exact_prior()
    templates, _, log_w = prior.grid(64)
    y = 0.9 * templates[7].double() + sigma * torch.randn(64, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    lo, hi = config.amplitude_range
    total = 0.0
    for t, lw in zip(templates.double(), log_w):
        def density(a, t=t):
            return math.exp(float(-((y - a * t) ** 2).sum() / (2 * sigma**2)))
        total += math.exp(float(lw)) * integrate.quad(density, lo, hi, epsabs=0, epsrel=1e-10, limit=200)[0] / (hi - lo)
    expected = math.log(total) - 32 * math.log(2 * math.pi * sigma**2)
    assert float(prior.log_prob(y[None], sigma)[0]) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("top_k", [10_000, 8])
def test_exact_prior_score_is_the_gradient_of_its_log_prob(top_k):
    """Also when only a few templates are exact and the rest enter with the profile likelihood."""
    prior, _ = small_exact_prior("square", top_k=top_k)
    y = torch.randn(3, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 0.7
    direction = torch.randn(3, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    for sigma in (1.0, 0.2):
        eps = 1e-5
        numeric = (prior.log_prob(y + eps * direction, sigma) - prior.log_prob(y - eps * direction, sigma)) / (2 * eps)
        analytic = (prior.score(y, sigma) * direction).sum(-1)
        assert torch.allclose(numeric, analytic, rtol=1e-5, atol=1e-4)


def test_exact_prior_denoises_a_grid_template_at_small_noise():
    prior, config = small_exact_prior("triangle")
    templates, _, _ = prior.grid(64)
    clean = 0.85 * templates[[3, 20]].double()
    noisy = clean + 0.01 * torch.randn(clean.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(prior.denoise(noisy, 0.01), clean, atol=2e-3)


def test_exact_prior_grid_weights_follow_the_key_prior():
    """key ~ U  =>  p(f) ~ 1/f on a uniform frequency grid; phases share a frequency's weight equally."""
    prior, config = small_exact_prior()
    _, _, log_w = prior.grid(64)
    assert float(log_w.exp().sum()) == pytest.approx(1.0, abs=1e-9)
    step = prior.max_drift * config.sample_rate / 64
    f_lo = 440 * 2 ** ((config.key_range[0] - 49) / 12)
    freqs = torch.from_numpy(np.arange(f_lo + step / 2, 440 * 2 ** ((config.key_range[1] - 49) / 12), step))
    per_frequency = log_w.view(len(freqs), prior.n_phases)
    assert torch.allclose(per_frequency, per_frequency[:, :1].expand_as(per_frequency))
    assert torch.allclose(per_frequency[:, 0] - per_frequency[0, 0], -(freqs / freqs[0]).log(), atol=1e-12)


# ---- Langevin variants -------------------------------------------------------------------------

def test_exact_constraint_samples_the_conditional_gaussian():
    """On the plane mix(x) = m, two Gaussian sources have a closed-form conditional."""
    means, stds, m_value = [0.5, -0.3], [0.5, 1.0], 0.4
    priors = [GaussianPrior(mu, s) for mu, s in zip(means, stds)]
    sigma = 0.05
    config = LangevinConfig(sigma_max=sigma, sigma_min=sigma, n_levels=1, steps_per_level=1500, epsilon=0.005,
                            init="mixture", clamp=None, constraint="exact")
    samples, _ = annealed_langevin(torch.full((400, 8), m_value), priors, config, torch.Generator().manual_seed(0),
                                   mixing="mean", device="cpu")
    assert torch.allclose(samples.mean(1), torch.full((400, 8), m_value), atol=1e-5)   # the constraint holds exactly
    v = torch.tensor(stds, dtype=torch.float64) ** 2 + sigma**2
    x1 = samples[:, 0].reshape(-1).double()
    precision = 1 / v[0] + 1 / v[1]
    mean = (means[0] / v[0] + (2 * m_value - means[1]) / v[1]) / precision
    assert float(x1.mean()) == pytest.approx(float(mean), abs=0.03)
    assert float(x1.var()) == pytest.approx(float(1 / precision), rel=0.1)


def test_score_path_equals_the_autograd_path():
    config = LangevinConfig(n_levels=3, steps_per_level=10, epsilon=1e-4, sigma_max=0.5, sigma_min=0.05)
    m = torch.randn(2, 32) * 0.3
    a, _ = annealed_langevin(m, [GaussianPrior(0.1, 0.4), GaussianPrior(-0.1, 0.6)], config,
                             torch.Generator().manual_seed(5), device="cpu")
    b, _ = annealed_langevin(m, [ScoredGaussian(0.1, 0.4), ScoredGaussian(-0.1, 0.6)], config,
                             torch.Generator().manual_seed(5), device="cpu")
    assert torch.allclose(a, b, atol=1e-5)


def test_chains_return_the_best_scoring_chain():
    priors = [GaussianPrior(0.0, 0.5), GaussianPrior(0.0, 0.5)]
    m = torch.randn(3, 16) * 0.3
    one = LangevinConfig(n_levels=2, steps_per_level=5, sigma_max=0.3, sigma_min=0.1, epsilon=1e-3)
    four = one.replace(n_chains=4)
    best, diagnostics = annealed_langevin(m, priors, four, torch.Generator().manual_seed(0), device="cpu")
    assert best.shape == (3, 2, 16) and diagnostics[-1]["chain_score_spread"] > 0
    lam = float(four.weights()[-1])
    chosen = chain_scores(best, m, priors, 0.1, lam, "mean")
    for seed in range(3):      # single chains from other seeds do not beat the chosen one on average
        other, _ = annealed_langevin(m, priors, one, torch.Generator().manual_seed(100 + seed), device="cpu")
        assert float(chain_scores(other, m, priors, 0.1, lam, "mean").mean()) < float(chosen.mean())


def test_chain_scores_without_log_prob_use_the_denoising_residual():
    x = torch.randn(2, 1, 8)
    m = x[:, 0]                                         # one source: the likelihood term is zero
    s = _ScoreOnly().score(x[:, 0], 0.1)
    expected = -(0.01 * s).pow(2).sum(-1) / (2 * 0.01)
    assert torch.allclose(chain_scores(x, m, [_ScoreOnly()], 0.1, 1.0, "mean"), expected)


class _ScoreOnly(torch.nn.Module):
    def score(self, x, sigma):
        return -x / (0.25 + sigma**2)


# ---- training entry points ---------------------------------------------------------------------

def test_score_prior_training_scales_noise_to_the_class_and_resumes(tmp_path):
    from sepcore.checkpoints import load_model
    from sepcore.train.fit import ConfigMismatch, FitPlan
    from sepcore.train.score_prior import ScoreTrainConfig, train_score_prior

    config = ScoreTrainConfig.quick().replace(source="square")
    plan = FitPlan(steps=6, warmup_steps=2, eval_every=3, checkpoint_every=3)
    out = tmp_path / "toy_square.pt"
    first = train_score_prior(config, plan, out)
    model = load_model(out, expect={"source": "square"}, expect_class=ScorePrior)
    c = model.config
    assert 0.5 < c.sigma_data < 0.95                      # a square of amplitude 0.8-1 has RMS = amplitude
    assert c.sigma_min == pytest.approx(config.sigma_lo * c.sigma_data, rel=1e-3)
    assert c.sigma_max == pytest.approx(config.sigma_hi * c.sigma_data, rel=1e-3)
    again = train_score_prior(config, plan, out)
    assert again.steps_done == first.steps_done == 6
    with pytest.raises(ConfigMismatch):
        train_score_prior(config.replace(batch_size=3), plan, out)


def test_flow_fit_writes_validation_history(tmp_path):
    from sepcore.checkpoints import load_model
    from sepcore.models.flow import FlowPrior
    from sepcore.train.fit import FitPlan
    from sepcore.train.flow import fit_flow

    out = tmp_path / "toy_sine.pt"
    messages = []
    fit_flow("toy", "sine", FitPlan(steps=4, warmup_steps=1, eval_every=2, checkpoint_every=2), out,
             profile="quick", val_crops=4, log=messages.append)
    history = load_model(out, expect_class=FlowPrior).checkpoint_info["metadata"]["history"]
    assert [row["step"] for row in history] == [2, 4]
    assert {"nll", "val_nll"} <= set(history[0]) and {"nll_clean", "nll_noisy"} <= set(history[-1])
    fit_flow("toy", "sine", FitPlan(steps=4, warmup_steps=1, eval_every=2, checkpoint_every=2), out,
             profile="quick", val_crops=4, log=messages.append)
    assert any("resuming at step 4" in m for m in messages)


class _Exploding(torch.nn.Module):
    def score(self, x, sigma):
        return torch.full_like(x, float("nan"))


def test_diverged_chains_fall_back_to_the_mixture_share_and_are_counted():
    config = LangevinConfig(n_levels=2, steps_per_level=2, sigma_max=0.3, sigma_min=0.1, epsilon=1e-3)
    m = torch.randn(3, 16)
    x, diagnostics = annealed_langevin(m, [_Exploding(), _Exploding()], config, torch.Generator().manual_seed(0),
                                       mixing="mean", device="cpu")
    assert torch.isfinite(x).all() and diagnostics[-1]["diverged_chains"] == 3
    assert torch.allclose(x, m[:, None].expand(3, 2, 16).clamp(-1, 1))


# ---- joint score model (MSDM) and refinement starts ----------------------------------------------

def test_joint_score_prior_denoises_every_channel_and_is_passed_once_per_source():
    """An untrained joint model is the Wiener denoiser on every channel; Langevin calls it once for all
    sources (the same module per source) and refuses it mixed with other priors."""
    prior = ScorePrior(ScorePriorConfig.quick().replace(sigma_data=0.3, n_sources=3))
    y = torch.randn(2, 3, 50)
    assert torch.allclose(prior.denoise(y, 0.2), 0.09 / (0.09 + 0.04) * y, atol=1e-6)
    assert prior.dsm_loss(y, torch.full((2,), 0.2), torch.randn(y.shape)).ndim == 0
    with pytest.raises(ValueError, match="expects"):
        prior.denoise(torch.randn(2, 50), 0.2)
    config = LangevinConfig(n_levels=2, steps_per_level=3, sigma_max=0.3, sigma_min=0.1, epsilon=1e-3)
    m = torch.randn(2, 50) * 0.2
    joint, _ = annealed_langevin(m, [prior] * 3, config, torch.Generator().manual_seed(1), device="cpu")
    assert joint.shape == (2, 3, 50) and torch.isfinite(joint).all()
    with pytest.raises(ValueError, match="joint score prior"):
        annealed_langevin(m, [prior, prior, ScoredGaussian(0.0, 0.3)], config, torch.Generator(), device="cpu")


def test_joint_training_stacks_independent_crops(tmp_path):
    from sepcore.train.fit import FitPlan
    from sepcore.train.score_prior import ScoreTrainConfig, crop_source, train_score_prior

    draw = crop_source("toy", "sine+square", "train", "quick")
    crops = draw(5, 128, torch.Generator().manual_seed(0))
    assert crops.shape == (5, 2, 128)
    config = ScoreTrainConfig.quick().replace(source="sine+square")
    out = tmp_path / "toy_joint.pt"
    train_score_prior(config, FitPlan(steps=4, warmup_steps=1, eval_every=2, checkpoint_every=2), out)
    from sepcore.checkpoints import load_model

    model = load_model(out, expect_class=ScorePrior)
    assert model.is_joint and model.config.n_sources == 2


def test_a_given_start_is_refined_on_the_constraint_plane():
    """With a tiny schedule the chain stays at its (mixture-derived) start, moved onto mix(x) = m."""
    priors = [ScoredGaussian(0.0, 0.5), ScoredGaussian(0.0, 0.5)]
    m = torch.randn(2, 16) * 0.3
    start = torch.randn(2, 2, 16) * 0.3
    config = LangevinConfig(n_levels=1, steps_per_level=1, sigma_max=1e-5, sigma_min=1e-5, epsilon=1e-12,
                            clamp=None, constraint="exact")
    out, _ = annealed_langevin(m, priors, config, torch.Generator().manual_seed(0), mixing="mean", device="cpu",
                               start=start)
    on_plane = start + (m - start.mean(1))[:, None]
    assert torch.allclose(out, on_plane, atol=1e-3)
    assert torch.allclose(out.mean(1), m, atol=1e-5)
    with pytest.raises(ValueError, match="start must be"):
        annealed_langevin(m, priors, config, torch.Generator(), device="cpu", start=start[:, :1])
