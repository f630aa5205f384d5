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

**Posterior Wiener filter** (:func:`wiener_sources`, our extension). The Wiener filter of a
Gaussian source model divides the sources' **power** spectra; with the rows as posterior samples,
the posterior mean of each source's power is the average of the rows' ``|V_k|^p``, so

    M_k = (1/R) sum_r |V_k(z^(r))|^p / sum_j (1/R) sum_r |V_j(z^(r))|^p,

a mask from the averaged powers instead of an average of per-row masks. Rows where a source is
loud weigh in with their power rather than with a ratio that saturates at one. With one row both
estimates are the masked output of that row. Validation chooses between them.

**Shifts** (:func:`shifted_posterior_sources`, our extension; demucs averages its network over
random time shifts in the same spirit). A codec with one code per ``hop`` samples cuts the audio
on a fixed frame grid. Searching the mixture delayed by ``k * hop / n`` samples (``k = 0 .. n-1``)
gives ``n`` searches on ``n`` grids; the mean of their posterior estimates, each cropped back,
averages over where the frames fall. Validation chooses ``n``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sepcore.separation.blind.stft import STFTConfig, apply_masks, ratio_masks, stft

MASK_STFT = STFTConfig(n_fft=1024, hop_length=256)
OUTPUTS = ("raw", "masked")
#: The best row, the posterior mean of all rows' masks, or the Wiener filter of their mean powers.
ESTIMATES = ("map", "mean", "wiener")


def check_output(output: str) -> str:
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    return output


def check_estimate(estimate: str, output: str) -> str:
    """``map`` (the best row), ``mean`` (:func:`mean_masked_sources`) or ``wiener``
    (:func:`wiener_sources`); the last two are masks of every row: ``output="masked"``."""
    if estimate not in ESTIMATES:
        raise ValueError(f"estimate must be one of {ESTIMATES}, got {estimate!r}")
    if estimate != "map" and output != "masked":
        raise ValueError(f'estimate="{estimate}" masks the mixture with every row: it needs output="masked"')
    return estimate


def _fit_frames(magnitudes: torch.Tensor, frames: int) -> torch.Tensor:
    """``(..., F, S)`` -> ``(..., F, frames)`` float64: a decode one frame short repeats its last frame."""
    magnitudes = magnitudes.detach().cpu().double()
    if magnitudes.shape[-1] < frames:
        magnitudes = F.pad(magnitudes, (0, frames - magnitudes.shape[-1]), mode="replicate")
    return magnitudes[..., :frames]


