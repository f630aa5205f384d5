"""VQ-VAE and LQ-VAE (paper 003, Sec. 3.1 and 4.2): Jukebox-style convolutional autoencoders
with a vector-quantised bottleneck, for audio (``dims=1``) and images (``dims=2``).

Layout. Audio ``x`` is ``(batch, time)`` (mono; ``(batch, channels, time)`` when
``in_channels > 1``); images are ``(batch, H, W)`` (or ``(batch, C, H, W)``). The encoder
downsamples by ``prod(strides)`` (the hop: 4*4*4 = 64 for audio at 22050 Hz, as Jukebox's top
level; 2*2 for 28x28 digits -> 7x7), so codes are ``(batch, S)`` or ``(batch, H', W')`` and
embeddings ``(batch, code_dim, S)`` or ``(batch, code_dim, H', W')``.

Losses (Eq. 1-4 and 7-10 of paper 003):

* ``L_rec``: mean squared error, plus an optional multi-resolution STFT magnitude loss.
* codebook: an EMA codebook (Jukebox, van den Oord et al. 2017 App. A.1) replaces the
  gradient codebook loss of Eq. 3; dead codes are restarted from random encoder outputs.
* ``L_commit`` (Eq. 4) = mean ||h - sg[e]||^2 per element, weighted by ``beta``.
* ``L_lin`` (Eq. 8-10) = mean over positions of ||B_Q(E(w x1 + w x2)) - B_Q(w B_Q(E x1) + w B_Q(E x2))||^2,
  the pairs ``(x1, x2)`` being the two halves of the batch and ``w`` the package mixing
  weight (1/2 for the mean convention, :mod:`sepcore.mixing`). Quantisers in the loss are
  straight-through, so the gradient reaches the encoder and the codebook inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from sepcore.mixing import mix, mixing_weight
from sepcore.profiles import ProfileConfig


@dataclass
class VQVAEConfig(ProfileConfig):
    dims: int = 1                       # 1: audio, 2: images
    in_channels: int = 1
    strides: tuple = (4, 4, 4)          # hop = prod(strides) = 64
    width: int = 32                     # conv channels
    res_depth: int = 2                  # residual blocks per level
    dilation_growth: int = 3            # dilation = growth**d in the residual stack
    codebook_size: int = 256            # K
    code_dim: int = 32                  # D
    beta: float = 0.02                  # commitment weight (Eq. 1)
    ema_decay: float = 0.99
    restart_threshold: float = 1.0      # restart a code whose EMA usage falls below this
    spectral_weight: float = 0.0        # multi-resolution STFT loss weight (audio only)
    lin_weight: float = 0.0             # L_lin weight (Eq. 7); > 0 makes an LQ-VAE
    recon_mixtures: bool = True         # also reconstruct the pair mixtures of the batch
    sample_rate: int = 22050
    name: str = "vqvae"

    @classmethod
    def quick(cls):
        return cls(width=16, res_depth=2, codebook_size=32, code_dim=8)

    @classmethod
    def default(cls):
        return cls()

    @classmethod
    def full(cls):
        return cls(width=64, res_depth=4, codebook_size=2048, code_dim=64, spectral_weight=1.0)

    @classmethod
    def digits(cls):
        """2-D images (LASS on 28x28 digits): 28x28 -> 7x7 codes, K=256 (paper 004)."""
        return cls(dims=2, strides=(2, 2), width=32, res_depth=2, dilation_growth=1,
                   codebook_size=256, code_dim=32, sample_rate=0, name="vqvae-digits")

    @property
    def hop(self) -> int:
        hop = 1
        for s in self.strides:
            hop *= s
        return hop


def _conv(dims: int):
    return nn.Conv1d if dims == 1 else nn.Conv2d


class ResidualBlock(nn.Module):
    """x + conv1x1(relu(conv3_dilated(relu(x))))."""

    def __init__(self, dims: int, width: int, dilation: int):
        super().__init__()
        conv = _conv(dims)
        self.net = nn.Sequential(
            nn.ReLU(), conv(width, width, 3, padding=dilation, dilation=dilation),
            nn.ReLU(), conv(width, width, 1),
        )

    def forward(self, x):
        return x + self.net(x)


def _res_stack(config: VQVAEConfig, reverse: bool = False) -> nn.Sequential:
    dilations = [config.dilation_growth**d for d in range(config.res_depth)]
    if reverse:
        dilations = dilations[::-1]
    return nn.Sequential(*[ResidualBlock(config.dims, config.width, d) for d in dilations])


class Encoder(nn.Module):
    """(batch, C, *spatial) -> (batch, code_dim, *spatial / hop): strided convs (kernel 2s) + residual stacks."""

    def __init__(self, config: VQVAEConfig):
        super().__init__()
        conv = _conv(config.dims)
        layers = [conv(config.in_channels, config.width, 3, padding=1)]
        for s in config.strides:
            layers += [conv(config.width, config.width, 2 * s, stride=s, padding=s // 2), _res_stack(config)]
        layers += [conv(config.width, config.code_dim, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class Decoder(nn.Module):
    """(batch, code_dim, *latent) -> (batch, C, *spatial): the mirror of :class:`Encoder`."""

    def __init__(self, config: VQVAEConfig):
        super().__init__()
        conv = _conv(config.dims)
        tconv = nn.ConvTranspose1d if config.dims == 1 else nn.ConvTranspose2d
        layers = [conv(config.code_dim, config.width, 3, padding=1)]
        for s in config.strides:
            layers += [_res_stack(config, reverse=True), tconv(config.width, config.width, 2 * s, stride=s, padding=s // 2)]
        layers += [conv(config.width, config.in_channels, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, e):
        return self.net(e)


class Quantizer(nn.Module):
    """Nearest-neighbour vector quantiser B_Q with an EMA codebook and dead-code restarts.

    ``forward(h)`` with ``h: (batch, D, *latent)`` returns ``(codes (batch, *latent), e_st)`` where
    ``e_st = h + sg[e - h]`` is the straight-through quantised tensor (value e, gradient identity).
    In training mode the codebook follows EMA statistics, all-reduced across processes under
    DistributedDataParallel so replicas keep identical codebooks.
    """

    def __init__(self, codebook_size: int, code_dim: int, decay: float = 0.99, restart_threshold: float = 1.0):
        super().__init__()
        self.codebook_size, self.code_dim = codebook_size, code_dim
        self.decay, self.restart_threshold = decay, restart_threshold
        self.register_buffer("codebook", torch.randn(codebook_size, code_dim) * 0.1)
        self.register_buffer("ema_count", torch.ones(codebook_size))
        self.register_buffer("ema_sum", self.codebook.clone())
        self.register_buffer("initialised", torch.tensor(False))

    @staticmethod
    def flatten(h: torch.Tensor) -> torch.Tensor:
        """(batch, D, *latent) -> (batch * prod(latent), D)."""
        return h.movedim(1, -1).reshape(-1, h.shape[1])

    def nearest(self, flat: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
        """Index of the nearest codebook vector for each row of ``flat: (N, D)`` -> ``(N,)``."""
        out = []
        c2 = self.codebook.pow(2).sum(1)
        for start in range(0, flat.shape[0], chunk):
            part = flat[start:start + chunk]
            dist2 = part.pow(2).sum(1, keepdim=True) - 2 * part @ self.codebook.T + c2
            out.append(dist2.argmin(1))
        return torch.cat(out) if out else flat.new_zeros(0, dtype=torch.long)

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        """(batch, *latent) -> (batch, D, *latent)."""
        return F.embedding(codes, self.codebook).movedim(-1, 1)

    def quantize(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """B_Q without side effects: ``(codes, e_st)``."""
        codes = self.nearest(self.flatten(h)).reshape(h.shape[0], *h.shape[2:])
        e = self.embed(codes)
        return codes, h + (e - h).detach()

    def forward(self, h: torch.Tensor, update: bool = True):
        if self.training and update:
            self._update(self.flatten(h.detach()))
        return self.quantize(h)

    @torch.no_grad()
    def _update(self, flat: torch.Tensor) -> None:
        distributed = dist.is_available() and dist.is_initialized()
        if not bool(self.initialised):
            picked = self._random_rows(flat, self.codebook_size, distributed)
            self.codebook.copy_(picked)
            self.ema_sum.copy_(picked)
            self.ema_count.fill_(1.0)
            self.initialised.fill_(True)
        codes = self.nearest(flat)
        onehot = F.one_hot(codes, self.codebook_size).type_as(flat)
        count, total = onehot.sum(0), onehot.T @ flat
        if distributed:
            dist.all_reduce(count)
            dist.all_reduce(total)
        self.ema_count.mul_(self.decay).add_(count, alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(total, alpha=1 - self.decay)
        n = self.ema_count.sum()
        smoothed = (self.ema_count + 1e-5) / (n + self.codebook_size * 1e-5) * n
        self.codebook.copy_(self.ema_sum / smoothed[:, None])
        dead = self.ema_count < self.restart_threshold
        if bool(dead.any()):
            fresh = self._random_rows(flat, self.codebook_size, distributed)
            self.codebook[dead] = fresh[dead]
            self.ema_sum[dead] = fresh[dead]
            self.ema_count[dead] = 1.0

    @staticmethod
    def _random_rows(flat: torch.Tensor, n: int, distributed: bool) -> torch.Tensor:
        """n random rows of ``flat`` (with small noise), identical on every process (broadcast from rank 0)."""
        reps = -(-n // flat.shape[0])
        pool = flat.repeat(reps, 1) if reps > 1 else flat
        picked = pool[torch.randperm(pool.shape[0], device=flat.device)[:n]]
        picked = picked + 0.01 * picked.std() * torch.randn_like(picked)
        if distributed:
            dist.broadcast(picked, 0)
        return picked


def multiresolution_stft_loss(x: torch.Tensor, y: torch.Tensor, ffts=(2048, 512, 128)) -> torch.Tensor:
    """Mean over resolutions of || |STFT x| - |STFT y| ||_2 / || |STFT x| || (Jukebox-style), x, y: (batch, time)."""
    losses = []
    for n_fft in ffts:
        if x.shape[-1] < n_fft:
            continue
        window = torch.hann_window(n_fft, device=x.device)
        sx = torch.stft(x, n_fft, n_fft // 4, window=window, return_complex=True).abs()
        sy = torch.stft(y, n_fft, n_fft // 4, window=window, return_complex=True).abs()
        losses.append((sx - sy).norm() / (sx.norm() + 1e-7))
    return torch.stack(losses).mean() if losses else x.new_zeros(())


class HopPadding:
    """For codecs with one code per ``config.hop`` samples of audio ``(..., T)``: pad to a multiple of
    the hop, encode, and crop decodes back (the one place the latent methods pad and crop)."""

    def pad_to_hop(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., T) -> (..., T + (-T mod hop))`` float, zero-padded at the end."""
        return F.pad(x.float(), (0, (-x.shape[-1]) % self.config.hop))

    def encode_padded(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, T) -> (batch, ceil(T / hop))`` codes, on the codec's device."""
        return self.encode(self.pad_to_hop(x).to(self.codebook.device))

    def decode_cropped(self, codes: torch.Tensor, length: int) -> torch.Tensor:
        """``(batch, S) -> (batch, length)``: the decode, cropped to the audio's length."""
        return self.decode(codes)[..., :length]


