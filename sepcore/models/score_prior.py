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

    def __init__(self, config: ScorePriorConfig | None = None):
        super().__init__()
        self.config = config or ScorePriorConfig()
        c = self.config
        self.register_buffer("frequencies", torch.randn(c.embedding // 2, generator=torch.Generator().manual_seed(0)) * 4.0)
        self.embed = nn.Sequential(nn.Linear(c.embedding, c.embedding), nn.SiLU(), nn.Linear(c.embedding, c.embedding))
        self.inp = nn.Conv1d(1, c.channels, 1)
        self.blocks = nn.ModuleList(_Block(c.channels, c.kernel_size, d, c.embedding) for d in c.dilations())
        self.head = nn.Conv1d(c.channels, 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def _sigma(self, sigma, y: torch.Tensor) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=y.dtype, device=y.device)
        if torch.any(sigma <= 0):
            raise ValueError("a score prior needs sigma > 0 (the clean density has no score)")
        return sigma.expand(y.shape[0]) if sigma.ndim == 0 else sigma

    def denoise(self, y: torch.Tensor, sigma) -> torch.Tensor:
        """``E[x | y]`` estimated by the network, ``(batch, time)``."""
        sigma = self._sigma(sigma, y)
        sd = self.config.sigma_data
        total = (sigma**2 + sd**2)[:, None]
        c_skip, c_out, c_in = sd**2 / total, sigma[:, None] * sd / total.sqrt(), 1 / total.sqrt()
        angle = (sigma.log() / 4)[:, None] * self.frequencies[None]
        emb = self.embed(torch.cat([angle.sin(), angle.cos()], dim=-1))
        h = self.inp((c_in * y)[:, None])
        for block in self.blocks:
            h = block(h, emb)
        return c_skip * y + c_out * self.head(h)[:, 0]

    def score(self, y: torch.Tensor, sigma) -> torch.Tensor:
        """``d/dy log p(y | sigma) = (D(y, sigma) - y) / sigma^2`` (Tweedie), ``(batch, time)``."""
        s = self._sigma(sigma, y)[:, None]
        return (self.denoise(y, sigma) - y) / s**2

    def dsm_loss(self, clean: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Denoising score matching with the EDM weight ``(sigma^2 + sigma_data^2) / (sigma sigma_data)^2``,
        which makes every noise level's loss the MSE of ``F`` on a unit-variance target; ``clean (B, T)``,
        ``sigma (B,)``, ``noise (B, T)`` standard normal. Returns the scalar mean."""
        sd = self.config.sigma_data
        denoised = self.denoise(clean + sigma[:, None] * noise, sigma)
        weight = (sigma**2 + sd**2) / (sigma * sd) ** 2
        return (weight[:, None] * (denoised - clean) ** 2).mean()
