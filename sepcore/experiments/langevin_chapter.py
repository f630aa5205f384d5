"""The Langevin chapter's flow-prior half (notebooks/06_langevin.md): annealed Langevin (paper 002,
Eq. 16-17, Algorithm 1; BASIS's annealing) with the flow priors, on the toy mixtures and on
Slakh-format drums + bass, and the diagnostics that locate its failure.

* :class:`LangevinChapterConfig`: the chapter's sizes per profile;
* :func:`separate_scored`: a whole dataset separated in batches and scored, with the wall time per
  separated second and the sampler's per-level diagnostics;
* :func:`toy_separation`, :func:`schedule_variants`, :func:`toy_schedule_ablation`: the toy table and
  its ablation over levels, steps, the top level and the likelihood weight;
* :func:`truth_log_prior`, :func:`start_at_truth`, :func:`two_source_check`, :func:`denoising_table`:
  the oracle diagnostics (they read the true sources; none is a separation result);
* :func:`music_separation`, :func:`music_schedule_ablation`: the same on drums + bass chunks.

The chapter's second half (score priors, the exact prior, escapes from the blend) lives in
:mod:`sepcore.experiments.langevin_priors`, :mod:`~sepcore.experiments.blend_escapes` and
:mod:`~sepcore.experiments.langevin_slakh`.

Shapes: toy items have ``sources (K, T)`` and ``mixture (T,)``; estimates ``(N, K, T)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from sepcore.evaluation import evaluate, evaluate_batched, summarise
from sepcore.models.priors import denoising_gain
from sepcore.profiles import ProfileConfig
from sepcore.separation.langevin import LangevinConfig, LangevinSeparator, langevin_level
from sepcore.separation.naive import average


@dataclass
class LangevinChapterConfig(ProfileConfig):
    """Toy: ``n_mixtures`` test mixtures of ``segment`` samples; the ablation and the oracle diagnostics
    on the first ``n_ablation``, over the ``(levels, steps per level)`` pairs of ``grid`` and the
    likelihood weights ``likelihood_weights``; the start at the truth runs ``oracle_steps`` steps.
    Drums + bass: the first ``n_music_chunks`` test chunks of ``music_chunk_length`` samples; their
    ablation on the first ``music_short_length`` samples over ``music_grid``. ``listen_overrides``:
    ``(field, value)`` pairs that shorten the score-prior schedule of the listening section."""

    n_mixtures: int = 100
    segment: int = 512
    n_ablation: int = 4
    grid: tuple = ((4, 20), (8, 20), (8, 40))
    likelihood_weights: tuple = (0.0, 4.0)
    oracle_steps: int = 100
    music_chunk_length: int = 65536
    n_music_chunks: int = 4
    music_short_length: int = 22050
    music_grid: tuple = ((4, 20), (8, 20), (8, 40))
    listen_overrides: tuple = ()

    @classmethod
    def quick(cls):
        return cls(n_mixtures=4, segment=1024, n_ablation=2, grid=((2, 5), (5, 20)), likelihood_weights=(0.0,),
                   oracle_steps=20, music_chunk_length=8192, n_music_chunks=1, music_short_length=4096,
                   music_grid=((2, 5),), listen_overrides=(("n_levels", 2), ("steps_per_level", 1)))


@dataclass
class LangevinRun:
    """One dataset through :class:`LangevinSeparator`: ``scores`` (``evaluate``'s rows),
    ``seconds_per_second`` (wall time of the batched separation per separated second),
    ``diagnostics`` (the last batch's per-level rows) and ``estimates (N, K, T)``."""

    scores: pd.DataFrame
    seconds_per_second: float
    diagnostics: list
    estimates: torch.Tensor


def separate_scored(dataset, priors: list, schedule: LangevinConfig, method: str, *, device="cpu", seed: int = 0,
                    batch_size: int = 25) -> LangevinRun:
    """Separate every mixture of ``dataset`` (items ``{"mixture": (T,), "sources": (K, T)}``, with
    ``config.length`` and ``sample_rate``) in batches of ``batch_size`` and score them with
    :func:`sepcore.evaluation.evaluate_batched`)."""
    separator = LangevinSeparator(priors, schedule, device=str(device), seed=seed)
    scores, seconds_per_second, estimates = evaluate_batched(dataset, separator.separate_batch, method=method,
                                                             batch_size=batch_size)
    return LangevinRun(scores, seconds_per_second, separator.last, estimates)


def toy_separation(test, priors: list, schedule: LangevinConfig, *, device="cpu", seed: int = 0):
    """Langevin and its initialisation (every source set to the mixture) on the toy ``test`` set.
    Returns ``(table, run)``: per source and over all sources (``source == "all"``), median and mean
    SDR and SI-SDR, ``seconds_per_second`` the batched separation's wall time (0 for the baseline)."""
    baseline = evaluate(test, lambda m: average(m, len(priors)), method="mixture (initialisation)")
    run = separate_scored(test, priors, schedule, "langevin", device=device, seed=seed)
    scores = pd.concat([baseline, run.scores])
    table = pd.concat([summarise(scores), summarise(scores.assign(source="all"))])
    table = table.drop(columns=["seconds_per_second"], errors="ignore")
    table["seconds_per_second"] = np.where(table.method == "langevin", run.seconds_per_second, 0.0)
    return table, run


def truth_log_prior(priors: list, truth: torch.Tensor, sigmas, seed: int) -> list[float]:
    """Oracle diagnostic: the priors' mean log-likelihood (nats per sample) of the true sources
    ``truth (N, K, T)`` plus fresh noise of each level in ``sigmas``, averaged over the K priors."""
    generator = torch.Generator().manual_seed(seed)
    length = truth.shape[-1]
    with torch.no_grad():
        return [float(np.mean([prior.log_prob(truth[:, k] + sigma * torch.randn(truth[:, k].shape, generator=generator),
                                              sigma).mean() / length for k, prior in enumerate(priors)]))
                for sigma in sigmas]


def schedule_variants(schedule: LangevinConfig, config: LangevinChapterConfig, *, music: bool = False) -> list:
    """``[(label, LangevinConfig)]``: the ``(levels, steps)`` grid, then (toy only) a top level of
    0.2 over 6 levels, then the likelihood weights (drums + bass: 0 only)."""
    grid = config.music_grid if music else config.grid
    variants = [(f"L={L}, steps={S}", schedule.replace(n_levels=L, steps_per_level=S)) for L, S in grid]
    if music:
        return variants + [("w_λ=0.0", schedule.replace(likelihood_weight=0.0))]
    variants += [("σ_max=0.2, L=6", schedule.replace(sigma_max=0.2, n_levels=6))]
    return variants + [(f"w_λ={w}", schedule.replace(likelihood_weight=w)) for w in config.likelihood_weights]


def _ablation_row(label: str, variant: LangevinConfig, scores: pd.DataFrame, seconds_per_second=None,
                  total_steps: bool = True) -> dict:
    row = summarise(scores.assign(source="all")).iloc[0]
    out = {"variant": label, "n_levels": variant.n_levels, "steps_per_level": variant.steps_per_level,
           "likelihood_weight": variant.likelihood_weight}
    if total_steps:
        out["total_steps"] = variant.n_levels * variant.steps_per_level
    return out | {"sdr_median": row.sdr_median, "sdr_mean": row.sdr_mean, "si_sdr_median": row.si_sdr_median,
                  "seconds_per_second": row.seconds_per_second if seconds_per_second is None else seconds_per_second}


def toy_schedule_ablation(subset, priors: list, variants: list, *, device="cpu", seed: int = 0) -> pd.DataFrame:
    """One row per ``(label, schedule)`` of ``variants``: SDR over all sources of ``subset``."""
    rows = []
    for label, variant in variants:
        run = separate_scored(subset, priors, variant, label, device=device, seed=seed)
        rows.append(_ablation_row(label, variant, run.scores, run.seconds_per_second))
    return pd.DataFrame(rows)


def start_at_truth(subset, priors: list, schedule: LangevinConfig, steps: int, seed: int) -> pd.DataFrame:
    """Oracle diagnostic (never a result): ``steps`` Langevin steps at the schedule's last level,
    started at the true sources of ``subset`` plus noise of that level; ``evaluate``'s rows."""
    sigma = schedule.sigmas()[-1].item()
    truth = torch.stack([subset[i]["sources"] for i in range(len(subset))])
    mixtures = torch.stack([subset[i]["mixture"] for i in range(len(subset))])
    generator = torch.Generator().manual_seed(seed)
    held, _ = langevin_level(truth + sigma * torch.randn(truth.shape, generator=generator), mixtures, priors, sigma,
                             schedule.step_sizes()[-1].item(), schedule.likelihood_weight, steps, generator)
    queue = iter(held.clamp(-schedule.clamp, schedule.clamp))
    return evaluate(subset, lambda m: next(queue), method="oracle diagnostic: start at the truth")


def two_source_check(pair_set, priors: list, schedule: LangevinConfig, *, device="cpu", seed: int = 0):
    """Langevin on two-source mixtures ``pair_set`` and their mixture baseline: ``(langevin rows, baseline rows)``."""
    run = separate_scored(pair_set, priors, schedule, "langevin, 2 sources", device=device, seed=seed)
    return run.scores, evaluate(pair_set, lambda m: average(m, 2), method="mixture, 2 sources")


def denoising_table(priors: dict, truth: torch.Tensor, sigmas, seed: int) -> pd.DataFrame:
    """Oracle diagnostic: :func:`sepcore.models.priors.denoising_gain` of each prior of ``priors``
    (``{name: prior}``, in the order of ``truth (N, K, T)``'s sources) on its own class, per σ."""
    generator = torch.Generator().manual_seed(seed)
    return pd.DataFrame([{"prior": name, **denoising_gain(prior, truth[:, k], float(sigma), generator)}
                         for sigma in sigmas for k, (name, prior) in enumerate(priors.items())])


def music_separation(test, indices: list, priors: list, schedule: LangevinConfig, *, device="cpu", seed: int = 0):
    """Langevin and its initialisation on the chunks ``indices`` of ``test``: ``(summary, separator)``."""
    separator = LangevinSeparator(priors, schedule, device=str(device), seed=seed)
    scores = pd.concat([evaluate(test, lambda m: average(m, len(priors)), method="mixture (initialisation)",
                                 indices=indices),
                        evaluate(test, separator, method="langevin", indices=indices)])
    return summarise(scores), separator


def music_schedule_ablation(test, indices: list, length: int, priors: list, variants: list, *, device="cpu",
                            seed: int = 0) -> pd.DataFrame:
    """:func:`toy_schedule_ablation` on the first ``length`` samples of the chunks ``indices`` of
    ``test``, separated one chunk at a time (``seconds_per_second`` from ``evaluate``'s timing)."""
    short = [{"id": item["id"], "sources": item["sources"][:, :length], "mixture": item["mixture"][:length]}
             for item in (test[i] for i in indices)]
    rows = []
    for label, variant in variants:
        separator = LangevinSeparator(priors, variant, device=str(device), seed=seed)
        scores = evaluate(short, separator, method=label, classes=test.classes, sample_rate=test.sample_rate)
        rows.append(_ablation_row(label, variant, scores, total_steps=False))
    return pd.DataFrame(rows)
