"""The metrics: agreement with museval, known values, permutation invariance, bad input."""

import math

import numpy as np
import pytest
import torch

from sepcore.metrics import (
    frame_bounds,
    framewise_sdr,
    nan_summary,
    permutation_invariant,
    psnr,
    sdr,
    sdr_museval,
    si_sdr,
)

SR = 8000


def realistic_pair(seed=0, n_sources=2, seconds=5.0):
    """Two music-like references (harmonic tone, decaying noise bursts) and imperfect estimates."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * SR)) / SR
    tone = 0.5 * torch.sin(2 * math.pi * 110 * t) + 0.2 * torch.sin(2 * math.pi * 330 * t + 0.3)
    bursts = torch.randn(len(t), generator=g) * torch.exp(-((t * 4) % 1.0) * 8) * 0.4
    refs = torch.stack([tone, bursts][:n_sources])
    ests = 0.9 * refs + 0.1 * refs.flip(0) + 0.05 * torch.randn(refs.shape, generator=g)
    return refs, ests


@pytest.mark.parametrize("window_s,hop_s", [(2.0, 2.0), (1.0, 0.5), (10.0, 10.0)])
def test_fast_sdr_matches_museval(window_s, hop_s):
    refs, ests = realistic_pair()
    fast = sdr(refs, ests, SR, window_s, hop_s).numpy()
    reference = sdr_museval(refs, ests, SR, window_s, hop_s)
    np.testing.assert_allclose(fast, reference, atol=0.01)


def test_fast_sdr_matches_museval_with_silent_frames():
    refs, ests = realistic_pair(seed=1, seconds=7.0)  # three 2 s frames
    refs[1, : 2 * SR] = 0.0        # the first frame of source 1 is silent: museval gives NaN there
    ests[0, 4 * SR: 6 * SR] = 0.0  # a silent estimate in the third frame, likewise
    frames = framewise_sdr(refs, ests, 2 * SR, 2 * SR)
    assert torch.isnan(frames[:, 0]).all() and torch.isnan(frames[:, 2]).all()
    assert not torch.isnan(frames[:, 1]).any()
    np.testing.assert_allclose(sdr(refs, ests, SR).numpy(), sdr_museval(refs, ests, SR), atol=0.01)


def test_batched_sdr_equals_loop():
    pairs = [realistic_pair(seed) for seed in range(3)]
    refs = torch.stack([p[0] for p in pairs])
    ests = torch.stack([p[1] for p in pairs])
    batched = sdr(refs, ests, SR)
    for b, (r, e) in enumerate(pairs):
        torch.testing.assert_close(batched[b], sdr(r, e, SR))


def test_sdr_known_values():
    refs, _ = realistic_pair()
    # A copy scaled by g has error (g - 1) s, so SDR = -20 log10 |g - 1| exactly.
    assert torch.allclose(sdr(refs, 0.5 * refs, SR, 5.0, 5.0), torch.full((2,), 20 * math.log10(2), dtype=torch.float64))
    # White noise at a chosen SNR gives that SDR (up to the noise's sample energy).
    g = torch.Generator().manual_seed(3)
    noise = torch.randn(refs.shape, generator=g, dtype=torch.float64)
    target_db = 12.0
    scale = (refs.double().pow(2).sum(-1) / noise.pow(2).sum(-1) / 10 ** (target_db / 10)).sqrt()
    noisy = refs + scale[:, None] * noise
    torch.testing.assert_close(sdr(refs, noisy, SR, 5.0, 5.0), torch.full((2,), target_db, dtype=torch.float64))
    # A perfect estimate is +inf, as museval reports.
    assert torch.isinf(sdr(refs, refs.clone(), SR)).all()


def test_si_sdr_is_scale_invariant_and_sdr_is_not():
    refs, ests = realistic_pair()
    torch.testing.assert_close(si_sdr(refs, ests), si_sdr(refs, 3.0 * ests))
    assert (sdr(refs, 3.0 * ests, SR) < sdr(refs, ests, SR)).all()


def test_psnr_known_value():
    ref = torch.zeros(1, 2, 100)
    est = ref + 0.1
    torch.testing.assert_close(psnr(ref, est), torch.full((1, 2), 20.0, dtype=torch.float64))


def test_permutation_invariant_recovers_swap():
    refs, ests = realistic_pair()
    swapped = ests.flip(0)
    scores, perm = permutation_invariant(si_sdr, refs, swapped)
    assert perm.tolist() == [1, 0]
    torch.testing.assert_close(scores, si_sdr(refs, ests))
    # batched: one item swapped, one not
    scores, perm = permutation_invariant(si_sdr, torch.stack([refs, refs]), torch.stack([ests, swapped]))
    assert perm.tolist() == [[0, 1], [1, 0]]


def test_nanmedian_matches_numpy():
    from sepcore.metrics import nanmedian

    values = torch.tensor([[1.0, float("nan"), 3.0, 10.0], [2.0, 4.0, float("nan"), float("nan")],
                           [float("nan")] * 4, [float("inf"), float("inf"), 1.0, float("nan")]])
    with np.errstate(all="ignore"):
        expected = np.array([np.nanmedian(v) if not np.isnan(v).all() else np.nan for v in values.numpy()])
    np.testing.assert_array_equal(nanmedian(values).numpy(), expected)


def test_museval_framing():
    assert frame_bounds(10, 4, 4) == [(0, 4), (4, 8)]
    assert frame_bounds(10, 4, 2) == [(0, 4), (2, 6), (4, 8), (6, 10)]
    assert frame_bounds(3, 4, 4) == [(0, 3)]


def test_bad_input_raises():
    refs, ests = realistic_pair()
    with pytest.raises(ValueError, match="differ in shape"):
        sdr(refs, ests[:, :-1], SR)
    bad = ests.clone()
    bad[0, 10] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        sdr(refs, bad, SR)
    with pytest.raises(ValueError, match="n_sources, time"):
        si_sdr(refs[0], ests[0])


def test_all_zero_reference_gives_nan_and_is_counted():
    refs, ests = realistic_pair()
    refs[0] = 0.0
    values = sdr(refs, ests, SR)
    assert torch.isnan(values).all()  # museval marks every frame with a silent source as NaN
    summary = nan_summary([1.0, float("nan"), 3.0])
    assert summary == {"mean": 2.0, "median": 2.0, "std": 1.0, "n": 2, "n_nan": 1}
