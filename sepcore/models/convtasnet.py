"""A small Conv-TasNet (Luo & Mesgarani, IEEE/ACM TASLP 2019): a supervised waveform separator.

Encoder, mask estimator and decoder as in the paper (Sec. II-III, Fig. 1):

- encoder: ``w = ReLU(Conv1d(1, N, L, stride L/2)(m))``                       (Eq. 5)
- separator: a temporal convolutional network of ``R`` repeats of ``X`` 1-D conv blocks
  (1x1 conv B->H, PReLU, gLN, depthwise conv of kernel P and dilation 2^x, PReLU, gLN,
  1x1 convs back to B (residual) and to B (skip)), then PReLU, 1x1 conv to ``C * N`` and a
  sigmoid: masks ``d_c`` (Eq. 6-7, Fig. 1C);
- decoder: ``s_c = ConvTranspose1d(N, 1, L, stride L/2)(w * d_c)``              (Eq. 8)

One model has an output for each class in ``config.classes``; a mixture of two classes is
separated by reading the two matching outputs (:mod:`sepcore.separation.supervised`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from sepcore.profiles import ProfileConfig

TABLE1_PAIRS = (("drums", "bass"), ("drums", "guitar"), ("guitar", "bass"), ("drums", "piano"))


@dataclass
class ConvTasNetConfig(ProfileConfig):
    classes: tuple = ("drums", "bass", "guitar", "piano")
    pairs: tuple = TABLE1_PAIRS             # the mixtures it is trained on (paper 003, Table 1)
    sample_rate: int = 22050
    n_filters: int = 64                     # N
    kernel_size: int = 32                   # L (stride L/2; 1.45 ms at 22050 Hz)
    bottleneck: int = 64                    # B (and skip channels)
    hidden: int = 128                       # H
    conv_kernel: int = 3                    # P
    n_blocks: int = 6                       # X
    n_repeats: int = 2                      # R
    # training
    segment_length: int = 16384
    batch_size: int = 4
    steps: int = 2000
    learning_rate: float = 1e-3
    max_minutes: float = 20.0               # CPU-time cap of a training run (minutes of one core)
    seed: int = 0

    @classmethod
    def quick(cls):
        return cls(n_filters=32, bottleneck=32, hidden=64, n_blocks=4, n_repeats=1, steps=60, kernel_size=16,
                   segment_length=8192, max_minutes=1.5)

    @classmethod
    def default(cls):
        return cls()

    @classmethod
    def full(cls):
        return cls(n_filters=512, kernel_size=32, bottleneck=128, hidden=512, n_blocks=8, n_repeats=3,
                   steps=200_000, segment_length=88200, batch_size=8, max_minutes=24 * 60.0)


class GlobalLayerNorm(nn.Module):
    """gLN (Eq. 13 of Luo & Mesgarani): normalise over channels and time, per item."""

    def __init__(self, channels: int, eps: float = 1e-8):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(1, channels, 1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:           # (batch, channels, frames)
        mean = x.mean(dim=(1, 2), keepdim=True)
        var = (x - mean).pow(2).mean(dim=(1, 2), keepdim=True)
        return self.gamma * (x - mean) / torch.sqrt(var + self.eps) + self.beta


class ConvBlock(nn.Module):
    """One 1-D conv block (Fig. 1C): returns (residual, skip), both ``(batch, B, frames)``."""

    def __init__(self, bottleneck: int, hidden: int, kernel: int, dilation: int):
        super().__init__()
        self.inp = nn.Conv1d(bottleneck, hidden, 1)
        self.act1, self.norm1 = nn.PReLU(), GlobalLayerNorm(hidden)
        self.depthwise = nn.Conv1d(hidden, hidden, kernel, dilation=dilation,
                                   padding=dilation * (kernel - 1) // 2, groups=hidden)
        self.act2, self.norm2 = nn.PReLU(), GlobalLayerNorm(hidden)
        self.residual = nn.Conv1d(hidden, bottleneck, 1)
        self.skip = nn.Conv1d(hidden, bottleneck, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.norm1(self.act1(self.inp(x)))
        y = self.norm2(self.act2(self.depthwise(y)))
        return x + self.residual(y), self.skip(y)


class ConvTasNet(nn.Module):
    """``forward(mixture (batch, time)) -> sources (batch, n_classes, time)``."""

    def __init__(self, config: ConvTasNetConfig):
        super().__init__()
        self.config = config
        n, b = config.n_filters, config.bottleneck
        self.stride = config.kernel_size // 2
        self.encoder = nn.Conv1d(1, n, config.kernel_size, stride=self.stride, bias=False)
        self.norm = GlobalLayerNorm(n)
        self.bottleneck = nn.Conv1d(n, b, 1)
        self.blocks = nn.ModuleList(
            ConvBlock(b, config.hidden, config.conv_kernel, 2**x)
            for _ in range(config.n_repeats) for x in range(config.n_blocks)
        )
        self.mask = nn.Sequential(nn.PReLU(), nn.Conv1d(b, len(config.classes) * n, 1))
        self.decoder = nn.ConvTranspose1d(n, 1, config.kernel_size, stride=self.stride, bias=False)

    @property
    def classes(self) -> tuple:
        return tuple(self.config.classes)

    def forward(self, mixture: torch.Tensor) -> torch.Tensor:
        batch, length = mixture.shape
        # pad so that the frames tile the signal exactly: length + pad = (frames - 1) * stride + L
        frames = max(1, -(-(length - self.config.kernel_size) // self.stride) + 1)
        pad = (frames - 1) * self.stride + self.config.kernel_size - length
        x = F.pad(mixture, (0, max(pad, 0)))[:, None]                     # (batch, 1, time')
        w = F.relu(self.encoder(x))                                       # (batch, N, frames)
        y = self.bottleneck(self.norm(w))
        skips = 0
        for block in self.blocks:
            y, skip = block(y)
            skips = skips + skip
        masks = torch.sigmoid(self.mask(skips))                           # (batch, C * N, frames)
        masks = masks.view(batch, len(self.classes), -1, masks.shape[-1])
        masked = (w[:, None] * masks).flatten(0, 1)                        # (batch * C, N, frames)
        sources = self.decoder(masked).view(batch, len(self.classes), -1)
        return sources[..., :length]


def sdr_loss(estimates: torch.Tensor, references: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Negative SDR (no scale invariance: the evaluation's image SDR penalises gain), mean over items.

    ``10 log10(||s||^2 / ||s - s_hat||^2)`` with ``eps`` in both terms; shapes ``(..., time)``.
    """
    signal = references.pow(2).sum(-1)
    error = (references - estimates).pow(2).sum(-1)
    return -(10 * torch.log10((signal + eps) / (error + eps))).mean()
