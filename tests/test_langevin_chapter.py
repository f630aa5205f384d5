"""The Langevin chapter's experiment functions (sepcore.experiments.langevin_chapter), on Gaussian
priors where the noisy log-density and the posterior-mean denoiser are closed form."""

import math

import pytest
import torch

from sepcore.data.toy import ToyConfig, ToyDataset
from sepcore.experiments import langevin_chapter as lc
from sepcore.separation.langevin import GaussianPrior, LangevinConfig


@pytest.mark.parametrize("profile", ["quick", "default"])
def test_the_ablation_grid_holds_the_chapters_schedule_and_the_no_likelihood_variant(profile):
    config, schedule = lc.LangevinChapterConfig.for_profile(profile), LangevinConfig.for_profile(profile)
    labels = [label for label, _ in lc.schedule_variants(schedule, config)]
    assert f"L={schedule.n_levels}, steps={schedule.steps_per_level}" in labels     # the chapter reads this row
    assert "w_λ=0.0" in labels
    music = dict(lc.schedule_variants(LangevinConfig.music(profile), config, music=True))
    assert music["w_λ=0.0"].likelihood_weight == 0.0
    assert len(music) == len(config.music_grid) + 1


def test_truth_log_prior_matches_the_gaussian_closed_form():
    # truth ~ N(0, s^2) plus noise sigma: y ~ N(0, s^2 + sigma^2), E log p(y) = -log(2 pi v)/2 - 1/2
    s = 0.5
    truth = s * torch.randn(4, 2, 20000, generator=torch.Generator().manual_seed(0))
    sigmas = [0.1, 1.0]
    values = lc.truth_log_prior([GaussianPrior(0.0, s), GaussianPrior(0.0, s)], truth, sigmas, seed=1)
    for sigma, value in zip(sigmas, values):
        variance = s**2 + sigma**2
        assert value == pytest.approx(-0.5 * math.log(2 * math.pi * variance) - 0.5, abs=0.01)


def test_denoising_table_gives_the_wiener_gain_of_a_gaussian_prior():
    # for x ~ N(0, s^2), Tweedie's denoiser is the Wiener filter s^2 / (s^2 + sigma^2) y: its error
    # variance is s^2 sigma^2 / (s^2 + sigma^2), so the SNR goes from s^2 / sigma^2 to
    # (s^2 + sigma^2) / sigma^2, a gain of 10 log10((s^2 + sigma^2) / s^2)
    s, sigma = 1.0, 1.0
    truth = s * torch.randn(2, 1, 50000, generator=torch.Generator().manual_seed(0))
    table = lc.denoising_table({"a": GaussianPrior(0.0, s)}, truth, [sigma], seed=2)
    assert list(table.prior) == ["a"] and float(table.sigma.iloc[0]) == sigma
    assert float(table.gain_db.iloc[0]) == pytest.approx(10 * math.log10((s**2 + sigma**2) / s**2), abs=0.1)


def test_separate_scored_keeps_the_evaluation_order_and_times_the_batches():
    dataset = ToyDataset(ToyConfig.quick().replace(length=64, waveforms=("sine", "square")), "test", n_items=3)
    priors = [GaussianPrior(0.0, 0.5), GaussianPrior(0.0, 0.5)]
    run = lc.separate_scored(dataset, priors, LangevinConfig.quick(), "langevin", seed=0, batch_size=2)
    assert run.estimates.shape == (3, 2, 64)
    assert len(run.scores) == 3 * 2 and set(run.scores.source) == {"sine", "square"}
    assert run.seconds_per_second > 0 and run.diagnostics
    table, _ = lc.toy_separation(dataset, priors, LangevinConfig.quick(), seed=0)
    assert set(table.source) == {"sine", "square", "all"}
    assert (table[table.method != "langevin"].seconds_per_second == 0).all()


def test_start_at_truth_with_no_steps_returns_the_noisy_truth():
    dataset = ToyDataset(ToyConfig.quick().replace(length=256, waveforms=("sine", "square")), "test", n_items=2)
    schedule = LangevinConfig.quick()
    scores = lc.start_at_truth(dataset, [GaussianPrior(0.0, 0.5)] * 2, schedule, steps=0, seed=0)
    # no step: the estimate is the truth plus noise of the last level, so its SDR is about the input
    # SNR (museval's SDR allows a short distortion filter, which can only remove error)
    sigma = float(schedule.sigmas()[-1])
    snr = {(dataset[i]["id"], name): 10 * math.log10(float(dataset[i]["sources"][k].pow(2).mean()) / sigma**2)
           for i in range(2) for k, name in enumerate(dataset.classes)}
    for row in scores.itertuples():
        assert snr[(row.id, row.source)] - 1.5 <= row.sdr <= snr[(row.id, row.source)] + 3   # 256 noise samples: ±0.4 dB
