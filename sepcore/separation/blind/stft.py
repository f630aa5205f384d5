"""The STFT shared by the blind baselines and the oracles, and the mask-to-sources step.

All masking methods work on the same transform: a Hann-windowed STFT (``torch.stft``,
centred, ``n_fft=2048``, ``hop=512``, i.e. 93 ms / 23 ms at 22050 Hz), and turn masks back
into sources the same way (:func:`apply_masks`). Because the mixture is
``m = w * sum_k s_k`` (``w`` from :func:`sepcore.mixing.mixing_weight`: 1/N for the mean),
a mask ``M_k`` estimates ``w * s_k``, so the source estimate is ``istft(M_k * X) / w``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sepcore.mixing import mixing_weight


@dataclass(frozen=True)
class STFTConfig:
    n_fft: int = 2048
    hop_length: int = 512

    @property
    def window(self) -> torch.Tensor:
        return torch.hann_window(self.n_fft, dtype=torch.float64)


DEFAULT_STFT = STFTConfig()


def stft(x, config: STFTConfig = DEFAULT_STFT) -> torch.Tensor:
    """Complex STFT of ``(..., time)`` -> ``(..., n_fft // 2 + 1, frames)`` (float64 / complex128)."""
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).to(torch.float64)
    shape = x.shape
    spec = torch.stft(x.reshape(-1, shape[-1]), config.n_fft, config.hop_length, window=config.window,
                      center=True, return_complex=True)
    return spec.reshape(*shape[:-1], *spec.shape[-2:])


def istft(spec: torch.Tensor, length: int, config: STFTConfig = DEFAULT_STFT) -> torch.Tensor:
    """Inverse of :func:`stft`: ``(..., freq, frames)`` -> ``(..., length)`` float64."""
    shape = spec.shape
    wave = torch.istft(spec.reshape(-1, *shape[-2:]), config.n_fft, config.hop_length,
                       window=config.window, center=True, length=length)
    return wave.reshape(*shape[:-2], length)


def apply_masks(mixture: torch.Tensor, masks, config: STFTConfig = DEFAULT_STFT, mixing: str | None = None) -> torch.Tensor:
    """Sources from time-frequency masks of the mixture.

    Args:
        mixture: ``(time,)``.
        masks: ``(n_sources, freq, frames)`` real, usually summing to one over sources.

    Returns:
        ``(n_sources, time)`` float32: ``istft(M_k * X) / w`` with ``w`` the mixing weight, so
        that ``mix(estimates) == mixture`` whenever the masks sum to one.
    """
    mixture = torch.as_tensor(mixture)
    masks = torch.as_tensor(np.asarray(masks) if not isinstance(masks, torch.Tensor) else masks).to(torch.float64)
    spec = stft(mixture, config)
    if masks.shape[-2:] != spec.shape[-2:]:
        raise ValueError(f"masks have shape {tuple(masks.shape)}, the mixture's STFT {tuple(spec.shape)}; use the same STFTConfig.")
    waves = istft(masks * spec, mixture.shape[-1], config)
    return (waves / mixing_weight(masks.shape[0], mixing)).to(torch.float32)


def ratio_masks(magnitudes, power: float = 2.0, eps: float = 1e-10) -> np.ndarray:
    """Soft masks ``|V_k|^p / sum_j |V_j|^p`` from non-negative estimates ``(n_sources, freq, frames)``.

    Where every estimate is zero the masks split evenly, so they always sum to one.
    """
    magnitudes = np.maximum(np.asarray(magnitudes, dtype=np.float64), 0.0) ** power
    total = magnitudes.sum(0, keepdims=True)
    even = np.full_like(magnitudes, 1.0 / magnitudes.shape[0])
    return np.where(total > eps, magnitudes / np.maximum(total, eps), even)
