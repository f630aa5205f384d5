"""One flow prior per source class: score each prior on each class.

The priors themselves come from :func:`sepcore.pretrained.get_flow_priors` (the committed
checkpoints :func:`sepcore.paths.flow_prior_path` under ``default``, trained on the fly otherwise).
:func:`cross_likelihood` is Frank's heat map (paper 002): the mean log-likelihood, in nats per
sample, of prior ``j`` (at noise level sigma) on noisy crops ``x_i + sigma * eps`` of class ``i``.
:func:`discrimination` reduces it to how often, and by what margin, a crop's own prior wins;
:func:`score_rms` measures smoothness as the RMS of the score ``d/dx log p(x | sigma)``
(:func:`prior_score`), and
:func:`denoising_gain` how much the score knows about the clean signal (Tweedie's formula);
:func:`training_table` summarises how each prior was trained.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import torch

from sepcore.models.flow import FlowPrior


def training_table(priors: Mapping[str, FlowPrior], info: Mapping[str, dict]) -> pd.DataFrame:
    """One row per prior of :func:`sepcore.pretrained.get_flow_priors`: parameters, steps, minutes, final clean / noisy NLL
    (nats per sample) and checkpoint size in MB (NaN when trained on the fly)."""
    rows = []
    for name, prior in priors.items():
        path, last = info[name]["path"], info[name]["history"][-1]
        rows.append({
            "prior": name, "parameters": sum(p.numel() for p in prior.parameters()),
            "steps": info[name]["steps_done"], "train_minutes": info[name]["wall_seconds"] / 60,
            "final_nll_clean": last["nll_clean"], "final_nll_noisy": last["nll_noisy"],
            "checkpoint_MB": path.stat().st_size / 1e6 if path is not None else float("nan"),
        })
    return pd.DataFrame(rows)


@torch.no_grad()
def cross_likelihood(
    priors: Mapping[str, FlowPrior],
    data: Mapping[str, torch.Tensor],
    sigmas: Sequence[float],
    generator: torch.Generator,
) -> pd.DataFrame:
    """Rows ``sigma, prior, data, log_prob`` (mean nats per sample) and ``own_wins`` (fraction of
    crops of class ``data`` whose highest likelihood comes from prior ``data``; repeated per prior).

    Args:
        data: ``{class: (n, time) clean crops}``; each sigma adds its own noise draw.
    """
    rows = []
    for sigma in sigmas:
        for data_name, clean in data.items():
            noisy = clean + sigma * torch.randn(clean.shape, generator=generator)
            scores = {name: prior.log_prob(noisy, sigma) / clean.shape[-1] for name, prior in priors.items()}
            table = torch.stack(list(scores.values()))                         # (n_priors, n)
            winners = table.argmax(0)
            own = list(scores).index(data_name) if data_name in scores else -1
            own_wins = float((winners == own).float().mean())
            for prior_name, values in scores.items():
                rows.append({"sigma": sigma, "prior": prior_name, "data": data_name,
                             "log_prob": float(values.mean()), "own_wins": own_wins})
    return pd.DataFrame(rows)


def discrimination(frame: pd.DataFrame) -> pd.DataFrame:
    """Per sigma: ``accuracy`` (mean own_wins over classes) and ``margin`` (mean over classes of
    own prior's log_prob minus the best other prior's, nats per sample; > 0 means discriminative)."""
    rows = []
    for sigma, group in frame.groupby("sigma"):
        margins, accuracy = [], []
        for data_name, block in group.groupby("data"):
            own = block[block.prior == data_name].log_prob
            other = block[block.prior != data_name].log_prob
            if len(own) and len(other):
                margins.append(float(own.iloc[0] - other.max()))
            accuracy.append(float(block.own_wins.iloc[0]))
        rows.append({"sigma": sigma, "accuracy": sum(accuracy) / len(accuracy), "margin": sum(margins) / len(margins)})
    return pd.DataFrame(rows)


def prior_score(prior, noisy: torch.Tensor, sigma: float) -> torch.Tensor:
    """``d/dy log p(y | sigma)`` of a noise-conditioned prior at ``noisy (n, time)``, same shape (gradients on
    even under ``no_grad``). A prior with its own ``score`` (score priors, the exact toy prior) gives it directly."""
    if hasattr(prior, "score"):
        with torch.no_grad():
            return prior.score(noisy.detach(), sigma)
    y = noisy.detach().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(prior.log_prob(y, sigma).sum(), y)
    return grad


def score_rms(prior: FlowPrior, clean: torch.Tensor, sigma: float, generator: torch.Generator) -> float:
    """RMS over samples of ``d/dx log p(x + sigma eps | sigma)``: smaller means a smoother density."""
    noisy = clean + sigma * torch.randn(clean.shape, generator=generator)
    return float(prior_score(prior, noisy, sigma).pow(2).mean().sqrt())


def denoising_gain(prior, clean: torch.Tensor, sigma: float, generator: torch.Generator) -> dict:
    """How well a noise-conditioned prior denoises its own class: Tweedie's formula
    ``E[x | y] = y + sigma^2 d/dy log p_sigma(y)`` (Robbins 1956; Efron 2011) turns the score into
    the posterior-mean denoiser that an exact prior of the noisy data would give.

    Returns ``{"sigma", "snr_in_db", "snr_out_db", "gain_db"}`` over all crops of ``clean (n, time)``
    with ``y = clean + sigma * eps``. A prior that knows its class well gains many dB at every
    level; a gain near 0 dB means its score carries little information about the clean signal,
    which is all annealed Langevin has to steer by at that level.
    """
    noise = sigma * torch.randn(clean.shape, generator=generator, dtype=clean.dtype)
    noisy = clean + noise
    denoised = noisy + sigma**2 * prior_score(prior, noisy, sigma)
    energy = clean.pow(2).sum()
    snr_in = float(10 * torch.log10(energy / noise.pow(2).sum()))
    snr_out = float(10 * torch.log10(energy / (denoised - clean).pow(2).sum()))
    return {"sigma": sigma, "snr_in_db": snr_in, "snr_out_db": snr_out, "gain_db": snr_out - snr_in}


def leakage(priors: Mapping[str, torch.nn.Module], clean: Mapping[str, torch.Tensor], sigmas, generator: torch.Generator,
            mixing_weight: float = 1.0) -> pd.DataFrame:
    """How much of each *other* class a class prior's denoiser keeps.

    For prior ``a``, every other class ``b`` and level ``sigma``: ``y = w s_a + w s_b + sigma eps``
    (``w`` the mixing weight of a two-source mixture, so ``y`` is a noisy mixture), the Tweedie
    denoiser ``D_a(y) = y + sigma^2 d/dy log p_a(y | sigma)`` and the regression coefficients

        own   = <D_a(y), w s_a> / ||w s_a||^2,     kept_b = <D_a(y) - w s_a, w s_b> / ||w s_b||^2

    (sums over crops and samples). A prior that rejects other classes has ``own`` near 1 and
    ``kept_b`` near 0; a prior trained only on its class plus noise may keep much of ``b``, and
    annealed Langevin then forms blends. ``clean``: ``{class: (n, time)}`` crops of every class.

    Returns one row per (prior, other class, sigma): ``prior, other, sigma, own, kept``.
    """
    rows = []
    for a, prior in priors.items():
        for b, other in clean.items():
            if b == a:
                continue
            s_a, s_b = mixing_weight * clean[a], mixing_weight * other
            for sigma in sigmas:
                y = s_a + s_b + sigma * torch.randn(s_a.shape, generator=generator, dtype=s_a.dtype)
                denoised = y + sigma**2 * prior_score(prior, y, float(sigma))
                rows.append({"prior": a, "other": b, "sigma": float(sigma),
                             "own": float((denoised * s_a).sum() / s_a.pow(2).sum()),
                             "kept": float(((denoised - s_a) * s_b).sum() / s_b.pow(2).sum())})
    return pd.DataFrame(rows)
