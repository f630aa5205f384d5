"""REPET and REPET-SIM: a repeating background under a non-repeating foreground.

**REPET** (Rafii & Pardo, IEEE TASLP 2013; ICASSP 2011/2012): (1) the *beat spectrum*
``b(l)``, the mean over frequency of the autocorrelation over time of the power spectrogram's
rows, finds the repeating period ``p``; (2) the *repeating segment model* is the element-wise
median of the spectrogram's segments of length ``p``; (3) the *repeating spectrogram* is the
minimum of that model and the mixture's spectrogram; (4) its ratio to the mixture's is a soft
mask for the background. Frequencies below ``high_pass_hz`` (100 Hz in the paper) go to the
background.

**REPET-SIM** (Rafii & Pardo, ICASSP 2012) replaces the period by similarity: each frame's
background is the median of its most similar frames, computed here with
``librosa.decompose.nn_filter`` (cosine similarity, frames at least ``min_gap_s`` apart).
"""

from __future__ import annotations

import numpy as np


def beat_spectrum(power: np.ndarray) -> np.ndarray:
    """Mean over frequency of each row's unbiased autocorrelation, normalised so ``b(0) = 1``.

    Args:
        power: ``(freq, frames)`` power spectrogram.

    Returns:
        ``(frames,)``: ``b(l)`` for lags ``l = 0 .. frames - 1``.
    """
    n_frames = power.shape[1]
    padded = np.fft.rfft(power, n=2 * n_frames, axis=1)
    acf = np.fft.irfft(np.abs(padded) ** 2, axis=1)[:, :n_frames]
    acf = acf / np.arange(n_frames, 0, -1)[None, :]          # unbiased: divide by the overlap
    b = acf.mean(0)
    return b / b[0] if b[0] > 0 else b


def repeating_period(beat: np.ndarray, min_lag: int, max_lag: int) -> int:
    """The lag in ``[min_lag, max_lag]`` whose beat-spectrum value is largest (first of ties)."""
    max_lag = min(max_lag, len(beat) - 1)
    if max_lag < min_lag:
        raise ValueError(f"cannot look for a period in lags [{min_lag}, {max_lag}]: the mixture is too short")
    window = beat[min_lag:max_lag + 1]
    return int(min_lag + np.flatnonzero(window >= window.max() - 1e-12)[0])


def repeating_spectrogram(magnitude: np.ndarray, period: int) -> np.ndarray:
    """``min(median_i V[:, i p + j], V)``: steps 2-3 of REPET, ``(freq, frames)``."""
    n_freq, n_frames = magnitude.shape
    n_segments = int(np.ceil(n_frames / period))
    padded = np.full((n_freq, n_segments * period), np.nan)
    padded[:, :n_frames] = magnitude
    segments = padded.reshape(n_freq, n_segments, period)
    model = np.nanmedian(segments, axis=1)                    # (freq, period)
    tiled = np.tile(model, (1, n_segments))[:, :n_frames]
    return np.minimum(tiled, magnitude)


def repet_masks(magnitude: np.ndarray, sample_rate: int, hop_length: int, n_fft: int,
                period_range_s: tuple[float, float] = (0.5, 10.0), high_pass_hz: float = 100.0,
                period: int | None = None) -> np.ndarray:
    """Soft masks ``(2, freq, frames)``: (foreground, repeating background).

    Args:
        magnitude: ``(freq, frames)``.
        period_range_s: where to look for the period; the upper end is capped at a third of
            the mixture, so that the median sees at least three repetitions.
        period: a known period in frames (skips the beat spectrum).
    """
    n_frames = magnitude.shape[1]
    if period is None:
        beat = beat_spectrum(magnitude ** 2)
        frames_per_s = sample_rate / hop_length
        min_lag = max(1, int(round(period_range_s[0] * frames_per_s)))
        max_lag = min(int(round(period_range_s[1] * frames_per_s)), n_frames // 3)
        period = repeating_period(beat, min_lag, max(max_lag, min_lag))
    background = repeating_spectrogram(magnitude, period)
    mask = np.where(magnitude > 0, background / np.maximum(magnitude, 1e-12), 1.0)
    cutoff = int(np.ceil(high_pass_hz * n_fft / sample_rate))
    mask[: cutoff + 1] = 1.0
    return np.stack([1.0 - mask, mask])


def repet_sim_masks(magnitude: np.ndarray, sample_rate: int, hop_length: int,
                    min_gap_s: float = 0.5, power: float = 2.0) -> np.ndarray:
    """Soft masks ``(2, freq, frames)``: (foreground, background by similarity).

    The background estimate is ``min(nn_filter(V), V)``; the masks are Wiener-like ratios of
    the background and the residual ``V - background`` (power 2) and sum to one.
    """
    import librosa

    width = max(1, int(round(min_gap_s * sample_rate / hop_length)))
    width = min(width, max(1, (magnitude.shape[1] - 1) // 2 - 1))
    filtered = librosa.decompose.nn_filter(magnitude, aggregate=np.median, metric="cosine", width=width)
    background = np.minimum(filtered, magnitude)
    from sepcore.separation.blind.stft import ratio_masks

    return ratio_masks(np.stack([magnitude - background, background]), power=power)
