"""Naive reference separators that need no model: the floor every method must beat.

- :func:`average`: every estimate is the same equal share of the mixture. It is the
  "Average" row of paper 004, Table 2 (24.2 dB for LASS against 14.9 dB for Average on
  MNIST): "separations are obtained directly from the mixture".
- :func:`crossover`: a two-band split of the spectrum at ``cutoff_hz``; the low band goes to
  one source (by default the last, "bass" in ``("drums", "bass")``), the high band to the
  other. A class-aware heuristic, not a learned method; it shows how a method's knobs reach
  the API, the CLI and the explorer.

Both estimates are *mixture-consistent*: ``mix(estimates) == mixture`` under the package's
mixing convention (:mod:`sepcore.mixing`). With ``mix(s) = w * sum_k s_k`` (``w = 1/N`` for
the mean, ``1`` for the sum), the equal share is ``m / (w N)``: the mixture itself under the
mean convention and ``m / N`` under the sum.

The registry builds them through :class:`AverageSeparator` and :class:`CrossoverSeparator`
(:class:`sepcore.separation.base.Separator`; the factory contract is in :mod:`sepcore.api`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from sepcore.mixing import mixing_weight
from sepcore.separation.base import Separator


def average(mixture: torch.Tensor, n_sources: int, mixing: str | None = None) -> torch.Tensor:
    """The equal split: ``(time,) -> (n_sources, time)`` with every row ``m / (w N)``."""
    share = mixture / (mixing_weight(n_sources, mixing) * n_sources)
    return share.unsqueeze(0).expand(n_sources, -1).clone()


def crossover(
    mixture: torch.Tensor,
    sample_rate: int,
    cutoff_hz: float,
    n_fft: int = 2048,
    low_index: int = 1,
    mixing: str | None = None,
) -> torch.Tensor:
    """Two-band split with complementary binary STFT masks: ``(time,) -> (2, time)``.

    Bins below ``cutoff_hz`` go to source ``low_index``, the others to the other source. The
    masks sum to one in every bin, so the bands sum back to the mixture (up to STFT round-off)
    and the estimates are scaled by ``1 / w`` to stay mixture-consistent.
    """
    if mixture.ndim != 1:
        raise ValueError(f"crossover expects a mono mixture (time,), got shape {tuple(mixture.shape)}")
    if not 0 < cutoff_hz < sample_rate / 2:
        raise ValueError(f"cutoff_hz must lie in (0, {sample_rate / 2}) Hz, got {cutoff_hz}")
    hop = n_fft // 4
    window = torch.hann_window(n_fft, dtype=mixture.dtype, device=mixture.device)
    spec = torch.stft(mixture, n_fft, hop, window=window, return_complex=True)  # (freq, frames)
    freqs = torch.linspace(0, sample_rate / 2, spec.shape[0], device=mixture.device)
    low = (freqs < cutoff_hz).to(spec.real.dtype).unsqueeze(1)                 # (freq, 1)
    bands = [torch.istft(spec * mask, n_fft, hop, window=window, length=mixture.shape[-1]) for mask in (1 - low, low)]
    high_band, low_band = bands
    estimates = [high_band, high_band]
    estimates[low_index] = low_band
    return torch.stack(estimates) / mixing_weight(2, mixing)


class AverageSeparator(Separator):
    """``"average"``: every source is the equal share :func:`average`; no knobs, no seed."""

    def __init__(self, sources: Sequence[str], sample_rate: int | None = None):
        self.described(sources, sample_rate)

    def separate(self, mixture: torch.Tensor) -> torch.Tensor:
        return average(mixture, len(self.classes))

    @classmethod
    def from_pretrained(cls, sources: Sequence[str], *, sample_rate: int | None = None, **_unused) -> AverageSeparator:
        return cls(sources, sample_rate)


class CrossoverSeparator(Separator):
    """``"crossover"`` (exactly two sources): :func:`crossover` at ``cutoff_hz``.

    Args:
        cutoff_hz: the crossover frequency in Hz.
        low_source: the name of the source that receives the low band; when it is not one of
            ``sources``, the last source does.
    """

    def __init__(self, sources: Sequence[str], sample_rate: int, cutoff_hz: float = 150.0, low_source: str = "bass"):
        if len(sources) != 2:
            raise ValueError(f"the crossover method separates exactly two sources, got {list(sources)}; "
                             "pass two names, e.g. --sources drums bass")
        if sample_rate is None:
            raise ValueError("the crossover method needs the mixture's sample_rate")
        self.described(sources, sample_rate)
        self.cutoff_hz = float(cutoff_hz)
        self.low_index = list(sources).index(low_source) if low_source in sources else 1

    def separate(self, mixture: torch.Tensor) -> torch.Tensor:
        return crossover(mixture, self.sample_rate, self.cutoff_hz, low_index=self.low_index)

    @classmethod
    def from_pretrained(cls, sources: Sequence[str], *, sample_rate: int | None = None, cutoff_hz: float = 150.0,
                        low_source: str = "bass", **_unused) -> CrossoverSeparator:
        """Nothing is trained: the knobs are the crossover's settings."""
        return cls(sources, sample_rate, cutoff_hz, low_source)
