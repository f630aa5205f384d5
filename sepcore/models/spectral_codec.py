"""A phase-free codec: a VQ-VAE over log-magnitude STFT frames, one code per frame (our extension).

Why. The waveform VQ-VAE of paper 003 (hop 64) spends its codes on waveform detail: on our data
the mixture's code equals the code of the sources' mean embedding at only 33-46 % of positions,
and bass codes are close to uniform, as if they carried phase. Magnitude spectra add roughly
linearly and carry no phase, so the code of a mixture frame is far better pinned down by the
codes of its sources. The separators run unchanged on these codes (LASS counts, latent Bayes);
the output is either the codec's own waveform (Griffin-Lim phase: "raw") or the mixture masked
by the decoded magnitudes (:mod:`sepcore.separation.masking`).

Layout. Audio ``x: (batch, T)`` with ``T`` a multiple of ``hop`` -> STFT (Hann window ``n_fft``,
hop ``hop``, centred, last frame dropped) -> features ``f = log(1 + |X| / floor)``, ``(batch, F,
S)`` with ``F = n_fft // 2 + 1`` and ``S = T // hop`` -> encoder (1-D convs over frames) ->
``(batch, D, S)`` -> quantiser (the EMA codebook of :class:`sepcore.models.vqvae.Quantizer`) ->
codes ``(batch, S)`` -> decoder -> features ``(batch, F, S)``.

Loss: mean squared error of the features (of single sources and of their mean mixtures, so
that mixture frames get codes too) plus ``beta`` times the commitment loss (paper 003 Eq. 1, 4).
Written by hand: no library ships a spectrogram VQ-VAE; the STFT is torch's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sepcore.mixing import mix
from sepcore.models.vqvae import HopPadding, Quantizer, pair_code_table  # noqa: F401  (pair_code_table works on this codec)
from sepcore.profiles import ProfileConfig


@dataclass
class SpectralCodecConfig(ProfileConfig):
    n_fft: int = 1024
    hop: int = 256                      # samples per code (11.6 ms at 22050 Hz)
    width: int = 256
    res_depth: int = 3
    codebook_size: int = 256            # K
    code_dim: int = 32                  # D
    beta: float = 0.1                   # commitment weight
    ema_decay: float = 0.99
    restart_threshold: float = 1.0
    floor: float = 1e-3                 # magnitude unit of the log features
    griffin_lim_iters: int = 32
    sample_rate: int = 22050
    name: str = "spectral-vqvae"

    @classmethod
    def quick(cls):
        return cls(width=64, res_depth=1, codebook_size=32, code_dim=8)

    @classmethod
    def full(cls):
        return cls(width=512, res_depth=4, codebook_size=1024, code_dim=64)

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1


class _Residual(nn.Module):
    def __init__(self, width: int, dilation: int):
        super().__init__()
        self.net = nn.Sequential(nn.GELU(), nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation),
                                 nn.GELU(), nn.Conv1d(width, width, 1))

    def forward(self, x):
        return x + self.net(x)


def _stack(width: int, depth: int) -> nn.Sequential:
    return nn.Sequential(*[_Residual(width, 2**d) for d in range(depth)])


class SpectralCodec(HopPadding, nn.Module):
    """Encoder, quantiser and decoder over log-magnitude frames; the API of :class:`sepcore.models.vqvae.VQVAE`
    (``encode``, ``decode``, ``embed``, ``codebook``, ``encode_continuous``, ``quantizer``) plus
    ``decode_magnitude`` and ``magnitude``."""

    def __init__(self, config: SpectralCodecConfig):
        super().__init__()
        c = self.config = config
        self.encoder = nn.Sequential(nn.Conv1d(c.n_bins, c.width, 3, padding=1), _stack(c.width, c.res_depth),
                                     nn.GELU(), nn.Conv1d(c.width, c.code_dim, 1))
        self.decoder = nn.Sequential(nn.Conv1d(c.code_dim, c.width, 3, padding=1), _stack(c.width, c.res_depth),
                                     nn.GELU(), nn.Conv1d(c.width, c.n_bins, 1))
        self.quantizer = Quantizer(c.codebook_size, c.code_dim, c.ema_decay, c.restart_threshold)
        self.register_buffer("window", torch.hann_window(c.n_fft), persistent=False)

    # ------------------------------------------------------------------ spectra
    def stft(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, T)`` (``T`` a multiple of ``hop``) -> complex ``(batch, F, T // hop)``."""
        if x.dim() != 2:
            raise ValueError(f"SpectralCodec takes (batch, time) audio, got shape {tuple(x.shape)}")
        if x.shape[-1] % self.config.hop:
            raise ValueError(f"input length {x.shape[-1]} is not a multiple of the hop {self.config.hop}; pad or crop it")
        spec = torch.stft(x.float(), self.config.n_fft, self.config.hop, window=self.window.to(x.device),
                          center=True, return_complex=True)
        return spec[..., : x.shape[-1] // self.config.hop]

    def istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Inverse of :meth:`stft` (complex ``(batch, F, S)`` -> ``(batch, length)``); the dropped frame is zero."""
        spec = F.pad(spec, (0, 1))
        return torch.istft(spec, self.config.n_fft, self.config.hop, window=self.window.to(spec.device),
                           center=True, length=length)

    def features(self, magnitude: torch.Tensor) -> torch.Tensor:
        return torch.log1p(magnitude / self.config.floor)

    def magnitude(self, features: torch.Tensor) -> torch.Tensor:
        return self.config.floor * torch.expm1(features.clamp_min(0))

    # ------------------------------------------------------------------ VQ-VAE API
    @property
    def codebook(self) -> torch.Tensor:
        return self.quantizer.codebook

    def encode_continuous(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, T) -> (batch, D, T // hop)``."""
        return self.encoder(self.features(self.stft(x).abs()))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, T) -> (batch, T // hop)`` codes."""
        h = self.encode_continuous(x)
        return self.quantizer.nearest(Quantizer.flatten(h)).reshape(h.shape[0], h.shape[2])

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        return self.quantizer.embed(codes)

    def decode_features(self, e: torch.Tensor) -> torch.Tensor:
        """``(batch, D, S) -> (batch, F, S)`` log features."""
        return self.decoder(e)

    def decode_magnitude(self, codes: torch.Tensor) -> torch.Tensor:
        """``(batch, S) -> (batch, F, S)`` magnitudes."""
        return self.magnitude(self.decode_features(self.embed(codes)))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """``(batch, S) -> (batch, S * hop)`` waveforms with Griffin-Lim phase (the codec's own output)."""
        import torchaudio

        c = self.config
        magnitude = F.pad(self.decode_magnitude(codes), (0, 1))
        return torchaudio.functional.griffinlim(magnitude, self.window.to(codes.device), c.n_fft, c.hop, c.n_fft,
                                                power=1.0, n_iter=c.griffin_lim_iters, momentum=0.99,
                                                length=codes.shape[-1] * c.hop, rand_init=False)

    # ------------------------------------------------------------------ training
    def losses(self, sources: torch.Tensor) -> dict[str, torch.Tensor]:
        """``sources: (batch, N, T)`` aligned crops of N classes; reconstructs each source and each mixture.

        Returns ``total, rec, commit`` (scalars) and ``codes``.
        """
        b, n, t = sources.shape
        inputs = torch.cat([sources.reshape(b * n, t), mix(sources, dim=1)])
        target = self.features(self.stft(inputs).abs())
        h = self.encoder(target)
        codes, e_st = self.quantizer(h)
        rec = F.mse_loss(self.decoder(e_st), target)
        commit = F.mse_loss(h, e_st.detach())
        return {"total": rec + self.config.beta * commit, "rec": rec.detach(), "commit": commit.detach(), "codes": codes}
