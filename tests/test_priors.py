"""Cross-likelihood and discrimination on Gaussian priors, where every entry is known."""

import math

import torch

from sepcore.models.priors import (
    cross_likelihood,
    denoising_gain,
    discrimination,
    score_rms,
    training_table,
)
from sepcore.separation.langevin import GaussianPrior


def expected_log_prob(v_data, v_prior, sigma):
    """E[log N(x; 0, v_prior + s^2)] for x ~ N(0, v_data + s^2), per sample."""
    a, b = v_data + sigma**2, v_prior + sigma**2
    return -0.5 * math.log(2 * math.pi * b) - 0.5 * a / b


def test_cross_likelihood_matches_closed_form_and_noise_erodes_the_margin():
    stds = {"narrow": 0.1, "wide": 1.0}
    priors = {name: GaussianPrior(0.0, s) for name, s in stds.items()}
    generator = torch.Generator().manual_seed(0)
    data = {name: s * torch.randn(64, 2048, generator=generator) for name, s in stds.items()}
    frame = cross_likelihood(priors, data, [0.0, 1.0], generator)
    for row in frame.itertuples():
        want = expected_log_prob(stds[row.data] ** 2, stds[row.prior] ** 2, row.sigma)
        assert abs(row.log_prob - want) < 0.02 + 0.01 * abs(want)
    summary = discrimination(frame).set_index("sigma")
    assert summary.loc[0.0, "accuracy"] == 1.0
    assert summary.loc[0.0, "margin"] > summary.loc[1.0, "margin"] > 0


def test_score_rms_of_a_gaussian():
    """The score of N(0, v + s^2) is -x / (v + s^2), whose RMS is 1 / sqrt(v + s^2)."""
    prior = GaussianPrior(0.0, 0.5)
    generator = torch.Generator().manual_seed(1)
    clean = 0.5 * torch.randn(8, 4096, generator=generator)
    for sigma in (0.0, 0.3):
        assert abs(score_rms(prior, clean, sigma, generator) - (0.25 + sigma**2) ** -0.5) < 0.03


def test_denoising_gain_is_the_posterior_mean_gain_for_a_gaussian():
    """For x ~ N(0, s^2) and the exact prior, Tweedie's estimate is the posterior mean
    y s^2 / (s^2 + sigma^2), whose error has variance s^2 sigma^2 / (s^2 + sigma^2)."""
    generator = torch.Generator().manual_seed(0)
    s = 0.5
    clean = s * torch.randn(64, 4096, generator=generator, dtype=torch.float64)
    for sigma in (0.1, 0.5, 2.0):
        row = denoising_gain(GaussianPrior(0.0, s), clean, sigma, generator)
        assert abs(row["snr_in_db"] - 10 * math.log10(s**2 / sigma**2)) < 0.05
        assert abs(row["gain_db"] - 10 * math.log10((s**2 + sigma**2) / s**2)) < 0.05
    # a prior that ignores the data (huge variance) leaves the noisy input as it is: no gain
    assert abs(denoising_gain(GaussianPrior(0.0, 1e4), clean, 0.5, generator)["gain_db"]) < 1e-3


def test_training_table_reads_the_history_and_the_checkpoint(tmp_path):
    from sepcore.models.flow import FlowConfig, FlowPrior

    prior = FlowPrior(FlowConfig.quick())
    path = tmp_path / "p.pt"
    path.write_bytes(b"x" * 2_000_000)
    history = [{"nll_clean": -1.0, "nll_noisy": 0.5}, {"nll_clean": -2.0, "nll_noisy": 0.25}]
    info = {"a": {"path": path, "history": history, "steps_done": 7, "wall_seconds": 90.0},
            "b": {"path": None, "history": history, "steps_done": 3, "wall_seconds": 30.0}}
    table = training_table({"a": prior, "b": prior}, info).set_index("prior")
    assert table.loc["a", "parameters"] == sum(p.numel() for p in prior.parameters())
    assert table.loc["a", "train_minutes"] == 1.5 and table.loc["a", "checkpoint_MB"] == 2.0
    assert table.loc["b", "final_nll_clean"] == -2.0 and math.isnan(table.loc["b", "checkpoint_MB"])


def test_leakage_of_a_gaussian_prior_is_its_linear_shrinkage():
    """A Gaussian prior N(0, tau^2) denoises by the linear factor tau^2 / (tau^2 + sigma^2): it keeps
    its own class and every other class by that same factor (it cannot tell them apart)."""
    from sepcore.models.priors import leakage
    from sepcore.separation.langevin import GaussianPrior

    tau = 0.5
    g = torch.Generator().manual_seed(0)
    clean = {"a": torch.randn(64, 2048, generator=g, dtype=torch.float64),
             "b": torch.randn(64, 2048, generator=g, dtype=torch.float64)}
    frame = leakage({"a": GaussianPrior(0.0, tau)}, clean, [0.1, 1.0], g, mixing_weight=1.0)
    assert list(frame.other) == ["b", "b"]
    for row in frame.itertuples():
        factor = tau**2 / (tau**2 + row.sigma**2)
        assert abs(row.own - factor) < 0.02 and abs(row.kept - factor) < 0.02
