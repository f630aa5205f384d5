"""Noise-conditioned score priors for waveforms: the NCSN route of BASIS (Jayaram & Thickstun 2020).

A denoiser ``D(y, sigma) ~ E[x | y = x + sigma eps]`` is trained by denoising score matching
(Vincent 2011; Song & Ermon 2019) on one source class, and Tweedie's formula turns it into the
score of the noisy prior that annealed Langevin needs (paper 002, Eq. 16)::

    d/dy log p(y | sigma) = (D(y, sigma) - y) / sigma^2.

Unlike a flow, the network never normalises a density, so it spends all its capacity on the
score; there is no ``log_prob``. The denoiser uses the preconditioning of Karras et al. (2022,
"EDM", Table 1) with the class's RMS ``sigma_data``::

    D(y, sigma) = c_skip y + c_out F(c_in y, c_noise),
    c_skip = sigma_data^2 / (sigma^2 + sigma_data^2),   c_out = sigma sigma_data / sqrt(sigma^2 + sigma_data^2),
    c_in = 1 / sqrt(sigma^2 + sigma_data^2),            c_noise = log(sigma) / 4,

so ``F`` always sees unit-variance input and predicts a unit-variance target. ``F`` is a
non-causal stack of dilated residual convolutions (WaveNet-style receptive field, no gating)
whose every block is scaled and shifted by an embedding of the noise level (FiLM).

Shapes: ``y (batch, time)``, ``sigma`` a float or ``(batch,)``. The model is fully
convolutional, so any length works (``multiple = 1``).

**Joint model** (``n_sources = K > 1``; the route of MSDM, Mariani et al., ICLR 2024): one
network denoises all ``K`` sources at once, ``y (batch, K, time)``, with one shared noise level,
and its score is the joint score ``d/dy log p(y_1, ..., y_K | sigma)``. Trained on *independently
drawn* stems (never a mixture with its own sources), it learns the same product distribution
as ``K`` separate priors, but each output channel sees every input channel, so it can learn to
reject what belongs to the others.

Written by hand: no library we depend on ships a 1-D noise-conditioned denoiser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from sepcore.profiles import ProfileConfig


@dataclass
class ScorePriorConfig(ProfileConfig):
    """Architecture and the noise range the prior was trained on.

    ``sigma_data`` is the class's RMS; ``sigma_min``/``sigma_max`` bound the training noise, so a
    Langevin schedule inside them never asks the network to extrapolate.
    """

    source: str = "sine"
    channels: int = 48
    n_blocks: int = 10
    kernel_size: int = 3
    max_dilation: int = 256
    embedding: int = 64
    sigma_data: float = 0.5
    sigma_min: float = 0.005
    sigma_max: float = 2.0
    sample_rate: int = 14700
    n_sources: int = 1

    @classmethod
    def quick(cls):
        return cls(channels=16, n_blocks=4, embedding=16, max_dilation=8)

    def dilations(self) -> list[int]:
        """Dilations 1, 2, 4, ... up to ``max_dilation``, cycled over the blocks."""
        cycle = [2**i for i in range(int(math.log2(self.max_dilation)) + 1)]
        return [cycle[i % len(cycle)] for i in range(self.n_blocks)]


class _Block(nn.Module):
    """``x + W2 silu(FiLM(W1 x))`` with a dilated ``W1`` and a 1x1 ``W2``."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, embedding: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation, padding=dilation * (kernel_size - 1) // 2)
        self.film = nn.Linear(embedding, 2 * channels)
        self.out = nn.Conv1d(channels, channels, 1)
        self.norm = nn.GroupNorm(1, channels)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(emb)[..., None].chunk(2, dim=1)
        h = self.norm(self.conv(x)) * (1 + scale) + shift
        return x + self.out(F.silu(h))


