"""Non-causal WaveNet: the coupling network of the flow prior (paper 002, Section "Flow prior").

Each layer is a gated, dilated convolution (kernel 3, dilation ``2**i``, padded on both sides so
the output at ``t`` sees ``t - d .. t + d``) with a residual and a skip connection (van den Oord
et al. 2016, Eq. 2). The skip sum goes through ReLU -> 1x1 -> ReLU -> 1x1; the last 1x1 starts at
zero, so a coupling layer built on it starts as the identity (paper 002; FloWaveNet).

Optional global conditioning on a scalar per item (here the noise level ``sigma``) adds a learned
projection of ``c(sigma) = [log(sigma + sigma_floor), sigma]`` to every gate's pre-activation,
as WaveNet's global conditioning does (van den Oord et al. 2016, Eq. 3).

Shapes: input ``(batch, in_channels, time)``, output ``(batch, out_channels, time)``,
``sigma`` a float or ``(batch,)``.
"""

from __future__ import annotations

import torch
from torch import nn

SIGMA_FLOOR = 1e-3


def sigma_features(sigma: torch.Tensor | float, batch: int, device, dtype) -> torch.Tensor:
    """The conditioning features ``[log(sigma + 1e-3), sigma]``, ``(batch, 2)``."""
    sigma = torch.as_tensor(sigma, device=device, dtype=dtype)
    if sigma.ndim == 0:
        sigma = sigma.expand(batch)
    if sigma.shape != (batch,):
        raise ValueError(f"sigma must be a scalar or have shape ({batch},), got {tuple(sigma.shape)}")
    if (sigma < 0).any():
        raise ValueError("sigma must be non-negative")
    return torch.stack([torch.log(sigma + SIGMA_FLOOR), sigma], dim=-1)


class GatedLayer(nn.Module):
    """One gated residual layer: ``z = tanh(W_f * x + V_f c) * sigmoid(W_g * x + V_g c)``."""

    def __init__(self, width: int, dilation: int, conditioned: bool):
        super().__init__()
        self.dilated = nn.Conv1d(width, 2 * width, kernel_size=3, dilation=dilation, padding=dilation)
        self.condition = nn.Linear(2, 2 * width) if conditioned else None
        self.residual = nn.Conv1d(width, width, 1)
        self.skip = nn.Conv1d(width, width, 1)

    def forward(self, x: torch.Tensor, features: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.dilated(x)                                       # (B, 2W, T)
        if self.condition is not None:
            h = h + self.condition(features).unsqueeze(-1)        # (B, 2W, 1) broadcast over time
        filt, gate = h.chunk(2, dim=1)
        z = torch.tanh(filt) * torch.sigmoid(gate)                # (B, W, T)
        return (x + self.residual(z)) * 0.5**0.5, self.skip(z)


class WaveNet(nn.Module):
    """Non-causal WaveNet with ``n_layers`` gated layers of dilations ``1, 2, 4, ...``.

    Args:
        in_channels, out_channels: channels of the input and output.
        width: residual and skip channels.
        n_layers: number of gated layers; the receptive field is ``2**(n_layers + 1) - 1`` samples.
        conditioned: whether ``forward`` takes a noise level ``sigma``.
    """

    def __init__(self, in_channels: int, out_channels: int, width: int, n_layers: int, conditioned: bool = False):
        super().__init__()
        self.conditioned = conditioned
        self.front = nn.Conv1d(in_channels, width, 1)
        self.layers = nn.ModuleList(GatedLayer(width, 2**i, conditioned) for i in range(n_layers))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv1d(width, width, 1), nn.ReLU(), nn.Conv1d(width, out_channels, 1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float | None = None) -> torch.Tensor:
        """``x (B, in_channels, T) -> (B, out_channels, T)``."""
        features = None
        if self.conditioned:
            if sigma is None:
                raise ValueError("this WaveNet is noise-conditioned: pass sigma (float or (batch,))")
            features = sigma_features(sigma, x.shape[0], x.device, x.dtype)
        h = self.front(x)
        skip = torch.zeros_like(h)
        for layer in self.layers:
            h, s = layer(h, features)
            skip = skip + s
        return self.head(skip * len(self.layers) ** -0.5)
