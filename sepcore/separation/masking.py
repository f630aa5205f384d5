"""Mixture-consistent output for the latent methods: mask the mixture with the decoded estimates.

A latent method returns decodes ``D(z_k)`` of code sequences. The SDR allows no gain or filter,
so a decode that is right in its spectrum but off in phase or level is penalised in full. The
masked variant keeps the mixture and only redistributes it: with ``V_k`` the magnitude
spectrogram of estimate ``k``,

    M_k = |V_k|^p / sum_j |V_j|^p,        s_k = istft(M_k * STFT(m)) / w,

(``p = 2``: a Wiener-like filter; ``p = 1``: a ratio mask; ``w`` the mixing weight), so the
estimates always mix back to ``m`` exactly. For a waveform codec ``V_k = |STFT(D(z_k))|``
(Hann 1024 / 256); for the spectral codec (:mod:`sepcore.models.spectral_codec`) the decoded
magnitudes themselves, on the codec's own STFT. Every table labels these rows "masked" and keeps
the raw decoded rows beside them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sepcore.separation.blind.stft import STFTConfig, apply_masks, ratio_masks, stft

MASK_STFT = STFTConfig(n_fft=1024, hop_length=256)
OUTPUTS = ("raw", "masked")


def check_output(output: str) -> str:
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    return output


def mask_with_magnitudes(mixture: torch.Tensor, magnitudes: torch.Tensor, config: STFTConfig = MASK_STFT,
                         power: float = 2.0) -> torch.Tensor:
    """``mixture (T,)``, non-negative ``magnitudes (N, F, S)`` on ``config``'s STFT (``S`` may be one
    frame short: the last frame is repeated) -> ``(N, T)`` masked estimates."""
    mixture = torch.as_tensor(mixture).detach().cpu().reshape(-1)
    frames = mixture.shape[0] // config.hop_length + 1
    magnitudes = magnitudes.detach().cpu().double()
    if magnitudes.shape[-1] < frames:
        magnitudes = F.pad(magnitudes, (0, frames - magnitudes.shape[-1]), mode="replicate")
    masks = ratio_masks(magnitudes[..., :frames].numpy(), power=power)
    return apply_masks(mixture, masks, config)


def mask_with_waveforms(mixture: torch.Tensor, estimates: torch.Tensor, config: STFTConfig = MASK_STFT,
                        power: float = 2.0) -> torch.Tensor:
    """``mixture (T,)``, ``estimates (N, T)`` -> ``(N, T)``: masks from the estimates' magnitude spectrograms."""
    estimates = torch.as_tensor(estimates).detach().cpu()[..., : mixture.shape[-1]]
    return mask_with_magnitudes(mixture, stft(estimates, config).abs(), config, power)


def with_output(separator, output: str):
    """A :class:`~sepcore.separation.base.Separator` as it is (``raw``), or its estimates used as
    masks on the mixture (``masked``, :class:`~sepcore.separation.base.MaskedOutput`)."""
    if check_output(output) == "raw":
        return separator
    from sepcore.separation.base import MaskedOutput

    return MaskedOutput(separator)


@torch.no_grad()
def codes_to_sources(codec, codes: torch.Tensor, mixture: torch.Tensor, output: str = "raw",
                     power: float = 2.0) -> torch.Tensor:
    """``codes (N, S)`` of one mixture ``(T,)`` -> ``(N, T)`` sources, ``raw`` (the codec's decode) or ``masked``."""
    T = mixture.shape[-1]
    if check_output(output) == "masked" and hasattr(codec, "decode_magnitude"):
        config = STFTConfig(n_fft=codec.config.n_fft, hop_length=codec.config.hop)
        return mask_with_magnitudes(mixture, codec.decode_magnitude(codes), config, power)
    decoded = codec.decode(codes).float().cpu()[..., :T]
    if output == "masked":
        return mask_with_waveforms(mixture, decoded, power=power)
    return decoded
