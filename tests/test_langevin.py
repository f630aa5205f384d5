"""Annealed Langevin on Gaussian priors, where the posterior given the mixture is closed form."""

import pytest
import torch

from sepcore.mixing import mix, mixing_weight, set_mixing
from sepcore.separation.langevin import (
    GaussianPrior,
    LangevinConfig,
    LangevinSeparator,
    annealed_langevin,
)


def test_schedule_is_geometric_with_basis_step_sizes():
    config = LangevinConfig(sigma_max=1.0, sigma_min=0.01, n_levels=10, epsilon=3e-5)
    sigmas = config.sigmas()
    assert sigmas[0] == pytest.approx(1.0) and sigmas[-1] == pytest.approx(0.01)
    ratios = sigmas[1:] / sigmas[:-1]
    assert torch.allclose(ratios, ratios[0].expand_as(ratios))
    assert torch.allclose(config.step_sizes(), 3e-5 * (sigmas / 0.01) ** 2)
    assert torch.allclose(config.weights(), 1 / sigmas**2)


def gaussian_posterior(means, stds, sigma, lam, w, m):
    """Per time step: precision diag(1/v) + lam w^2 11^T, mean = cov (mu / v + lam w m 1)."""
    v = torch.tensor(stds, dtype=torch.float64) ** 2 + sigma**2
    precision = torch.diag(1 / v) + lam * w**2 * torch.ones(len(v), len(v), dtype=torch.float64)
    cov = torch.linalg.inv(precision)
    mean = cov @ (torch.tensor(means, dtype=torch.float64) / v + lam * w * m)
    return mean, cov


@pytest.mark.parametrize("mixing", ["mean", "sum"])
def test_samples_match_closed_form_posterior(mixing):
    means, stds, sigma, m_value = [0.5, -0.3], [0.5, 1.0], 0.1, 0.4
    priors = [GaussianPrior(mu, s) for mu, s in zip(means, stds)]
    w = mixing_weight(2, mixing)
    weight = 1.0 / (100 * w**2)                      # lambda w^2 = 1 at sigma = 0.1
    config = LangevinConfig(sigma_max=sigma, sigma_min=sigma, n_levels=1, steps_per_level=1500,
                            epsilon=0.005, likelihood_weight=weight, init="noise", clamp=None)
    mixtures = torch.full((400, 8), m_value)         # 400 chains x 8 independent time steps
    samples, diagnostics = annealed_langevin(mixtures, priors, config, torch.Generator().manual_seed(0),
                                             mixing=mixing, device="cpu")
    flat = samples.permute(0, 2, 1).reshape(-1, 2).double()          # (chains * time, n_sources)
    mean, cov = gaussian_posterior(means, stds, sigma, float(config.weights()[0]), w, m_value)
    assert torch.allclose(flat.mean(0), mean, atol=0.03)
    assert torch.allclose(torch.cov(flat.T), cov, rtol=0.1, atol=0.01)
    assert len(diagnostics) == 1 and diagnostics[0]["sigma"] == pytest.approx(sigma)


def test_strong_likelihood_enforces_the_mixture_convention():
    """The posterior residual m - mix(x) has variance below 1/lambda_L = sigma_L^2, for either
    convention; a sampler that compared the sum with a mean mixture would miss by far more."""
    priors = [GaussianPrior(0.0, 1.0) for _ in range(3)]
    for mixing in ("mean", "sum"):
        with set_mixing(mixing):
            config = LangevinConfig(n_levels=4, steps_per_level=300, epsilon=1e-4, sigma_max=0.5,
                                    sigma_min=0.05, clamp=None, likelihood_weight=1.0)
            m = torch.randn(4, 64) * 0.3
            x, diagnostics = annealed_langevin(m, priors, config, torch.Generator().manual_seed(1), device="cpu")
            assert x.shape == (4, 3, 64)
            rms = float((mix(x) - m).pow(2).mean().sqrt())
            assert rms < 1.5 * config.sigma_min
            assert diagnostics[-1]["residual_rms"] == pytest.approx(rms, rel=1e-4)
            wrong = float((x.sum(1) - m).pow(2).mean().sqrt()) if mixing == "mean" else float((x.mean(1) - m).pow(2).mean().sqrt())
            assert wrong > 3 * rms


def test_seeded_runs_are_identical_and_separator_shapes():
    priors = [GaussianPrior(0.0, 1.0), GaussianPrior(0.2, 0.5)]
    config = LangevinConfig.quick()
    a = LangevinSeparator(priors, config, device="cpu", seed=3).separate(torch.linspace(-0.5, 0.5, 30))
    b = LangevinSeparator(priors, config, device="cpu", seed=3).separate(torch.linspace(-0.5, 0.5, 30))
    assert a.shape == (2, 30) and torch.equal(a, b)
    assert a.abs().max() <= config.clamp


