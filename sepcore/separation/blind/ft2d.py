"""FT2D: repeating background from peaks of the spectrogram's 2-D Fourier transform.

Seetharaman, Pishdadian & Pardo, "Music/voice separation using the 2D Fourier transform",
WASPAA 2017. A pattern that repeats in time with period ``p`` frames concentrates the energy
of the magnitude spectrogram's 2-D DFT on the rate bins ``k * n_frames / p``; a sustained
partial concentrates it on rate zero. The method (Sec. 2 of the paper):

1. ``F = fft2(V)`` of the magnitude spectrogram ``V (freq, frames)``;
2. peaks of ``|F|``: points equal to the maximum of their ``neighborhood`` (1 x 25 here,
   along the rate axis, as in the authors' code) whose local range exceeds the standard
   deviation of the normalised ``|F|``, made symmetric;
3. background ``B = |ifft2(F * peaks)|``, foreground ``R = |ifft2(F * (1 - peaks))|``;
4. binary mask: background where ``B > R``; bins below ``high_pass_hz`` go to the background.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter, minimum_filter


def ft2d_peaks(magnitude: np.ndarray, neighborhood: tuple[int, int] = (1, 25)) -> np.ndarray:
    """Boolean peak map ``(freq, frames)`` in unshifted 2-D DFT order (step 2)."""
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2(magnitude)))
    peak = spectrum.max()
    if peak == 0:
        return np.zeros(magnitude.shape, dtype=bool)
    spectrum = spectrum / peak
    local_max = maximum_filter(spectrum, size=neighborhood, mode="wrap")
    local_min = minimum_filter(spectrum, size=neighborhood, mode="wrap")
    peaks = (spectrum == local_max) & ((local_max - local_min) > spectrum.std())
    peaks = peaks | np.flip(peaks, axis=(0, 1))
    return np.fft.ifftshift(peaks)


def ft2d_masks(magnitude: np.ndarray, sample_rate: int, n_fft: int,
               neighborhood: tuple[int, int] = (1, 25), high_pass_hz: float = 100.0) -> np.ndarray:
    """Binary masks ``(2, freq, frames)``: (foreground, repeating background)."""
    transform = np.fft.fft2(magnitude)
    peaks = ft2d_peaks(magnitude, neighborhood)
    background = np.abs(np.fft.ifft2(transform * peaks))
    foreground = np.abs(np.fft.ifft2(transform * ~peaks))
    mask = (background > foreground).astype(np.float64)
    cutoff = int(np.ceil(high_pass_hz * n_fft / sample_rate))
    mask[: cutoff + 1] = 1.0
    return np.stack([1.0 - mask, mask])
