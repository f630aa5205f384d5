"""The latent Bayes chapter (notebooks/09_latent_bayes.md): paper 003's Tables 1 and 2 and its ablations.

* :class:`LatentBayesChapterConfig`: the chapter's chunks per profile;
* :func:`run_configurations`: the mixture, latent Bayes in each configuration of :data:`RUNS`
  (candidates sampled once per chunk, then scored by every selection rule,
  :class:`~sepcore.separation.latent_runs.CandidateBank`), and each codec's ceiling, on the same
  chunks;
* :func:`pair_rows`: one pair of instruments' rows of Table 1;
* :func:`other_pair_scores`: the same for another pair with the LQ-VAE's priors;
* :func:`ablation`: rows of the wide SDR table with the ablated setting as a column and the mean.

Shapes: scores frames have one row per (method, chunk, source); ``wide`` is method x source.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

import pandas as pd

from sepcore.evaluation import evaluate, summarise
from sepcore.profiles import ProfileConfig
from sepcore.separation.latent_bayes import LatentBayesSeparator
from sepcore.separation.latent_runs import CandidateBank
from sepcore.separation.naive import average
from sepcore.separation.oracle import codec_oracle_separator


@dataclass
class LatentBayesChapterConfig(ProfileConfig):
    """Chunks of ``chunk_length`` samples: ``n_chunks`` of drums + bass, ``n_pair_chunks`` of each
    ``extra_pairs`` and ``n_chunks3`` of drums + bass + guitar."""

    chunk_length: int = 65536
    n_chunks: int = 8
    extra_pairs: tuple = (("drums", "guitar"), ("guitar", "bass"))
    n_pair_chunks: int = 4
    n_chunks3: int = 2

    @classmethod
    def quick(cls):
        return cls(chunk_length=16384, n_chunks=2, extra_pairs=(), n_chunks3=1)


#: name -> (autoencoder, sigma of Eq. 6); rejection weights alpha are scored on the first.
RUNS = {"LQ-VAE σ=0.4": ("lqvae", 0.4), "LQ-VAE σ=0.1": ("lqvae", 0.1), "VQ-VAE σ=0.4": ("vqvae", 0.4)}
ALPHAS = (0.0, 0.5, 1.0)
#: The codec ceilings: the codes of the true sources, decoded (ORACLE: they read the answer).
CEILING = {kind: f"ORACLE codes of the true sources ({label} ceiling)" for kind, label in (("lqvae", "LQ-VAE"), ("vqvae", "VQ-VAE"))}


def run_configurations(test, indices, vqvaes: dict, priors: dict, base, device="cpu") -> tuple[pd.DataFrame, dict, dict]:
    """``(scores, {run: CandidateBank}, {run: peak RSS in MB after it})`` on ``indices`` of ``test``."""
    n_sources = len(test.classes)
    frames, banks, peak_rss = [evaluate(test, lambda m: average(m, n_sources), method="mixture (ŝ = m)", indices=indices)], {}, {}
    for name, (kind, sigma) in RUNS.items():
        separator = LatentBayesSeparator(vqvaes[kind], priors[kind], base.replace(sigma=sigma), device=device)
        bank = CandidateBank(separator, test, test.sample_rate)
        frames.append(bank.evaluate(name, indices, alphas=ALPHAS if name == next(iter(RUNS)) else (0.0,)))
        banks[name] = bank
        peak_rss[name] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for kind, label in CEILING.items():
        frames.append(evaluate(test, codec_oracle_separator(test, vqvaes[kind]), method=label, indices=indices))
    return pd.concat(frames, ignore_index=True), banks, peak_rss


def wide_table(scores: pd.DataFrame, classes) -> pd.DataFrame:
    """Mean SDR per method (rows, in order of appearance) and source (columns, in ``classes`` order)."""
    summary = summarise(scores)
    wide = summary.pivot(index="method", columns="source", values="sdr_mean")[list(classes)]
    return wide.loc[list(dict.fromkeys(summary["method"]))]


def pair_rows(pair, wide: pd.DataFrame, n_chunks: int, methods) -> list[dict]:
    """Table 1's rows of one pair: both sources' SDR and their mean, per method."""
    rows = []
    for method in methods:
        sdr_1, sdr_2 = (float(wide.loc[method, c]) for c in pair)
        rows.append({"pair": "/".join(pair), "method": method, "source 1": pair[0], "SDR 1": sdr_1,
                     "source 2": pair[1], "SDR 2": sdr_2, "mean SDR": (sdr_1 + sdr_2) / 2, "n_chunks": n_chunks})
    return rows


def other_pair_scores(pair_test, vqvae, pair_priors, base, device="cpu") -> pd.DataFrame:
    """The mixture, LQ-VAE latent Bayes (sigma 0.4, alpha 0) and the LQ-VAE ceiling on another pair's chunks."""
    indices = list(range(len(pair_test)))
    bank = CandidateBank(LatentBayesSeparator(vqvae, pair_priors, base.replace(sigma=0.4), device=device),
                         pair_test, pair_test.sample_rate)
    return pd.concat([
        evaluate(pair_test, lambda m: average(m, 2), method="mixture (ŝ = m)", indices=indices),
        bank.evaluate("LQ-VAE σ=0.4", indices, alphas=(0.0,)),
        evaluate(pair_test, codec_oracle_separator(pair_test, vqvae), method=CEILING["lqvae"], indices=indices)],
        ignore_index=True)


def ablation(wide: pd.DataFrame, rows, setting: str, values, classes) -> pd.DataFrame:
    """``rows`` of ``wide`` with the ablated ``setting`` as the second column and the mean over ``classes``."""
    table = wide.loc[list(rows)].reset_index()
    table.insert(1, setting, list(values))
    table["mean SDR"] = table[list(classes)].mean(axis=1)
    return table