def mask_with_magnitudes(mixture: torch.Tensor, magnitudes: torch.Tensor, config: STFTConfig = MASK_STFT,
                         power: float = 2.0) -> torch.Tensor:
    """``mixture (T,)``, non-negative ``magnitudes (N, F, S)`` on ``config``'s STFT (``S`` may be one
    frame short: the last frame is repeated) -> ``(N, T)`` masked estimates."""
    mixture = torch.as_tensor(mixture).detach().cpu().reshape(-1)
    masks = ratio_masks(_fit_frames(magnitudes, mixture.shape[0] // config.hop_length + 1).numpy(), power=power)
    return apply_masks(mixture, masks, config)


def mask_with_waveforms(mixture: torch.Tensor, estimates: torch.Tensor, config: STFTConfig = MASK_STFT,
                        power: float = 2.0) -> torch.Tensor:
    """``mixture (T,)``, ``estimates (N, T)`` -> ``(N, T)``: masks from the estimates' magnitude spectrograms."""
    estimates = torch.as_tensor(estimates).detach().cpu()[..., : mixture.shape[-1]]
    return mask_with_magnitudes(mixture, stft(estimates, config).abs(), config, power)


def magnitudes_of_codes(codec, codes: torch.Tensor, length: int) -> tuple[torch.Tensor, STFTConfig]:
    """``codes (R, N, S)`` -> ``(R, N, F, frames)`` float64 magnitudes of each row's decode on the
    STFT that masks a mixture of ``length`` samples (the spectral codec's own, else :data:`MASK_STFT`),
    and that :class:`STFTConfig`."""
    R, N, S = codes.shape
    if hasattr(codec, "decode_magnitude"):
        config = STFTConfig(n_fft=codec.config.n_fft, hop_length=codec.config.hop)
        magnitudes = codec.decode_magnitude(codes.reshape(R * N, S))
    else:
        config = MASK_STFT
        magnitudes = stft(codec.decode(codes.reshape(R * N, S)).detach().float().cpu()[..., :length], config).abs()
    frames = length // config.hop_length + 1
    return _fit_frames(magnitudes, frames).reshape(R, N, -1, frames), config


def masks_of_codes(codec, codes: torch.Tensor, mixture: torch.Tensor, power: float = 2.0):
    """``codes (R, N, S)`` -> ``(R, N, F, frames)`` float64 ratio masks of each row's decode on the
    STFT they are applied with, and that :class:`STFTConfig`."""
    magnitudes, config = magnitudes_of_codes(codec, codes, mixture.shape[-1])
    masks = torch.from_numpy(ratio_masks(magnitudes.transpose(0, 1).numpy(), power=power))   # over sources
    return masks.transpose(0, 1), config


def _row_weights(weights, R: int) -> torch.Tensor:
    if weights is None:
        return torch.full((R,), 1.0 / R, dtype=torch.float64)
    weights = torch.as_tensor(weights, dtype=torch.float64).cpu()
    if weights.shape != (R,) or (weights < 0).any() or abs(float(weights.sum()) - 1) > 1e-6:
        raise ValueError(f"weights must be {R} non-negative numbers summing to one")
    return weights


@torch.no_grad()
def mean_masked_sources(codec, codes: torch.Tensor, mixture: torch.Tensor, power: float = 2.0,
                        weights: torch.Tensor | None = None) -> torch.Tensor:
    """``codes (R, N, S)``: R code sequences of one mixture ``(T,)`` -> ``(N, T)``, the mixture masked
    by the (``weights (R,)``-weighted, default uniform) mean of the rows' masks: the Monte Carlo
    posterior mean when the rows are posterior samples (module docstring)."""
    mixture = torch.as_tensor(mixture).detach().cpu().reshape(-1)
    weights = _row_weights(weights, codes.shape[0])
    masks, config = masks_of_codes(codec, codes, mixture, power)                  # (R, N, F, frames)
    return apply_masks(mixture, torch.tensordot(weights, masks, dims=1), config)


@torch.no_grad()
def wiener_sources(codec, codes: torch.Tensor, mixture: torch.Tensor, power: float = 2.0,
                   weights: torch.Tensor | None = None) -> torch.Tensor:
    """``codes (R, N, S)``: R code sequences of one mixture ``(T,)`` -> ``(N, T)``, the mixture masked
    by the ratio of the rows' (``weights (R,)``-weighted) mean powers ``|V_k|^power`` (module
    docstring: the posterior Wiener filter)."""
    mixture = torch.as_tensor(mixture).detach().cpu().reshape(-1)
    weights = _row_weights(weights, codes.shape[0])
    magnitudes, config = magnitudes_of_codes(codec, codes, mixture.shape[0])      # (R, N, F, frames)
    mean_power = torch.tensordot(weights, magnitudes.clamp_min(0) ** power, dims=1)  # (N, F, frames)
    return apply_masks(mixture, ratio_masks(mean_power.numpy(), power=1.0), config)


def shifted_posterior_sources(codec, rows_by_offset, mixture: torch.Tensor, estimate: str,
                              power: float = 2.0) -> torch.Tensor:
    """``(N, T)``: the mean over offsets of :func:`posterior_sources` of each search in
    ``rows_by_offset`` (``[(offset, codes (R, N, S))]``, the codes of the mixture ``(T,)`` delayed by
    ``offset`` samples, zeros in front), each cropped back to the mixture's time (module docstring:
    shifts). Every term masks the same mixture, so the mean still mixes back to it."""
    mixture = torch.as_tensor(mixture).detach().cpu().reshape(-1)
    T = mixture.shape[0]
    total = 0.0
    for offset, codes in rows_by_offset:
        delayed = F.pad(mixture, (offset, 0))
        total = total + posterior_sources(codec, codes, delayed, estimate, power)[:, offset:offset + T]
    return total / len(rows_by_offset)


def posterior_sources(codec, codes: torch.Tensor, mixture: torch.Tensor, estimate: str, power: float = 2.0):
    """``codes (R, N, S)`` -> ``(N, T)`` by the posterior ``estimate`` over all rows: ``mean``
    (:func:`mean_masked_sources`) or ``wiener`` (:func:`wiener_sources`)."""
    if estimate == "mean":
        return mean_masked_sources(codec, codes, mixture, power)
    if estimate == "wiener":
        return wiener_sources(codec, codes, mixture, power)
    raise ValueError(f'a posterior estimate is "mean" or "wiener", got {estimate!r}')


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
