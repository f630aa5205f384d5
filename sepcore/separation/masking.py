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

**Posterior mean** (:func:`mean_masked_sources`, our extension). A search that returns R code
sequences ``z^(r)`` drawn from (an approximation of) the posterior ``p(z | m)`` gives R masks; the
masked estimate is linear in the mask, so the average of the R masks,

    M_k = (1 / R) sum_r M_k(z^(r)),        s_k = istft(M_k * STFT(m)) / w,

is the Monte Carlo posterior mean of the masked estimate: the Bayes estimate under squared
error, where the best row alone is a MAP estimate. It needs diverse rows (samples): the final
beams of a beam search share almost their whole path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sepcore.separation.blind.stft import STFTConfig, apply_masks, ratio_masks, stft

MASK_STFT = STFTConfig(n_fft=1024, hop_length=256)
OUTPUTS = ("raw", "masked")
ESTIMATES = ("map", "mean")           # the best row, or the posterior mean of all rows' masks


def check_output(output: str) -> str:
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    return output


def check_estimate(estimate: str, output: str) -> str:
    """``map`` (the best row) or ``mean`` (:func:`mean_masked_sources`, defined on masks: ``output="masked"``)."""
    if estimate not in ESTIMATES:
        raise ValueError(f"estimate must be one of {ESTIMATES}, got {estimate!r}")
    if estimate == "mean" and output != "masked":
        raise ValueError('estimate="mean" averages masks: it needs output="masked"')
    return estimate


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


def masks_of_codes(codec, codes: torch.Tensor, mixture: torch.Tensor, power: float = 2.0):
    """``codes (R, N, S)`` -> ``(R, N, F, frames)`` float64 ratio masks of each row's decode on the
    STFT they are applied with, and that :class:`STFTConfig`."""
    R, N, S = codes.shape
    T = mixture.shape[-1]
    if hasattr(codec, "decode_magnitude"):
        config = STFTConfig(n_fft=codec.config.n_fft, hop_length=codec.config.hop)
        magnitudes = codec.decode_magnitude(codes.reshape(R * N, S)).detach().cpu().double()
    else:
        config = MASK_STFT
        decoded = codec.decode(codes.reshape(R * N, S)).detach().float().cpu()[..., :T]
        magnitudes = stft(decoded, config).abs().double()
    frames = T // config.hop_length + 1
    if magnitudes.shape[-1] < frames:
        magnitudes = F.pad(magnitudes, (0, frames - magnitudes.shape[-1]), mode="replicate")
    by_source = magnitudes[..., :frames].reshape(R, N, -1, frames).transpose(0, 1)    # (N, R, F, frames)
    masks = torch.from_numpy(ratio_masks(by_source.numpy(), power=power))           # normalised over sources
    return masks.transpose(0, 1), config


@torch.no_grad()
def mean_masked_sources(codec, codes: torch.Tensor, mixture: torch.Tensor, power: float = 2.0,
                        weights: torch.Tensor | None = None) -> torch.Tensor:
    """``codes (R, N, S)``: R code sequences of one mixture ``(T,)`` -> ``(N, T)``, the mixture masked
    by the (``weights (R,)``-weighted, default uniform) mean of the rows' masks: the Monte Carlo
    posterior mean when the rows are posterior samples (module docstring)."""
    mixture = torch.as_tensor(mixture).detach().cpu().reshape(-1)
    masks, config = masks_of_codes(codec, codes, mixture, power)                  # (R, N, F, frames)
    if weights is None:
        weights = torch.full((codes.shape[0],), 1.0 / codes.shape[0], dtype=torch.float64)
    weights = torch.as_tensor(weights, dtype=torch.float64).cpu()
    if weights.shape != (codes.shape[0],) or (weights < 0).any() or abs(float(weights.sum()) - 1) > 1e-6:
        raise ValueError(f"weights must be {codes.shape[0]} non-negative numbers summing to one")
    return apply_masks(mixture, torch.tensordot(weights, masks, dims=1), config)


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