class ScorePrior(nn.Module):
    """One class's noise-conditioned denoiser and the score it implies.

    >>> prior = ScorePrior(ScorePriorConfig.quick())
    >>> y = torch.randn(2, 256)
    >>> prior.score(y, 0.1).shape
    torch.Size([2, 256])
    """

    multiple = 1

    @property
    def is_joint(self) -> bool:
        """Whether one network denoises ``n_sources > 1`` sources at once (``y (batch, K, time)``)."""
        return self.config.n_sources > 1

    def __init__(self, config: ScorePriorConfig | None = None):
        super().__init__()
        self.config = config or ScorePriorConfig()
        c = self.config
        self.register_buffer("frequencies", torch.randn(c.embedding // 2, generator=torch.Generator().manual_seed(0)) * 4.0)
        self.embed = nn.Sequential(nn.Linear(c.embedding, c.embedding), nn.SiLU(), nn.Linear(c.embedding, c.embedding))
        self.inp = nn.Conv1d(c.n_sources, c.channels, 1)
        self.blocks = nn.ModuleList(_Block(c.channels, c.kernel_size, d, c.embedding) for d in c.dilations())
        self.head = nn.Conv1d(c.channels, c.n_sources, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def _sigma(self, sigma, y: torch.Tensor) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=y.dtype, device=y.device)
        if torch.any(sigma <= 0):
            raise ValueError("a score prior needs sigma > 0 (the clean density has no score)")
        return sigma.expand(y.shape[0]) if sigma.ndim == 0 else sigma

    def _channels(self, y: torch.Tensor) -> torch.Tensor:
        """``y`` as ``(batch, n_sources, time)``: ``(batch, time)`` for one class, ``(batch, K, time)`` joint."""
        expected = 3 if self.is_joint else 2
        if y.ndim != expected or (self.is_joint and y.shape[1] != self.config.n_sources):
            want = f"(batch, {self.config.n_sources}, time)" if self.is_joint else "(batch, time)"
            raise ValueError(f"the {self.config.source} score prior expects {want}, got shape {tuple(y.shape)}")
        return y if self.is_joint else y[:, None]

    def denoise(self, y: torch.Tensor, sigma) -> torch.Tensor:
        """``E[x | y]`` estimated by the network, shaped like ``y``: ``(batch, time)``, or
        ``(batch, K, time)`` for a joint model."""
        h = self._channels(y)
        sigma = self._sigma(sigma, y)
        sd = self.config.sigma_data
        total = (sigma**2 + sd**2)[:, None, None]
        c_skip, c_out, c_in = sd**2 / total, sigma[:, None, None] * sd / total.sqrt(), 1 / total.sqrt()
        angle = (sigma.log() / 4)[:, None] * self.frequencies[None]
        emb = self.embed(torch.cat([angle.sin(), angle.cos()], dim=-1))
        x = self.inp(c_in * h)
        for block in self.blocks:
            x = block(x, emb)
        out = c_skip * h + c_out * self.head(x)
        return out if self.is_joint else out[:, 0]

    def score(self, y: torch.Tensor, sigma) -> torch.Tensor:
        """``d/dy log p(y | sigma) = (D(y, sigma) - y) / sigma^2`` (Tweedie), shaped like ``y``."""
        s = self._sigma(sigma, y).view(-1, *([1] * (y.ndim - 1)))
        return (self.denoise(y, sigma) - y) / s**2

    def dsm_loss(self, clean: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Denoising score matching with the EDM weight ``(sigma^2 + sigma_data^2) / (sigma sigma_data)^2``,
        which makes every noise level's loss the MSE of ``F`` on a unit-variance target; ``clean (B, T)``
        (joint: ``(B, K, T)``), ``sigma (B,)``, ``noise`` like ``clean``, standard normal. Returns the scalar mean."""
        sd = self.config.sigma_data
        s = sigma.view(-1, *([1] * (clean.ndim - 1)))
        denoised = self.denoise(clean + s * noise, sigma)
        weight = (s**2 + sd**2) / (s * sd) ** 2
        return (weight * (denoised - clean) ** 2).mean()