def test_projection_makes_the_mixture_exact():
    priors = [GaussianPrior(0.0, 1.0) for _ in range(4)]
    config = LangevinConfig(n_levels=2, steps_per_level=5, clamp=None, project=True)
    m = torch.randn(3, 24) * 0.2
    x, _ = annealed_langevin(m, priors, config, torch.Generator().manual_seed(0), device="cpu")
    assert torch.allclose(mix(x), m, atol=1e-5)


def test_flow_priors_pad_to_their_multiple():
    from sepcore.models.flow import FlowConfig, FlowPrior
    priors = [FlowPrior(FlowConfig(n_blocks=2, n_flows=1, n_layers=2, width=4)) for _ in range(2)]
    for prior in priors:
        prior.log_prob(torch.randn(2, 16), 0.0)
    config = LangevinConfig(n_levels=2, steps_per_level=2)
    x, _ = annealed_langevin(torch.randn(1, 30) * 0.1, priors, config, torch.Generator().manual_seed(0), device="cpu")
    assert x.shape == (1, 2, 30) and torch.isfinite(x).all()


def test_single_level_from_a_start_matches_the_annealed_sampler_at_one_level():
    """langevin_level is the same update: from the same start and noise it gives the same chain."""
    from sepcore.separation.langevin import langevin_level
    priors = [GaussianPrior(0.0, 1.0), GaussianPrior(0.3, 0.5)]
    m = torch.randn(2, 16) * 0.3
    start = torch.zeros(2, 2, 16)
    a, log_p = langevin_level(start, m, priors, 0.1, 1e-3, 1.0, 50, torch.Generator().manual_seed(0))
    assert a.shape == start.shape and log_p.shape == (2, 2)
    b, _ = langevin_level(start, m, priors, 0.1, 1e-3, 1.0, 50, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    # the chain is pulled towards the mixture: mean residual shrinks from the zero start
    assert (mix(a) - m).pow(2).mean() < m.pow(2).mean()


@pytest.mark.parametrize("profile, retrain, trains", [("default", False, False), ("default", True, True),
                                                      ("quick", False, True), ("full", False, True)])
def test_only_default_loads_the_committed_flows(monkeypatch, profile, retrain, trains):
    """``full`` trains at its own sizes instead of silently loading the small default flows."""
    import sepcore.pretrained as priors_module
    import sepcore.train.flow as train_flow_module
    from sepcore.models.flow import FlowConfig, FlowPrior
    from sepcore.paths import flow_prior_path

    calls = []

    def fake_train(dataset, source, profile, seed, data_root, log, device="auto"):
        calls.append(profile)
        return f"trained-{profile}.pt"

    def fake_load(path, expect=None, expect_class=None):
        model = FlowPrior(FlowConfig(n_blocks=2, n_flows=1, n_layers=2, width=4))
        model.checkpoint_info = {"metadata": {"history": [], "wall_seconds": 0.0, "steps_done": 0}, "path": str(path)}
        loaded.append(str(path))
        return model

    loaded = []
    monkeypatch.setattr(train_flow_module, "train_on_the_fly", fake_train)
    monkeypatch.setattr(priors_module, "load_model", fake_load)
    _, info = priors_module.get_flow_priors(["sine"], profile, retrain=retrain)
    assert bool(calls) == trains and (info["sine"]["path"] is None) == trains
    assert loaded == ([f"trained-{profile}.pt"] if trains else [str(flow_prior_path("toy", "sine"))])


@pytest.mark.parametrize("profile, retrain, trains", [("default", False, False), ("default", True, True),
                                                      ("quick", False, True), ("full", False, True)])
def test_only_default_loads_the_committed_score_priors(monkeypatch, profile, retrain, trains):
    """As for the flows: ``full`` trains on its own data instead of loading the embedded dataset's priors."""
    import sepcore.pretrained as pretrained
    import sepcore.train.score_prior as train_score_module

    calls, loaded = [], []
    monkeypatch.setattr(train_score_module, "train_on_the_fly",
                        lambda dataset, source, profile, **_: calls.append(profile) or f"trained-{profile}.pt")
    monkeypatch.setattr(pretrained, "load_model", lambda path, **_: loaded.append(str(path)) or torch.nn.Identity())
    priors = pretrained.get_score_priors(["drums"], profile, dataset="slakh", retrain=retrain)
    assert list(priors) == ["drums"] and bool(calls) == trains
    assert loaded == ([f"trained-{profile}.pt"] if trains else [str(pretrained.CHECKPOINTS / "score" / "slakh_drums.pt")])


def test_a_missing_committed_score_prior_names_the_command(monkeypatch, tmp_path):
    import sepcore.pretrained as pretrained

    monkeypatch.setattr(pretrained, "CHECKPOINTS", tmp_path)
    with pytest.raises(FileNotFoundError, match="sepcore.train.score_prior --dataset toy --sources sine"):
        pretrained.get_score_priors(["sine"], "default")


def test_the_on_the_fly_score_plan_is_a_smoke_test_only_in_quick():
    from sepcore.train.score_prior import on_the_fly_plan

    assert on_the_fly_plan("quick").steps == 30
    assert on_the_fly_plan("full").steps > 10 * on_the_fly_plan("quick").steps and on_the_fly_plan("full").patience == 10
