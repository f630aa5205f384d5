"""The results chapter (notebooks/12_results.md): every method on the same test chunks.

* :class:`ResultsChapterConfig`: how many test chunks per pair, and how many of them the
  generative rows separate, per profile;
* :func:`test_sets`: the four pairs' test sets and the evenly spread chunks of each;
* :func:`score_methods`: every registered row of :func:`sepcore.results.table_rows` on those
  chunks, then the per-chunk scores other chapters wrote (:func:`sepcore.results.collect_external`);
* :func:`drums_bass_verdicts`: the numbers and verdicts the chapter's prose quotes for drums/bass;
* :func:`speed_table`: seconds of ``separate`` per second of audio, beside the mean SDR.

Scores are :func:`sepcore.evaluation.evaluate`'s frame (one row per chunk and source) with the
columns ``pair`` and ``family`` added.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sepcore.evaluation import evaluate
from sepcore.profiles import ProfileConfig
from sepcore.results import (
    CODEC_ORACLES,
    MASK_ORACLES,
    PAIRS,
    chunk_budget,
    collect_external,
    oracle_label,
    spread_indices,
)


@dataclass
class ResultsChapterConfig(ProfileConfig):
    """``n_chunks`` test chunks per pair (all when ``None``); the generative rows separate the first
    ``n_generative_chunks`` of them (:func:`sepcore.results.chunk_budget` may lower it per method)."""

    n_chunks: int | None = 40
    n_generative_chunks: int | None = 8

    @classmethod
    def quick(cls):
        return cls(n_chunks=3, n_generative_chunks=1)

    @classmethod
    def full(cls):
        return cls(n_chunks=None, n_generative_chunks=None)


def test_sets(root, n_chunks: int | None) -> tuple[dict, dict]:
    """``({"drums/bass": SlakhMixtures, ...}, {pair: chunk indices})`` for every pair of :data:`PAIRS`."""
    from sepcore.data.slakh import SlakhMixtures

    datasets = {f"{a}/{b}": SlakhMixtures(root, classes=(a, b), split="test") for a, b in PAIRS}
    return datasets, {pair: spread_indices(len(data), n_chunks) for pair, data in datasets.items()}


def score_methods(datasets: dict, indices: dict, rows, *, profile: str, n_generative_chunks: int | None,
                  tables_root=None) -> pd.DataFrame:
    """Every row on every pair it has models for, then (with ``tables_root``) the other chapters'
    per-chunk scores of methods this function did not run. Returns the per-chunk scores."""
    frames = []
    for pair, data in datasets.items():
        for row in rows:
            separator = row.build(data)
            if separator is None:                       # no priors for this pair
                continue
            chosen = indices[pair]
            if row.family == "generative":
                chosen = chosen[:chunk_budget(row.label, profile, n_generative_chunks)]
            frames.append(evaluate(data, separator, method=row.label, indices=chosen).assign(pair=pair, family=row.family))
    scores = pd.concat(frames, ignore_index=True)
    external = collect_external(tables_root) if tables_root is not None else pd.DataFrame()
    if len(external):                                   # rows this chapter ran itself are not read twice
        external = external[~external.method.isin(scores.method.unique())]
    if len(external):
        scores = pd.concat([scores, external[scores.columns.intersection(external.columns)]], ignore_index=True)
    return scores


def drums_bass_verdicts(numeric: pd.DataFrame, scores: pd.DataFrame) -> dict:
    """The drums/bass numbers of the chapter's prose, ``{glue name: text}``: the best and worst blind
    baselines, the supervised model, the weaker mask oracle, the codec ceilings, the best generative
    row, and whether each of the papers' orderings holds. ``numeric`` is the second frame of
    :func:`sepcore.results.main_table`."""
    db = numeric[numeric.pair == "drums/bass"].groupby(["method", "family"], sort=False)["sdr_mean"].mean().reset_index()
    blind = db[db.family == "blind"].sort_values("sdr_mean", ascending=False)
    best_blind, worst_blind = blind.iloc[0], blind.iloc[-1]
    supervised = db[db.family == "supervised"].iloc[0]
    oracle = db[db.method.isin([oracle_label(n) for n in MASK_ORACLES])].sort_values("sdr_mean").iloc[0]
    others = db[db.family != "oracle"]
    codec = db[db.method.isin([oracle_label(n) for n in CODEC_ORACLES])].set_index("method").sdr_mean
    lq_ceiling, vq_ceiling = codec[oracle_label("LQ-VAE codes")], codec[oracle_label("VQ-VAE codes")]
    target_latent, target_lass = best_blind.sdr_mean + 3, best_blind.sdr_mean + 4
    lass_sdr = db.set_index("method").sdr_mean.get("LASS (beam, 10 beams)", np.nan)
    best_gen = db[db.family == "generative"].sort_values("sdr_mean", ascending=False).iloc[0]
    gen_chunks = scores[(scores.pair == "drums/bass") & (scores.method == best_gen.method)]["id"].nunique()

    def verdict(holds) -> str:
        return "holds" if holds else "does not hold"

    return {
        "lq_ceiling": f"{lq_ceiling:.2f}", "vq_ceiling": f"{vq_ceiling:.2f}",
        "target_latent": f"{target_latent:.2f}", "target_lass": f"{target_lass:.2f}",
        "latent_target_vs_ceiling": (f"{target_latent - lq_ceiling:.2f} dB above" if target_latent > lq_ceiling
                                     else f"{lq_ceiling - target_latent:.2f} dB below"),
        "lass_target_vs_ceiling": (f"{target_lass - vq_ceiling:.2f} dB above" if target_lass > vq_ceiling
                                   else f"only {vq_ceiling - target_lass:.2f} dB below"),
        "lass_below_ceiling": f"{vq_ceiling - lass_sdr:.2f}",
        "best_blind": best_blind.method, "best_blind_sdr": f"{best_blind.sdr_mean:.2f}",
        "worst_blind": worst_blind.method, "worst_blind_sdr": f"{worst_blind.sdr_mean:.2f}",
        "sup_sdr": f"{supervised.sdr_mean:.2f}", "sup_vs_blind": verdict(supervised.sdr_mean > best_blind.sdr_mean),
        "oracle_min": oracle.method, "oracle_min_sdr": f"{oracle.sdr_mean:.2f}",
        "oracle_bound": verdict(oracle.sdr_mean > others.sdr_mean.max()),
        "best_gen": best_gen.method, "best_gen_sdr": f"{best_gen.sdr_mean:.2f}",
        "gen_vs_blind": verdict(best_gen.sdr_mean > best_blind.sdr_mean),
        "gen_margin": f"{best_gen.sdr_mean - best_blind.sdr_mean:+.2f}", "best_gen_n": gen_chunks,
    }


def speed_table(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per method: mean SDR over pairs and classes, seconds of ``separate`` per second of
    audio (each chunk counted once) and the number of chunks."""
    rows = []
    for (method, family), group in scores.groupby(["method", "family"], sort=False):
        chunks = group.drop_duplicates(["pair", "id"])
        rows.append({"method": method, "family": family, "sdr_mean": group["sdr"].mean(),
                     "seconds_per_second": chunks["seconds"].sum() / chunks["audio_seconds"].sum(),
                     "n_chunks": len(chunks)})
    return pd.DataFrame(rows)
