"""The variational chapter (notebooks/07_variational.md): amortised variational separation (paper
002, Eq. 21 with the corrected Eq. 23) against annealed Langevin, on the toy data and on drums + bass.

* :class:`VariationalChapterConfig`: the chapter's sizes per profile;
* :func:`settings_table`: the encoders' and their training's settings;
* :func:`toy_comparison`: the variational separator on every toy test mixture, and beside Langevin
  (same priors) on the first ones, with the trivial estimate, in one run;
* :func:`prior_preferences`: what each flow prior rewards (own class, other classes, the mixture, silence);
* :func:`music_comparison`: the same on drums + bass test chunks.

Shapes: toy items have ``sources (K, T)`` and ``mixture (T,)``; estimates ``(N, K, T)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from sepcore.evaluation import evaluate, evaluate_batched, summarise
from sepcore.mixing import get_mixing
from sepcore.profiles import ProfileConfig
from sepcore.separation.langevin import LangevinConfig, LangevinSeparator
from sepcore.separation.naive import average

TRIVIAL = "mixture (every source = m)"


@dataclass
class VariationalChapterConfig(ProfileConfig):
    """Toy test: ``n_mixtures`` mixtures of ``segment`` samples, the first ``n_langevin`` also through
    Langevin. Drums + bass test: chunks of ``music_chunk_length`` samples, at most ``music_n`` of
    them, the first ``music_n_langevin`` also through Langevin."""

    n_mixtures: int = 100
    segment: int = 1024
    n_langevin: int = 20
    music_chunk_length: int = 65536
    music_n: int = 24
    music_n_langevin: int = 2

    @classmethod
    def quick(cls):
        return cls(n_mixtures=4, n_langevin=4, music_chunk_length=8192, music_n=2, music_n_langevin=1)


def settings_table(toy) -> pd.DataFrame:
    """The settings of the toy encoders ``toy`` (:func:`sepcore.pretrained.get_variational`) and of their training."""
    config, train = toy.separator.config, toy.train_config
    return pd.DataFrame([
        {"setting": "posterior", "value": config.posterior},
        {"setting": "encoder width × layers", "value": f"{config.width} × {config.n_layers}"},
        {"setting": "receptive field (samples)", "value": 2 ** (config.n_layers + 1) - 1},
        {"setting": "parameters (all encoders)", "value": sum(p.numel() for p in toy.separator.parameters())},
        {"setting": "likelihood σ", "value": config.likelihood_sigma},
        {"setting": "prior noise level σ_p", "value": config.prior_sigma},
        {"setting": "steps × batch × segment",
         "value": f"{toy.history[-1]['step']} × {train.batch_size} × {train.segment_length}"},
        {"setting": "KL warm-up (fraction of steps)", "value": train.kl_warmup},
        {"setting": "training wall time (min)", "value": round(toy.train_seconds / 60, 1)},
        {"setting": "mixing", "value": get_mixing()},
    ])


@dataclass
class ToyComparison:
    """The toy table (per source and over all sources, with seconds per second), its two summaries,
    both separators' estimates and speeds, and the tag of the rows on the first ``n_langevin`` mixtures."""

    table: pd.DataFrame
    summary: pd.DataFrame
    overall: pd.DataFrame
    var_estimates: torch.Tensor
    lv_estimates: torch.Tensor
    var_rtf: float
    var_sub_rtf: float
    lv_rtf: float
    tag: str
    schedule: LangevinConfig

    def sdr(self, method: str, column: str = "sdr_median") -> float:
        """Over all sources: ``column`` of ``method`` (append :attr:`tag` for the first mixtures)."""
        return float(self.overall[self.overall.method == method][column].iloc[0])


