"""FloWaveNet-style flow prior over raw audio (paper 002, Eq. 6-13; Kim et al. 2019).

The flow is ``n_blocks`` blocks of::

    squeeze  ->  n_flows x [ ActNorm  ->  affine coupling (non-causal WaveNet)  ->  flip ]

and the prior density is the change of variables (paper 002, Eq. 6-7)::

    log p(x) = log N(f(x); 0, I) + log |det df/dx|.

* **squeeze** folds pairs of neighbouring samples into channels, ``(B, C, T) -> (B, 2C, T/2)``;
  it is a permutation (logdet 0) and doubles the coupling net's reach in time per block.
* **ActNorm** (Eq. 8-9) is ``y = (x - b) * exp(-log a)`` per channel, initialised from the first
  batch so that its output has zero mean and unit variance per channel; ``logdet = -T sum log a``.
* **affine coupling** (Eq. 10-12): ``x_a, x_b = split(x)``; ``log s, t = WN(x_a, sigma)``;
  ``y_b = (x_b - t) * exp(-log s)``; ``logdet = -sum log s``. ``log s`` passes a soft clamp
  ``c tanh(. / c)`` (c = ``log_scale_clamp``) so that one layer cannot blow up during training.
* **flip** reverses the channel order so that the next coupling transforms the other half.
* **noise-conditioned ActNorm** (``conditioned_actnorm``, an ablation): ActNorm's ``b`` and
  ``log a`` gain a learned linear function of ``c(sigma) = [log(sigma + 1e-3), sigma]`` (zero at
  initialisation), so the normalisation can follow the variance that noise adds at each level;
  ``logdet = -T sum log a(sigma)`` per item.

**Noise conditioning** (Jayaram & Thickstun 2020). We train **one prior per source, conditioned
on the noise level sigma** (WaveNet global conditioning, :mod:`sepcore.models.wavenet`) on
``x + sigma * eps`` with ``sigma`` drawn across the Langevin schedule, and ``sigma = 0`` for a
fraction of each batch so the same network is also the *clean* prior. We chose this over Frank's
fine-tuning per sigma (REFERENCE: 5 levels) because it costs one training run and one checkpoint
per source instead of one per (source, level), covers every level of any geometric schedule (sigma
is continuous), and lets the chapter measure the discrimination-vs-smoothness trade-off of one
network at every sigma, clean included.

Shapes: audio ``x`` is ``(batch, time)`` (a channel axis of 1 is also accepted); ``time`` must be
a multiple of ``2**n_blocks``. ``sigma`` is a float or ``(batch,)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from sepcore.models.wavenet import WaveNet, sigma_features
from sepcore.profiles import ProfileConfig

LOG_2PI = math.log(2 * math.pi)


@dataclass
class FlowConfig(ProfileConfig):
    """Architecture of one flow prior. The reference's toy flow is n_blocks=4, n_flows=6, a
    10-layer WaveNet of width 32; ours are smaller so that they train on one CPU core."""

    source: str = "sine"
    sample_rate: int = 14700
    n_blocks: int = 3
    n_flows: int = 2
    n_layers: int = 4
    width: int = 12
    conditioned: bool = True
    conditioned_actnorm: bool = False
    log_scale_clamp: float = 4.0

    @classmethod
    def quick(cls):
        return cls(n_blocks=2, n_flows=2, n_layers=3, width=8)

    @classmethod
    def default(cls):
        return cls()

    @classmethod
    def full(cls):
        return cls(n_blocks=4, n_flows=6, n_layers=10, width=32)


def squeeze(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, T) -> (B, 2C, T/2)``: channel ``2c`` holds even samples of ``c``, ``2c+1`` odd."""
    b, c, t = x.shape
    return x.reshape(b, c, t // 2, 2).permute(0, 1, 3, 2).reshape(b, 2 * c, t // 2)


def unsqueeze(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`squeeze`, ``(B, 2C, T/2) -> (B, C, T)``."""
    b, c2, t = x.shape
    return x.reshape(b, c2 // 2, 2, t).permute(0, 1, 3, 2).reshape(b, c2 // 2, 2 * t)


class ActNorm(nn.Module):
    """Per-channel affine normalisation with data-dependent initialisation (Eq. 8-9).

    ``conditioned=True``: ``b`` and ``log a`` are shifted by a linear map of the noise features
    :func:`sepcore.models.wavenet.sigma_features` (zero at initialisation), one value per channel
    and item; ``forward``/``reverse`` then take ``sigma``.
    """

    def __init__(self, channels: int, conditioned: bool = False):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(1, channels, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1))
        self.register_buffer("initialized", torch.tensor(False))
        self.condition = nn.Linear(2, 2 * channels) if conditioned else None
        if self.condition is not None:
            nn.init.zeros_(self.condition.weight)
            nn.init.zeros_(self.condition.bias)

    def _affine(self, x: torch.Tensor, sigma) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loc, log_scale)``, each ``(1 or B, C, 1)``."""
        if self.condition is None:
            return self.loc, self.log_scale
        if sigma is None:
            raise ValueError("this ActNorm is noise-conditioned: pass sigma (0.0 for clean audio)")
        shift = self.condition(sigma_features(sigma, x.shape[0], x.device, x.dtype))[..., None]   # (B, 2C, 1)
        d_loc, d_log_scale = shift.chunk(2, dim=1)
        return self.loc + d_loc, self.log_scale + d_log_scale

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        mean = x.mean(dim=(0, 2), keepdim=True)
        std = x.std(dim=(0, 2), keepdim=True)
        self.loc.copy_(mean)
        self.log_scale.copy_(torch.log(std + 1e-6))
        self.initialized.fill_(True)

    def forward(self, x: torch.Tensor, sigma=None) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, C, T) -> (y, logdet per time step (B, T))``."""
        if not self.initialized:
            self.initialize(x)
        loc, log_scale = self._affine(x, sigma)
        y = (x - loc) * torch.exp(-log_scale)
        logdet = (-log_scale.sum(dim=(1, 2))).expand(x.shape[0])[:, None].expand(x.shape[0], x.shape[2])
        return y, logdet

    def reverse(self, y: torch.Tensor, sigma=None) -> torch.Tensor:
        loc, log_scale = self._affine(y, sigma)
        return y * torch.exp(log_scale) + loc


class AffineCoupling(nn.Module):
    """``y_b = (x_b - t(x_a)) * exp(-log s(x_a))`` with a WaveNet for ``log s, t`` (Eq. 10-12)."""

    def __init__(self, channels: int, config: FlowConfig):
        super().__init__()
        self.half = channels // 2
        self.clamp = config.log_scale_clamp
        self.net = WaveNet(self.half, 2 * (channels - self.half), config.width, config.n_layers, config.conditioned)

    def _scale_shift(self, x_a: torch.Tensor, sigma) -> tuple[torch.Tensor, torch.Tensor]:
        log_s, t = self.net(x_a, sigma).chunk(2, dim=1)
        return self.clamp * torch.tanh(log_s / self.clamp), t

    def forward(self, x: torch.Tensor, sigma=None) -> tuple[torch.Tensor, torch.Tensor]:
        x_a, x_b = x[:, : self.half], x[:, self.half :]
        log_s, t = self._scale_shift(x_a, sigma)
        y_b = (x_b - t) * torch.exp(-log_s)
        return torch.cat([x_a, y_b], dim=1), -log_s.sum(dim=1)   # logdet per time step (B, T)

    def reverse(self, y: torch.Tensor, sigma=None) -> torch.Tensor:
        y_a, y_b = y[:, : self.half], y[:, self.half :]
        log_s, t = self._scale_shift(y_a, sigma)
        return torch.cat([y_a, y_b * torch.exp(log_s) + t], dim=1)


class FlowPrior(nn.Module):
    """A normalising-flow prior for one source class; see the module docstring."""

    def __init__(self, config: FlowConfig | None = None):
        super().__init__()
        self.config = config or FlowConfig()
        self.multiple = 2**self.config.n_blocks
        self.actnorms = nn.ModuleList()
        self.couplings = nn.ModuleList()
        for block in range(self.config.n_blocks):
            channels = 2 ** (block + 1)
            for _ in range(self.config.n_flows):
                self.actnorms.append(ActNorm(channels, self.config.conditioned and self.config.conditioned_actnorm))
                self.couplings.append(AffineCoupling(channels, self.config))

    def _as_channels(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3 and x.shape[1] == 1:
            x = x[:, 0]
        if x.ndim != 2:
            raise ValueError(f"expected audio (batch, time), got shape {tuple(x.shape)}")
        if x.shape[-1] % self.multiple:
            raise ValueError(
                f"time length {x.shape[-1]} is not a multiple of 2**n_blocks = {self.multiple}; pad or crop "
                f"the input (e.g. sepcore.separation.langevin pads automatically)."
            )
        return x.unsqueeze(1)

    def _check_sigma(self, sigma):
        if sigma is None and self.config.conditioned:
            raise ValueError(f"the {self.config.source} prior is noise-conditioned: pass sigma (0.0 for clean audio)")
        return sigma if self.config.conditioned else None

    def forward_map(self, x: torch.Tensor, sigma=None) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, T) -> (z (B, 2**n_blocks, T / 2**n_blocks), logdet map (B, T))``.

        The logdet of each squeezed time step is shared equally by the samples folded into it,
        so ``logdet_map.sum(-1)`` is the total log-determinant.
        """
        sigma = self._check_sigma(sigma)
        h = self._as_channels(x)
        logdet = torch.zeros(h.shape[0], h.shape[-1], device=h.device, dtype=h.dtype)
        index = 0
        for block in range(self.config.n_blocks):
            h = squeeze(h)
            factor = 2 ** (block + 1)
            for _ in range(self.config.n_flows):
                h, ld_norm = self.actnorms[index](h, sigma)
                h, ld_coupling = self.couplings[index](h, sigma)
                h = h.flip(1)
                logdet = logdet + ((ld_norm + ld_coupling) / factor).repeat_interleave(factor, dim=-1)
                index += 1
        return h, logdet

    def forward(self, x: torch.Tensor, sigma=None) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, T) -> (z, logdet (B,))`` with ``z`` of shape ``(B, 2**n_blocks, T / 2**n_blocks)``."""
        z, logdet = self.forward_map(x, sigma)
        return z, logdet.sum(-1)

    def reverse(self, z: torch.Tensor, sigma=None) -> torch.Tensor:
        """``z (B, 2**n_blocks, T / 2**n_blocks) -> x (B, T)``, the exact inverse of :meth:`forward`."""
        sigma = self._check_sigma(sigma)
        h = z
        index = len(self.couplings) - 1
        for _block in reversed(range(self.config.n_blocks)):
            for _ in range(self.config.n_flows):
                h = h.flip(1)
                h = self.couplings[index].reverse(h, sigma)
                h = self.actnorms[index].reverse(h, sigma)
                index -= 1
            h = unsqueeze(h)
        return h[:, 0]

    def log_prob_map(self, x: torch.Tensor, sigma=None) -> torch.Tensor:
        """The "likelihood map" of paper 002: log-density per time step, ``(B, T)``, in nats.

        ``log_prob_map(x).sum(-1) == log_prob(x)`` (Eq. 7 split over time).
        """
        z, logdet = self.forward_map(x, sigma)
        factor = self.multiple
        log_normal = (-0.5 * (z.pow(2) + LOG_2PI)).sum(1)                     # (B, T / factor)
        return (log_normal / factor).repeat_interleave(factor, dim=-1) + logdet

    def log_prob(self, x: torch.Tensor, sigma=None) -> torch.Tensor:
        """``log p(x | sigma)`` per item, ``(B,)``, in nats (Eq. 7)."""
        z, logdet = self.forward(x, sigma)
        return (-0.5 * (z.pow(2) + LOG_2PI)).flatten(1).sum(-1) + logdet

    @torch.no_grad()
    def sample(self, n: int, length: int, sigma: float = 0.0, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """Draw ``(n, length)`` samples: ``z ~ N(0, temperature**2 I)``, ``x = f^{-1}(z)``."""
        if length % self.multiple:
            raise ValueError(f"length {length} must be a multiple of {self.multiple}")
        weight = next(self.parameters())
        z = torch.randn(n, self.multiple, length // self.multiple, generator=generator,
                        device=generator.device if generator is not None else weight.device)
        z = z.to(device=weight.device, dtype=weight.dtype)
        return self.reverse(temperature * z, sigma if self.config.conditioned else None)