class VQVAE(HopPadding, nn.Module):
    """Encoder E, quantiser B_Q, decoder D (paper 003 Sec. 3.1); an LQ-VAE when ``lin_weight > 0``."""

    def __init__(self, config: VQVAEConfig):
        super().__init__()
        if config.dims not in (1, 2):
            raise ValueError(f"VQVAEConfig.dims must be 1 (audio) or 2 (images), got {config.dims}")
        if any(s % 2 for s in config.strides):
            raise ValueError(f"VQVAEConfig.strides must be even (kernel 2s, padding s/2 keeps lengths exact), got {config.strides}")
        self.config = config
        self.encoder, self.decoder = Encoder(config), Decoder(config)
        self.quantizer = Quantizer(config.codebook_size, config.code_dim, config.ema_decay, config.restart_threshold)

    # ------------------------------------------------------------------ layout helpers
    def _in(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == self.config.dims + 1 and self.config.in_channels == 1:
            x = x.unsqueeze(1)
        if x.dim() != self.config.dims + 2:
            raise ValueError(f"VQVAE(dims={self.config.dims}) got input of shape {tuple(x.shape)}")
        hop = self.config.hop
        if any(n % hop for n in x.shape[2:]):
            raise ValueError(f"input size {tuple(x.shape[2:])} is not a multiple of the hop {hop}; pad or crop it")
        return x

    def _out(self, x: torch.Tensor) -> torch.Tensor:
        return x.squeeze(1) if self.config.in_channels == 1 else x

    # ------------------------------------------------------------------ public API
    @property
    def codebook(self) -> torch.Tensor:
        """(K, D)."""
        return self.quantizer.codebook

    def encode_continuous(self, x: torch.Tensor) -> torch.Tensor:
        """E(x): (batch, *spatial) -> (batch, D, *latent)."""
        return self.encoder(self._in(x))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """B_I(B_Q(E(x))): (batch, *spatial) -> codes (batch, *latent), dtype long."""
        return self.quantizer.nearest(Quantizer.flatten(self.encode_continuous(x))).reshape(
            x.shape[0], *[n // self.config.hop for n in self._in(x).shape[2:]])

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        """e_z: (batch, *latent) -> (batch, D, *latent)."""
        return self.quantizer.embed(codes)

    def decode_embeddings(self, e: torch.Tensor) -> torch.Tensor:
        """D on continuous latents (batch, D, *latent) -> (batch, *spatial) (used by LASS refinement)."""
        return self._out(self.decoder(e))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """D(z): codes (batch, *latent) -> (batch, *spatial)."""
        return self.decode_embeddings(self.embed(codes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstruction with straight-through quantisation: ``(x_hat (batch, *spatial), codes)``."""
        h = self.encode_continuous(x)
        codes, e_st = self.quantizer(h)
        return self._out(self.decoder(e_st)), codes

    def losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Eq. 1 (+ Eq. 7-10 when ``lin_weight > 0``) on a batch ``x: (batch, *spatial)``.

        The pairs for L_lin (and the optional mixture reconstruction) are ``x[:b//2]`` and
        ``x[b//2:2*(b//2)]``. Returns ``total, rec, commit, spectral, lin`` (scalars).
        """
        c = self.config
        x = self._in(x)
        half = x.shape[0] // 2
        pair = torch.stack([x[:half], x[half:2 * half]], dim=1)          # (half, 2, C, *spatial)
        mixture = mix(pair, dim=1)                                          # (half, C, *spatial)
        inputs = torch.cat([x, mixture]) if (c.recon_mixtures and half) else x
        h = self.encoder(inputs)
        codes, e_st = self.quantizer(h)
        x_hat = self.decoder(e_st)
        rec = F.mse_loss(x_hat, inputs)
        commit = F.mse_loss(h, e_st.detach())
        zero = x.new_zeros(())
        spectral = zero
        if c.spectral_weight > 0 and c.dims == 1:
            spectral = multiresolution_stft_loss(x_hat.reshape(-1, x_hat.shape[-1]), inputs.reshape(-1, inputs.shape[-1]))
        lin = zero
        if c.lin_weight > 0 and half:
            if c.recon_mixtures:
                e_single, h_mix = e_st[:2 * half], h[x.shape[0]:]
            else:
                e_single, h_mix = e_st[:2 * half], self.encoder(mixture)
            lin = linearization_loss(self.quantizer, e_single[:half], e_single[half:], h_mix)
        total = rec + c.beta * commit + c.spectral_weight * spectral + c.lin_weight * lin
        return {"total": total, "rec": rec.detach(), "commit": commit.detach(),
                "spectral": spectral.detach(), "lin": lin.detach(), "codes": codes}


def linearization_loss(quantizer: Quantizer, q1: torch.Tensor, q2: torch.Tensor, h_mix: torch.Tensor) -> torch.Tensor:
    """L_lin of paper 003 Eq. 8-10: the squared L2 norm over the D channels, averaged over positions.

    Eq. 8 is ``(1/T) sum_t ||LQ_t - QL_t||_2^2``: a sum over channels and a mean over time (and,
    here, over the batch). The reference code averaged over the channels too (``F.mse_loss``), i.e.
    1/D of Eq. 8; the committed LQ-VAE's weight on this loss was chosen on validation among 1, 1/8
    and 1/32 (``checkpoints/latents/README.md``).

    Args:
        q1, q2: straight-through quantised codes B_Q(E(x1)), B_Q(E(x2)), ``(batch, D, *latent)``.
        h_mix: E(w x1 + w x2), ``(batch, D, *latent)``.
    Returns:
        mean over batch and positions of || LQ - QL ||^2 with QL = B_Q(w q1 + w q2) (Eq. 9) and
        LQ = B_Q(h_mix) (Eq. 10).
    """
    w = mixing_weight(2)
    _, ql = quantizer.quantize(w * q1 + w * q2)
    _, lq = quantizer.quantize(h_mix)
    return (lq - ql).pow(2).sum(1).mean()


@torch.no_grad()
def pair_code_table(model: VQVAE, chunk: int = 64) -> torch.Tensor:
    """M[i, j] = B_I(B_Q(w e_i + w e_j)) for all code pairs (paper 003 Sec. 4.1), ``(K, K)`` long.

    Computed in blocks of ``chunk`` rows so the ``(K, K, D)`` sums are never held at once.
    """
    e = model.codebook
    K = e.shape[0]
    w = mixing_weight(2)
    rows = []
    for start in range(0, K, chunk):
        sums = w * e[start:start + chunk, None, :] + w * e[None, :, :]          # (chunk, K, D)
        rows.append(model.quantizer.nearest(sums.reshape(-1, e.shape[1])).reshape(-1, K))
    return torch.cat(rows)
