"""Blind baselines: each on a synthetic case where its model holds exactly and it must succeed."""

import numpy as np
import pytest
import torch

from sepcore.metrics import sdr
from sepcore.mixing import mix, set_mixing
from sepcore.separation.blind import METHODS, BlindSeparator, class_order, compute_masks
from sepcore.separation.blind.factorisation import fastica_unmix
from sepcore.separation.blind.repet import beat_spectrum, repeating_period
from sepcore.separation.blind.rpca import robust_pca

SR = 22050
HOP = 512


def _loop_and_melody(n_periods=8, period_frames=32, seed=0):
    """A bass loop repeated exactly every ``period_frames`` STFT hops, and a melody that never repeats."""
    rng = np.random.default_rng(seed)
    period = HOP * period_frames
    n = period * n_periods
    k = np.arange(period // 4)
    pattern = np.concatenate([0.5 * np.sin(2 * np.pi * f * k / SR) * np.hanning(len(k)) for f in (110, 165, 147, 220)])
    background = np.tile(pattern, n_periods)
    foreground = np.zeros(n)
    note = SR // 4
    kk = np.arange(note)
    for i in range(n // note):
        f = rng.uniform(600, 2000)
        foreground[i * note:(i + 1) * note] = 0.4 * np.sin(2 * np.pi * f * kk / SR) * np.hanning(note)
    return torch.tensor(np.stack([foreground, background]), dtype=torch.float32)   # (drums-like, bass-like)


def _clicks_and_tone(seed=0, n=2 * 65536):
    rng = np.random.default_rng(seed)
    clicks = np.zeros(n)
    clicks[rng.integers(0, n, size=20)] = 1.0
    clicks = np.convolve(clicks, np.exp(-np.arange(200) / 20), mode="same")
    tone = 0.5 * np.sin(2 * np.pi * 220 * np.arange(n) / SR)
    return torch.tensor(np.stack([clicks, tone]), dtype=torch.float32)


def _high_and_low(n=2 * 65536):
    t = np.arange(n) / SR
    high = 0.4 * np.sin(2 * np.pi * 2500 * t) * (1 + np.sin(2 * np.pi * 1.3 * t)) / 2
    low = 0.5 * np.sin(2 * np.pi * 100 * t) * (1 + np.sin(2 * np.pi * 0.7 * t)) / 2
    return torch.tensor(np.stack([high, low]), dtype=torch.float32)


def _score(method, sources, **options):
    estimates = BlindSeparator(method, ("drums", "bass"), SR, **options)(mix(sources))
    return sdr(sources, estimates, SR).numpy()


def test_rpca_recovers_low_rank_plus_sparse():
    rng = np.random.default_rng(0)
    low_rank = rng.standard_normal((80, 2)) @ rng.standard_normal((2, 60))
    sparse = np.zeros((80, 60))
    support = rng.random((80, 60)) < 0.05
    sparse[support] = rng.choice([-10.0, 10.0], size=support.sum())
    low, spr, _ = robust_pca(low_rank + sparse, tol=1e-9, max_iter=1000)
    assert np.linalg.norm(low - low_rank) / np.linalg.norm(low_rank) < 1e-4
    assert np.linalg.norm(spr - sparse) / np.linalg.norm(sparse) < 1e-4


def test_fastica_unmixes_a_determined_instantaneous_mixture():
    rng = np.random.default_rng(0)
    t = np.arange(20000)
    sources = np.stack([np.sign(np.sin(2 * np.pi * t / 97.0)), rng.laplace(size=t.size)])
    observations = np.array([[1.0, 0.6], [0.4, 1.0]]) @ sources
    recovered, mixing = fastica_unmix(observations, 2)
    correlation = np.abs(np.corrcoef(np.vstack([sources, recovered]))[:2, 2:])
    assert correlation.max(1).min() > 0.999                     # each source found, up to order and scale
    # the model reconstructs the observations
    reconstruction = mixing @ recovered + observations.mean(1, keepdims=True)
    np.testing.assert_allclose(reconstruction, observations, atol=1e-8)


def test_beat_spectrum_finds_the_exact_period():
    period = 17
    rng = np.random.default_rng(1)
    pattern = rng.random((30, period))
    power = np.tile(pattern, (1, 9))
    assert repeating_period(beat_spectrum(power), 5, power.shape[1] // 3) == period


def test_repet_separates_a_strictly_repeating_background():
    sources = _loop_and_melody()
    repet = _score("repet", sources)
    assert repet.min() > 12.0
    assert repet.mean() > _score("hpss", sources).mean() + 5.0      # the repetition is what it uses


def test_repet_sim_and_ft2d_separate_a_repeating_background():
    sources = _loop_and_melody()
    assert _score("repet_sim", sources).min() > 5.0
    assert _score("ft2d", sources).min() > 10.0


def test_hpss_separates_clicks_from_a_sustained_tone():
    scores = _score("hpss", _clicks_and_tone())
    assert scores[0] > 4.0 and scores[1] > 15.0


@pytest.mark.parametrize("method", ["nmf", "ica"])
def test_factorisations_separate_disjoint_registers(method):
    # the centroid rule sends the 2.5 kHz component to drums and the 100 Hz one to bass
    assert _score(method, _high_and_low()).min() > 15.0


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mixing", ["mean", "sum"])
def test_masks_are_complementary_and_estimates_remix_to_the_mixture(method, mixing):
    sources = _clicks_and_tone(n=16384)
    with set_mixing(mixing):
        mixture = mix(sources)
        masks = compute_masks(method, mixture, SR)
        estimates = BlindSeparator(method, ("bass", "drums"), SR)(mixture)
        remixed = mix(estimates)
    assert masks.min() >= 0 and masks.max() <= 1
    np.testing.assert_allclose(masks.sum(0), 1.0, atol=1e-9)
    torch.testing.assert_close(remixed, mixture, atol=1e-5, rtol=0)


def test_class_assignment_rule_is_fixed_and_ordered():
    assert class_order(("drums", "bass")) == [0, 1]
    assert class_order(("bass", "drums")) == [1, 0]
    assert class_order(("guitar", "bass")) == [0, 1]
    assert class_order(("piano", "drums")) == [1, 0]
    with pytest.raises(ValueError, match="two sources"):
        class_order(("drums", "bass", "piano"))
    # the same mixture with the classes swapped gives the same estimates, swapped
    sources = _clicks_and_tone(n=16384)
    a = BlindSeparator("hpss", ("drums", "bass"), SR)(mix(sources))
    b = BlindSeparator("hpss", ("bass", "drums"), SR)(mix(sources))
    torch.testing.assert_close(a, b.flip(0))


def test_mixture_consistent_estimates_couple_the_two_sdrs():
    # estimates that add up to the mixture have equal and opposite errors, so in one window
    # SDR_1 - SDR_2 = 10 log10(||s_1||^2 / ||s_2||^2) whatever the method
    sources = _clicks_and_tone(n=16384)
    energy_ratio = 10 * torch.log10(sources[0].pow(2).sum() / sources[1].pow(2).sum())
    for method in ("hpss", "nmf"):
        scores = sdr(sources, BlindSeparator(method, ("drums", "bass"), SR)(mix(sources)), SR, window_s=1.0, hop_s=1.0)
        assert float(scores[0] - scores[1]) == pytest.approx(float(energy_ratio), abs=1e-3)
