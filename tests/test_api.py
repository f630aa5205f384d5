"""The separator API: registry, chunked overlap-add, the naive methods, determinism."""

import math

import pytest
import torch

import sepcore
from sepcore import api
from sepcore.chunking import chunk_starts, chunked, crossfade_window
from sepcore.mixing import mix, set_mixing
from sepcore.separation.naive import average, crossover


@pytest.fixture
def temporary_method():
    """Register methods for one test and remove them afterwards."""
    added = []

    def register(name, factory, **kwargs):
        kwargs.setdefault("description", "test method")
        kwargs.setdefault("needs_checkpoint", False)
        added.append(name)
        return api.register_method(name, factory, **kwargs)

    yield register
    for name in added:
        api._REGISTRY.pop(name, None)


# ----------------------------------------------------------------------------- chunking

@pytest.mark.parametrize("chunk_length,overlap,k", [(100, 20, 5), (64, 32, 3), (50, 0, 4), (101, 7, 2)])
def test_crossfade_windows_partition_unity_on_the_regular_grid(chunk_length, overlap, k):
    """For length = L + k*hop the raw windows (no normalisation) sum to exactly one: sin^2 + cos^2 = 1."""
    hop = chunk_length - overlap
    length = chunk_length + k * hop
    starts = chunk_starts(length, chunk_length, overlap)
    assert starts == [i * hop for i in range(k + 1)]
    total = torch.zeros(length, dtype=torch.float64)
    for i, start in enumerate(starts):
        total[start:start + chunk_length] += crossfade_window(
            chunk_length, overlap, rise=i > 0, fall=i < len(starts) - 1, dtype=torch.float64)
    assert torch.allclose(total, torch.ones(length, dtype=torch.float64), atol=1e-12)


def test_crossfade_ramp_is_raised_cosine():
    window = crossfade_window(40, 8, dtype=torch.float64)
    t = torch.arange(8, dtype=torch.float64)
    assert torch.allclose(window[:8], torch.sin(0.5 * math.pi * (t + 0.5) / 8) ** 2)
    assert torch.allclose(window[-8:], window[:8].flip(0))                # the fall mirrors the rise
    assert torch.allclose(window[:8] + window[:8].flip(0), torch.ones(8, dtype=torch.float64))  # and they sum to one
    assert torch.all(window[8:-8] == 1)


@pytest.mark.parametrize("length", [1000, 1037, 333, 100, 57])
def test_chunked_identity_like_separator_reconstructs_exactly(length):
    """An estimator that returns (x, -2x) for every chunk gives back (m, -2m) bit for bit."""
    mixture = torch.randn(length, generator=torch.Generator().manual_seed(length))
    calls = []

    def identity_like(chunk):
        calls.append(chunk.shape[-1])
        return torch.stack([chunk, -2 * chunk])

    out = chunked(identity_like, chunk_length=100, overlap=25, show_progress=False)(mixture)
    assert out.shape == (2, length)
    assert torch.equal(out[0], mixture)
    assert torch.equal(out[1], -2 * mixture)
    assert all(n == min(100, length) for n in calls)          # no padding is ever fed to the method


def test_chunked_blends_neighbouring_estimates_with_the_window():
    """Chunk i answers the constant i; inside an overlap the output follows the crossfade."""
    counter = iter(range(100))

    def constant(chunk):
        return torch.full((1, chunk.shape[-1]), float(next(counter)))

    out = chunked(constant, chunk_length=40, overlap=10, show_progress=False)(torch.zeros(40 + 30 * 3))[0]
    ramp = crossfade_window(40, 10, dtype=torch.float32)[:10]
    assert torch.allclose(out[30:40], 0 * (1 - ramp) + 1 * ramp, atol=1e-6)
    assert torch.all(out[10:30] == 0) and torch.all(out[40:60] == 1)


# ----------------------------------------------------------------------------- naive methods

@pytest.mark.parametrize("convention", ["mean", "sum"])
@pytest.mark.parametrize("n_sources", [2, 4])
def test_average_is_the_mixture_consistent_equal_split(convention, n_sources):
    mixture = torch.randn(500)
    with set_mixing(convention):
        estimates = average(mixture, n_sources)
        assert torch.allclose(mix(estimates), mixture, atol=1e-6)
    expected = mixture if convention == "mean" else mixture / n_sources
    assert torch.allclose(estimates, expected.expand(n_sources, -1))