def toy_comparison(test, separator, priors, *, profile: str, n_langevin: int, device="cpu",
                   seed: int = 0) -> ToyComparison:
    """The variational ``separator`` and the trivial estimate on every mixture of ``test``; on the first
    ``n_langevin``, in the same run, Langevin with the same ``priors`` (its profile's schedule), the
    variational separator again and the trivial estimate (Langevin costs hundreds of prior gradients
    per mixture, so on a CPU it runs on the first mixtures only)."""
    from sepcore.data.toy import WAVEFORMS, ToyDataset

    def trivial(m):
        return average(m, len(WAVEFORMS))

    baseline = evaluate(test, trivial, method=TRIVIAL)
    var_frame, var_rtf, var_estimates = evaluate_batched(test, separator.separate_batch, method="variational")
    subset = ToyDataset(test.config, "test", n_items=n_langevin)
    tag = f" [first {n_langevin}]"
    schedule = LangevinConfig.for_profile(profile)
    langevin = LangevinSeparator(priors, schedule, device=str(device), seed=seed)
    lv_frame, lv_rtf, lv_estimates = evaluate_batched(subset, langevin.separate_batch, method="langevin" + tag)
    var_sub, var_sub_rtf, _ = evaluate_batched(subset, separator.separate_batch, method="variational" + tag)
    base_sub = evaluate(subset, trivial, method=TRIVIAL + tag)
    scores = pd.concat([baseline, var_frame, base_sub, var_sub, lv_frame])
    summary = summarise(scores)
    overall = summarise(scores.assign(source="all"))
    table = pd.concat([summary, overall]).drop(columns=["seconds_per_second"], errors="ignore")
    table["seconds_per_second"] = table.method.map(
        {"variational": var_rtf, "variational" + tag: var_sub_rtf, "langevin" + tag: lv_rtf}).fillna(0.0)
    return ToyComparison(table, summary, overall, var_estimates, lv_estimates, var_rtf, var_sub_rtf, lv_rtf, tag, schedule)


@torch.no_grad()
def prior_preferences(test, priors, config, *, segment: int, device="cpu", n: int = 16) -> pd.DataFrame:
    """Mean ``log p(x | sigma_p)`` (nats per sample) of each flow prior, on the first ``n`` test
    mixtures' own-class sources, the best other class, the mixture and silence (all zeros), and
    whether it prefers silence to its own class."""
    clean = test.batch(range(min(len(test), n)))                    # (n, sources, time)
    rows = []
    for k, name in enumerate(config.sources):
        prior = priors[k].to(device)

        def score(x, prior=prior):
            return float(prior.log_prob(x.to(device), config.prior_sigma).mean()) / segment

        row = {"prior": name, "own class": score(clean[:, k]), "silence": score(torch.zeros_like(clean[:, k])),
               "mixture": score(clean.mean(1) if get_mixing() == "mean" else clean.sum(1))}
        row["best other class"] = max(score(clean[:, j]) for j in range(len(config.sources)) if j != k)
        rows.append(row)
    table = pd.DataFrame(rows)
    table["prefers silence"] = table["silence"] > table["own class"]
    return table


def music_comparison(music, test, *, n: int, n_langevin: int, profile: str, device="cpu", seed: int = 0):
    """``(scores summary, Langevin separator)`` on drums + bass chunks of ``test``: the trivial estimate
    and the variational encoders ``music`` (:func:`sepcore.pretrained.get_variational`) on the first
    ``n``; both, and Langevin with the same priors (``LangevinConfig.music``), on the first ``n_langevin``."""
    classes = music.separator.config.sources
    every, first = list(range(n)), list(range(n_langevin))
    tag = f" [first {n_langevin}]"
    langevin = LangevinSeparator(music.priors, LangevinConfig.music(profile), device=str(device), seed=seed)
    scores = pd.concat([
        evaluate(test, lambda m: average(m, len(classes)), method=TRIVIAL, indices=every),
        evaluate(test, music.separator.separate, method="variational", indices=every),
        evaluate(test, music.separator.separate, method="variational" + tag, indices=first),
        evaluate(test, langevin, method="langevin" + tag, indices=first),
    ])
    return summarise(scores), langevin
