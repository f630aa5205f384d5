"""Frank's toy generator: frequencies, ranges, shapes, determinism."""

import numpy as np
import pytest
import torch

from sepcore.data.toy import (
    ToyConfig,
    ToyDataset,
    class_statistics,
    key_to_frequency,
    similarity_table,
    waveform,
)
from sepcore.mixing import set_mixing


def test_key_to_frequency_anchor_points():
    assert key_to_frequency(49) == pytest.approx(440.0)
    assert key_to_frequency(61) == pytest.approx(880.0)
    lo, hi = key_to_frequency(0.1), key_to_frequency(64.9)
    assert 26 < lo < 28 and 1050 < hi < 1120


@pytest.mark.parametrize("kind", ["sine", "square", "sawtooth", "triangle"])
def test_waveform_period_and_range(kind):
    sr, f = 14700, 147.0  # exactly 100 samples per period
    wave = waveform(kind, f, phase=0.25, amplitude=0.9, length=1000, sample_rate=sr)
    # periodic: the wave one period later is the same (a square wave may flip at a jump sample)
    assert np.mean(np.abs(wave[:-100] - wave[100:]) > 1e-4) < 0.01
    assert np.abs(wave).max() <= 0.9 + 1e-6
    assert np.abs(wave).max() > 0.85


def test_waveform_shapes_have_expected_histograms():
    sr, f = 14700, 147.0
    square = waveform("square", f, 0.1, 1.0, 14700, sr)
    assert set(np.round(np.unique(square), 5)) <= {-1.0, 1.0}
    triangle = waveform("triangle", f, 0.1, 1.0, 14700, sr)
    hist, _ = np.histogram(triangle, bins=10, range=(-1, 1))
    assert hist.max() / hist.min() < 1.3  # uniform amplitude distribution


def test_item_ranges_and_mixture():
    ds = ToyDataset(ToyConfig.quick(), "test")
    for i in range(len(ds)):
        params = ds.parameters(i)
        assert ((params["key"] >= 0.1) & (params["key"] <= 64.9)).all()
        assert ((params["amplitude"] >= 0.8) & (params["amplitude"] <= 1.0)).all()
        assert ((params["phase"] >= 0) & (params["phase"] < 1)).all()
        item = ds[i]
        assert item["sources"].shape == (4, ds.config.length)
        torch.testing.assert_close(item["mixture"], item["sources"].mean(0))


def test_dominant_frequency_matches_parameters():
    ds = ToyDataset(ToyConfig(), "test", n_items=3)
    for i in range(3):
        sine = ds[i]["sources"][0].numpy()
        spectrum = np.abs(np.fft.rfft(sine))
        peak = np.argmax(spectrum) * ds.sample_rate / len(sine)
        assert abs(peak - ds.parameters(i)["frequency"][0]) < ds.sample_rate / len(sine)


def test_determinism_and_split_independence():
    cfg = ToyConfig.quick()
    a, b = ToyDataset(cfg, "train"), ToyDataset(cfg, "train")
    torch.testing.assert_close(a[5]["sources"], b[5]["sources"])
    assert a.manifest_hash == b.manifest_hash
    test = ToyDataset(cfg, "test")
    assert not torch.equal(a[0]["sources"], test[0]["sources"])
    assert a.manifest_hash != test.manifest_hash
    other_seed = ToyDataset(cfg.replace(seed=1), "train")
    assert not torch.equal(a[0]["sources"], other_seed[0]["sources"])


def test_sum_mixing_and_subset_of_sources():
    cfg = ToyConfig.quick().replace(waveforms=("sine", "square"))
    with set_mixing("sum"):
        ds = ToyDataset(cfg, "test")
    item = ds[0]
    assert item["sources"].shape[0] == 2
    torch.testing.assert_close(item["mixture"], item["sources"].sum(0))


def test_bad_config_raises():
    with pytest.raises(ValueError, match="unknown waveforms"):
        ToyConfig(waveforms=("sine", "noise"))
    with pytest.raises(ValueError, match="Nyquist"):
        ToyConfig(sample_rate=2000)
    with pytest.raises(ValueError, match="split"):
        ToyDataset(ToyConfig.quick(), "dev")


def test_class_statistics_match_the_items_and_the_generator():
    dataset = ToyDataset(ToyConfig.quick(), "test")
    stats = class_statistics(dataset, n_items=3).set_index("class")
    square = torch.stack([dataset[i]["sources"][dataset.classes.index("square")] for i in range(3)])
    assert stats.loc["square", "rms"] == pytest.approx(float(square.pow(2).mean().sqrt()), rel=1e-6)
    assert stats.loc["square", "max"] <= 1.0 and stats.loc["square", "min"] >= -1.0
    low, high = (key_to_frequency(k) for k in dataset.config.key_range)
    assert (stats.f_min_hz >= low - 1e-6).all() and (stats.f_max_hz <= high + 1e-6).all()
    assert (stats.f_min_hz <= stats.f_median_hz).all() and (stats.f_median_hz <= stats.f_max_hz).all()


def test_class_similarity_is_the_share_of_the_fundamental():
    """Over whole periods a unit sine explains 2 sqrt(2) / pi of a square wave (its fundamental's
    amplitude 4 / pi over its RMS 1, times the sine's RMS 1 / sqrt 2) and 8 sqrt(3) / (pi^2 sqrt 2)
    of a triangle (fundamental 8 / pi^2, RMS 1 / sqrt 3); every class explains itself fully."""
    table = similarity_table(("sine", "square", "triangle"), frequency=245.0, length=6000, sample_rate=14700)
    assert np.allclose(np.diag(table.to_numpy()), 1.0, atol=1e-5)
    assert table.loc["sine", "square"] == pytest.approx(2 * np.sqrt(2) / np.pi, abs=2e-3)
    assert table.loc["sine", "triangle"] == pytest.approx(8 * np.sqrt(3) / (np.pi ** 2 * np.sqrt(2)), abs=2e-3)