@pytest.mark.parametrize("convention", ["mean", "sum"])
def test_crossover_sends_low_tone_to_bass_and_stays_mixture_consistent(convention):
    rate = 8000
    t = torch.arange(2 * rate) / rate
    low, high = 0.5 * torch.sin(2 * math.pi * 60 * t), 0.5 * torch.sin(2 * math.pi * 1000 * t)
    with set_mixing(convention):
        mixture = mix(torch.stack([high, low]))                        # (drums=high, bass=low)
        estimates = crossover(mixture, rate, cutoff_hz=300.0, low_index=1)
        assert torch.allclose(mix(estimates), mixture, atol=1e-5)
    w = 0.5 if convention == "mean" else 1.0
    inner = slice(2048, -2048)                                         # away from the STFT edges
    assert torch.allclose(estimates[1, inner] * w, w * low[inner], atol=2e-3)
    assert torch.allclose(estimates[0, inner] * w, w * high[inner], atol=2e-3)


# ----------------------------------------------------------------------------- registry and separate()

def test_registry_lists_builtin_methods_and_their_knobs():
    names = [spec.name for spec in sepcore.list_methods()]
    assert {"average", "crossover"} <= set(names) and names == sorted(names)
    assert api.get_method("average").knobs() == {}
    knobs = api.get_method("crossover").knobs()
    assert knobs["cutoff_hz"].default == 150.0 and knobs["low_source"].default == "bass"


def test_missing_optional_dependency_does_not_break_the_registry(temporary_method):
    temporary_method("needs-missing", "sepcore_missing_dependency.module:make")
    assert "needs-missing" in [spec.name for spec in sepcore.list_methods()]
    available, reason = api.get_method("needs-missing").availability()
    assert not available and "sepcore_missing_dependency" in reason
    with pytest.raises(api.MethodUnavailable, match="sepcore_missing_dependency"):
        sepcore.separate(torch.randn(1000), method="needs-missing", sample_rate=1000)


def test_clear_errors_for_unknown_method_knob_and_missing_checkpoint(temporary_method):
    with pytest.raises(KeyError, match="average"):
        sepcore.separate(torch.randn(100), method="no-such-method", sample_rate=100)
    with pytest.raises(TypeError, match="cutoff_hz"):
        sepcore.separate(torch.randn(8000), method="crossover", sample_rate=8000, sigma=0.1)
    temporary_method("trained", api.get_method("average").factory, needs_checkpoint=True)
    with pytest.raises(ValueError, match="needs a checkpoint"):
        sepcore.separate(torch.randn(100), method="trained", sample_rate=100)
    with pytest.raises(ValueError, match="NaN"):
        sepcore.separate(torch.tensor([0.1, float("nan")] * 100), method="average", sample_rate=100)
    with pytest.raises(ValueError, match=r"\(time,\)"):
        sepcore.separate(torch.randn(2, 100), method="average", sample_rate=100)


def _noisy_factory(sources, *, seed=0, device="cpu", scale: float = 0.1, **_unused):
    """A stochastic method: the average plus seeded noise, drawn on the fly."""
    generator = torch.Generator().manual_seed(seed)

    def separate(mixture):
        noise = torch.randn(len(sources), mixture.shape[-1], generator=generator)
        return average(mixture, len(sources)) + scale * noise

    return separate


def test_same_seed_gives_identical_stems(temporary_method):
    temporary_method("noisy", _noisy_factory, chunk_seconds=0.5, overlap_seconds=0.1)
    mixture = torch.randn(3000)
    first = sepcore.separate(mixture, method="noisy", sample_rate=1000, seed=3, show_progress=False)
    second = sepcore.separate(mixture, method="noisy", sample_rate=1000, seed=3, show_progress=False)
    other = sepcore.separate(mixture, method="noisy", sample_rate=1000, seed=4, show_progress=False)
    assert torch.equal(first, second)
    assert not torch.allclose(first, other)
    assert api.get_method("noisy").knobs()["scale"].default == 0.1      # knobs come from the factory signature


def test_mixture_at_another_rate_is_resampled_and_estimates_come_back_aligned(temporary_method):
    seen = {}

    def factory(sources, *, sample_rate=None, **_unused):
        seen["rate"] = sample_rate
        return lambda mixture: average(mixture, len(sources))

    temporary_method("at-8k", factory, sample_rate=8000, chunk_seconds=None)
    t = torch.arange(16000) / 16000
    mixture = torch.sin(2 * math.pi * 440 * t)
    estimates, info = api.separate_with_info(mixture, method="at-8k", sample_rate=16000)
    assert seen["rate"] == 8000 and info["resampled"] and info["method_sample_rate"] == 8000
    assert estimates.shape == (2, 16000)
    assert torch.allclose(estimates[0, 200:-200], mixture[200:-200], atol=2e-2)   # a 440 Hz tone survives 8 kHz
