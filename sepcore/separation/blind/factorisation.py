"""Factorisation baselines on a single channel: FastICA and NMF (scikit-learn).

**How one channel becomes several.** Both methods factorise the magnitude spectrogram
``V (freq, frames)`` as a sum of rank-one components ``a_c g_c^T`` (a spectral profile times
an activation), the *independent subspace analysis* construction of Casey & Westner (2000)
for ICA and the standard one for NMF (Smaragdis et al. 2014):

- ICA: ``FastICA(n_components)`` on ``V^T`` (frames are the observations, frequency bins the
  channels), so the activations ``g_c`` are the independent sources and ``a_c`` the columns of
  the mixing matrix. Components are clipped to non-negative magnitudes (``|a_c g_c^T|``).
- NMF: ``sklearn.decomposition.NMF`` (Kullback-Leibler, multiplicative updates) with
  ``V ~ W H``.

**Fixed grouping rule** (no access to the truth): the components are sorted by the spectral
centroid of their profile ``a_c`` and split into two groups of equal size; the upper half is
the *high* group (first output), the lower half the *low* group (second). Soft masks are the
ratios of the groups' magnitudes (power 2).
"""

from __future__ import annotations

import warnings

import numpy as np

from sepcore.separation.blind.stft import ratio_masks


def fastica_unmix(observations: np.ndarray, n_components: int, seed: int = 0,
                  max_iter: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """FastICA on a determined (or over-determined) instantaneous mixture.

    Args:
        observations: ``(n_channels, time)``.

    Returns:
        ``(sources (n_components, time), mixing (n_channels, n_components))`` with
        ``observations ~ mixing @ sources + mean``; sources up to order and scale.
    """
    from sklearn.decomposition import FastICA
    from sklearn.exceptions import ConvergenceWarning

    ica = FastICA(n_components=n_components, whiten="unit-variance", random_state=seed, max_iter=max_iter, tol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)               # a fixed budget of iterations
        sources = ica.fit_transform(np.asarray(observations, dtype=np.float64).T).T
    return sources, ica.mixing_


def spectral_centroids(profiles: np.ndarray, frequencies: np.ndarray) -> np.ndarray:
    """Centroid in Hz of each non-negative spectral profile, ``(freq, n) -> (n,)``."""
    weights = np.maximum(profiles, 0.0)
    return (frequencies[:, None] * weights).sum(0) / np.maximum(weights.sum(0), 1e-12)


def group_by_centroid(components: np.ndarray, profiles: np.ndarray, frequencies: np.ndarray) -> np.ndarray:
    """Sum component magnitudes ``(n, freq, frames)`` into ``(2, freq, frames)``: (high, low)."""
    order = np.argsort(spectral_centroids(profiles, frequencies))      # low -> high
    low, high = order[: len(order) // 2], order[len(order) // 2:]
    return np.stack([components[high].sum(0), components[low].sum(0)])


def ica_masks(magnitude: np.ndarray, frequencies: np.ndarray, n_components: int = 2, seed: int = 0) -> np.ndarray:
    """Soft masks ``(2, freq, frames)``: (high, low) from ICA components of ``V``."""
    activations, mixing = fastica_unmix(magnitude, n_components, seed=seed)   # (n, frames), (freq, n)
    # Fix each component's sign so its spectral profile is mostly positive.
    signs = np.sign(mixing.sum(0))
    signs[signs == 0] = 1.0
    mixing, activations = mixing * signs, activations * signs[:, None]
    components = np.abs(mixing.T[:, :, None] * activations[:, None, :])      # (n, freq, frames)
    return ratio_masks(group_by_centroid(components, mixing, frequencies))


def nmf_masks(magnitude: np.ndarray, frequencies: np.ndarray, n_components: int = 8, seed: int = 0,
              max_iter: int = 100) -> np.ndarray:
    """Soft masks ``(2, freq, frames)``: (high, low) from NMF components of ``V``."""
    from sklearn.decomposition import NMF
    from sklearn.exceptions import ConvergenceWarning

    model = NMF(n_components=n_components, init="nndsvda", solver="mu", beta_loss="kullback-leibler",
                max_iter=max_iter, random_state=seed, tol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)               # a fixed budget of updates
        w = model.fit_transform(magnitude + 1e-9)                             # (freq, n)
    h = model.components_                                                     # (n, frames)
    components = w.T[:, :, None] * h[:, None, :]
    return ratio_masks(group_by_centroid(components, w, frequencies))
