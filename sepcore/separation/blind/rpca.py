"""Robust PCA separation (Huang, Chen, Smaragdis & Hasegawa-Johnson, ICASSP 2012).

The magnitude spectrogram ``V`` is split into a low-rank part ``L`` (repeating
accompaniment: here the *background*) and a sparse part ``S`` (the *foreground*) by
principal component pursuit,

    min ||L||_* + lambda ||S||_1   subject to   L + S = V,     lambda = 1 / sqrt(max(F, T)),

(Eq. 1-2 of Huang et al. 2012), solved with the inexact augmented Lagrange multiplier method
of Lin, Chen & Ma (2010, Algorithm 5). A binary mask ``|S| > gain * |L|`` (Eq. 3 of Huang et
al., gain 1) selects the foreground's time-frequency bins.
"""

from __future__ import annotations

import numpy as np


def _shrink(x: np.ndarray, tau: float) -> np.ndarray:
    """Soft thresholding, the proximal operator of ``tau * ||.||_1``."""
    return np.sign(x) * np.maximum(np.abs(x) - tau, 0.0)


def _svt(x: np.ndarray, tau: float) -> np.ndarray:
    """Singular value thresholding, the proximal operator of ``tau * ||.||_*``."""
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    s = np.maximum(s - tau, 0.0)
    keep = s > 0
    return (u[:, keep] * s[keep]) @ vt[keep]


def robust_pca(matrix, lam: float | None = None, tol: float = 1e-7, max_iter: int = 500,
               rho: float = 1.5) -> tuple[np.ndarray, np.ndarray, int]:
    """Principal component pursuit by inexact ALM: ``matrix = low_rank + sparse``.

    Args:
        matrix: ``(m, n)`` real.
        lam: weight of the l1 term; ``1 / sqrt(max(m, n))`` (Candès et al. 2011) by default.

    Returns:
        ``(low_rank (m, n), sparse (m, n), iterations)``.
    """
    d = np.asarray(matrix, dtype=np.float64)
    if d.ndim != 2:
        raise ValueError(f"robust_pca takes a matrix, got shape {d.shape}")
    lam = 1.0 / np.sqrt(max(d.shape)) if lam is None else lam
    norm_fro = np.linalg.norm(d)
    if norm_fro == 0:
        return np.zeros_like(d), np.zeros_like(d), 0
    norm_two = np.linalg.norm(d, 2)
    y = d / max(norm_two, np.abs(d).max() / lam)            # dual variable
    mu, mu_bar = 1.25 / norm_two, 1.25 / norm_two * 1e7
    sparse = np.zeros_like(d)
    low_rank = np.zeros_like(d)
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        low_rank = _svt(d - sparse + y / mu, 1.0 / mu)
        sparse = _shrink(d - low_rank + y / mu, lam / mu)
        residual = d - low_rank - sparse
        y = y + mu * residual
        mu = min(mu * rho, mu_bar)
        if np.linalg.norm(residual) / norm_fro < tol:
            break
    return low_rank, sparse, iterations


def rpca_masks(magnitude: np.ndarray, gain: float = 1.0, lam_scale: float = 1.0, max_iter: int = 100) -> np.ndarray:
    """Binary masks ``(2, freq, frames)``: (foreground = sparse, background = low rank).

    Args:
        magnitude: ``(freq, frames)`` magnitude spectrogram of the mixture.
        gain: the mask's gain ``kappa`` in ``|S| > kappa |L|`` (Huang et al., Eq. 3).
        lam_scale: multiplies the default ``lambda = 1/sqrt(max(F, T))``.
    """
    lam = lam_scale / np.sqrt(max(magnitude.shape))
    low_rank, sparse, _ = robust_pca(magnitude, lam=lam, tol=1e-6, max_iter=max_iter)
    foreground = (np.abs(sparse) > gain * np.abs(low_rank)).astype(np.float64)
    return np.stack([foreground, 1.0 - foreground])
