"""The LASS audio chapter (notebooks/11_lass_audio.md): paper 004 on drums + bass, and its extensions.

* :class:`LassAudioChapterConfig`: the chapter's sizes and validation grids per profile;
* :func:`compare_samplers`: the mixture and every sampler of Algorithm 1 on the same chunks;
* :func:`lambda_table`: the beam search with the likelihood weighted by each lambda;
* :func:`paper_table`: the paper setting (10 beams, lambda = 3) beside the mixture and the codec's ceiling;
* :func:`refinement_table`: Eq. 12-13 on the best beams of :func:`compare_samplers`;
* :func:`timing_table`: seconds per separated second of each sampler (and Langevin's, from its chapter);
* :func:`prior_losses`: how each prior was trained, in words;
* :func:`three_sources`: drums + bass + guitar over the LQ-VAE codes with every committed count table;
* :func:`counts_table`: the smoothed count tables of every codec and their held-out log-likelihoods;
* :func:`read_posterior_checks` and :func:`posterior_checks_sentence`: whether the sampler limits the
  posterior mean (``scripts/lass_posterior_checks.py``, on validation chunks), in a table and in words.

Shapes: scores frames have one row per (method, chunk, source) (:func:`sepcore.evaluation.evaluate`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from sepcore.checkpoints import training_totals
from sepcore.evaluation import evaluate, summarise, wide_table
from sepcore.metrics import sdr
from sepcore.profiles import ProfileConfig
from sepcore.separation import lass_smoothed
from sepcore.separation.count_files import load_counts_file
from sepcore.separation.lass_search import LASSConfig, LASSSeparator, refine
from sepcore.separation.naive import average
from sepcore.separation.oracle import codec_oracle_separator

MIXTURE = "mixture (ŝ = m)"


@dataclass
class LassAudioChapterConfig(ProfileConfig):
    """Chunks of ``chunk_length`` samples for the samplers' comparison (``n_sampler_chunks``), the
    paper-setting table (``n_main_chunks``) and three sources (``n_chunks3``); refinement steps; the
    variants' test chunks (the results chapter's drums/bass chunks, all when ``None``) and
    validation chunks; the validation grids of the likelihood weight lambda, the mask power, the
    magnitude likelihood's weight mu and beams, the sampled variant's (sampler, rows, temperature)
    and the counts of frame grids its posterior output may average over."""

    chunk_length: int = 65536
    n_sampler_chunks: int = 5
    n_main_chunks: int = 10
    refine_steps: int = 200
    n_chunks3: int = 2
    n_variant_chunks: int | None = 40
    n_validation_chunks: int = 48
    lambdas: tuple = (1.0, 3.0, 10.0, 30.0)
    mask_powers: tuple = (0.5, 1.0, 2.0)
    magnitude_weights: tuple = (10.0, 100.0, 200.0, 300.0, 1000.0)
    magnitude_beams: tuple = (10,)
    mean_samplers: tuple = (("ancestral", 32, 1.0), ("ancestral", 32, 1.3), ("top_p", 32, 1.0))
    shifts: tuple = (1, 2, 4)

    @classmethod
    def quick(cls):
        return cls(chunk_length=16384, n_sampler_chunks=2, n_main_chunks=2, refine_steps=20, n_chunks3=1,
                   n_variant_chunks=1, n_validation_chunks=1, lambdas=(1.0, 3.0), mask_powers=(1.0, 2.0),
                   magnitude_weights=(1.0, 3.0), magnitude_beams=(2,), mean_samplers=(("ancestral", 2, 1.0),),
                   shifts=(1, 2))

    @classmethod
    def full(cls):
        return cls(n_variant_chunks=None, n_validation_chunks=96)


def sampler_label(method: str, n_beams: int) -> str:
    return {"beam": f"beam ({n_beams} beams)", "top_k": "top-k (k=16)", "top_p": "top-p (p=0.9)"}.get(method, method)


@dataclass
class SamplerComparison:
    """:func:`compare_samplers`' output: ``scores`` (one row per method, chunk and source), the
    ``table`` of mean SDR, spread, speed and per-class SDR per method, and ``beam_runs``: the beam
    search's ``(estimate (N, T), best codes (N, S))`` per chunk, which the refinement table reuses."""

    scores: pd.DataFrame
    table: pd.DataFrame
    beam_runs: list = field(default_factory=list)


def compare_samplers(test, indices, vqvae, priors, likelihood, *, n_beams: int = 10, likelihood_weight: float = 3.0,
                     seed: int = 0, device="cpu") -> SamplerComparison:
    """The mixture, then greedy, beam, ancestral, top-k (k = 16) and top-p (p = 0.9) search (paper 004,
    Algorithm 1) with ``n_beams`` rows on the chunks ``indices`` of ``test``."""
    classes = list(test.classes)
    samplers = {"greedy": {}, "beam": {"n_rows": n_beams}, "ancestral": {"n_rows": n_beams},
                "top_k": {"n_rows": n_beams, "top_k": 16}, "top_p": {"n_rows": n_beams, "top_p": 0.9}}
    frames = [evaluate(test, lambda m: average(m, len(classes)), method=MIXTURE, indices=indices)]
    beam_runs = []
    for method, extra in samplers.items():
        config = LASSConfig(method=method, likelihood_weight=likelihood_weight, seed=seed, **extra)
        separator = LASSSeparator(vqvae, priors, likelihood, config, device=device)

        def separate(m, separator=separator, keep=method == "beam"):
            estimate = separator.separate(m)
            if keep:
                beam_runs.append((estimate, separator.last.codes[0, separator.last.score[0].argmax()]))
            return estimate

        frames.append(evaluate(test, separate, method=sampler_label(method, n_beams), indices=indices))
    scores = pd.concat(frames, ignore_index=True)
    summary = summarise(scores, metrics=("sdr",))
    per_chunk = scores.groupby(["method", "id"], sort=False).agg(sdr=("sdr", "mean"), seconds=("seconds", "first"),
                                                                  audio=("audio_seconds", "first")).reset_index()
    table = per_chunk.groupby("method", sort=False).agg(sdr_mean=("sdr", "mean"), sdr_std=("sdr", "std"),
                                                        seconds=("seconds", "sum"), audio=("audio", "sum")).reset_index()
    table["seconds_per_separated_second"] = table.seconds / table.audio
    for c in classes:
        table[f"{c}_sdr"] = summary[summary.source == c].set_index("method").loc[table.method, "sdr_mean"].to_numpy()
    return SamplerComparison(scores, table.drop(columns=["seconds", "audio"]), beam_runs)


def lambda_table(test, indices, vqvae, priors, likelihood, samplers: SamplerComparison, *, lambdas, n_beams: int = 10,
                 seed: int = 0, device="cpu") -> pd.DataFrame:
    """Beam search with the likelihood weighted by each of ``lambdas``: SDR per class and their mean.
    lambda = 3 reuses the beam run of ``samplers``."""
    classes = list(test.classes)
    frames = [samplers.scores[samplers.scores.method == sampler_label("beam", n_beams)].assign(method="λ = 3")]
    for lam in (lam for lam in lambdas if lam != 3.0):
        separator = LASSSeparator(vqvae, priors, likelihood, LASSConfig(method="beam", n_rows=n_beams, likelihood_weight=lam,
                                                                        seed=seed), device=device)
        frames.append(evaluate(test, separator.separate, method=f"λ = {lam:g}", indices=indices))
    table = wide_table(pd.concat(frames, ignore_index=True), classes).loc[[f"λ = {lam:g}" for lam in lambdas]]
    table.insert(0, "likelihood_weight", lambdas)
    table["mean"] = table[classes].mean(1)
    return table.reset_index()


def ceiling_label(autoencoder: str) -> str:
    return f"ORACLE codes of the true sources ({autoencoder} ceiling)"


def paper_table(test, separator: LASSSeparator, *, autoencoder: str, n_beams: int = 10) -> pd.DataFrame:
    """The mixture, LASS with ``separator`` (the paper's setting) and the codec's ceiling (ORACLE: the
    codes of the true sources, decoded) on every chunk of ``test``: ``method, avg, <classes>``."""
    classes = list(test.classes)
    scores = pd.concat([evaluate(test, lambda m: average(m, len(classes)), method=MIXTURE),
                        evaluate(test, separator.separate, method=f"LASS beam ({n_beams} beams)"),
                        evaluate(test, codec_oracle_separator(test, separator.vqvae), method=ceiling_label(autoencoder))],
                       ignore_index=True)
    table = wide_table(scores, classes).reset_index()
    table["avg"] = table[classes].mean(axis=1)
    return table[["method", "avg", *classes]]


#: Refinement settings: none, or Adam on the continuous latents with this proximity weight.
REFINEMENTS = {"beam, no refinement": None, "beam + refinement (proximity 1e-3)": 1e-3,
               "beam + refinement (proximity 0)": 0.0}


def refinement_table(test, indices, vqvae, beam_runs, *, steps: int, lr: float = 0.1, device="cpu") -> pd.DataFrame:
    """Paper 004 Eq. 12-13 on each chunk's best beam (``beam_runs`` of :func:`compare_samplers`):
    the mixture error (dB) and SDR per class and their mean, per setting of :data:`REFINEMENTS`."""
    classes = list(test.classes)
    rows = []
    for index, (plain, best) in zip(indices, beam_runs):
        item = test[index]
        T = item["mixture"].shape[-1]
        padded = torch.nn.functional.pad(item["mixture"].float(), (0, (-T) % vqvae.config.hop))[None].to(device)
        for label, proximity in REFINEMENTS.items():
            started = time.perf_counter()
            if proximity is None:
                estimate, error = plain, (plain.mean(0) - item["mixture"]).pow(2).mean()
            else:
                refined, errors = refine(vqvae, best[None], padded, steps=steps, lr=lr, proximity=proximity)
                estimate, error = refined[0, :, :T].float().cpu(), errors[-1]
            scores = sdr(item["sources"], estimate, test.sample_rate)
            rows.append({"method": label, "id": item["id"], "mixture_error_db": 10 * np.log10(float(error)),
                         "refine_seconds": time.perf_counter() - started,
                         **{f"{c}_sdr": float(scores[k]) for k, c in enumerate(classes)}})
    table = pd.DataFrame(rows).groupby("method", sort=False).mean(numeric_only=True).reset_index()
    table["sdr_mean"] = table[[f"{c}_sdr" for c in classes]].mean(1)
    return table


def timing_table(sampler_table: pd.DataFrame, device, langevin_csv: Path) -> tuple[pd.DataFrame, str]:
    """Seconds per separated second of every sampler of this run, and Langevin's from its own
    chapter's table when it exists (another run, labelled so); and a note saying which."""
    timing = sampler_table[sampler_table.method != MIXTURE][["method", "seconds_per_separated_second"]].copy()
    timing.insert(0, "family", "LASS")
    timing["device"] = str(device)
    timing["threads"] = torch.get_num_threads()
    timing["source"] = "this run"
    note = "no Langevin timing table found in this checkout (branch flows not merged): LASS alone"
    if Path(langevin_csv).exists():
        lang = pd.read_csv(langevin_csv)
        column = next((c for c in lang.columns if "per_separated_second" in c or c == "seconds_per_second"), None)
        if column is not None:
            timing = pd.concat([timing, pd.DataFrame([{"family": "Langevin", "method": "Langevin (tables/langevin/slakh_sdr)",
                                                       "seconds_per_separated_second": float(lang[column].iloc[0]),
                                                       "device": "see that table", "threads": np.nan,
                                                       "source": "langevin chapter, not this run"}])], ignore_index=True)
            note = "Langevin from the langevin chapter's table (another run)"
    return timing, note


def prior_losses(priors, classes) -> str:
    """``"<class> <final loss> after <steps> steps (<CPU minutes> CPU minutes[, the last <n> on a GPU])"``
    per class, from the metadata of each prior's checkpoint (every run it was continued by)."""
    parts = []
    for prior, c in zip(priors, classes):
        meta = prior.checkpoint_info["metadata"]
        steps, _ = training_totals(meta)
        minutes, gpu_steps = training_totals(meta, "cpu")[1] / 60, training_totals(meta, "cuda")[0]
        on_gpu = f", the last {int(gpu_steps):,} on a GPU" if gpu_steps else ""
        parts.append(f"{c} {meta.get('final_loss_nats', float('nan')):.2f} after {int(steps):,} steps "
                     f"({minutes:.0f} CPU minutes{on_gpu})")
    return "; ".join(parts)


@dataclass
class ThreeSources:
    """:func:`three_sources`' output: the ``table`` (SDR per class, mean, search speed per method),
    the paper's count ``likelihood`` and, when committed, the all-track counts and their metadata."""

    table: pd.DataFrame
    likelihood: object
    all_tracks: object = None
    all_tracks_meta: dict | None = None


def three_sources(test3, lqvae, priors3, likelihood3, *, chunk_length: int, all_tracks: Path | None = None,
                  n_beams: int = 10, seed: int = 0, device="cpu") -> ThreeSources:
    """The mixture and LASS (beam and top-p, lambda = 3) over the LQ-VAE codes of drums + bass + guitar
    with the paper's counts ``likelihood3`` on the chunks of ``chunk_length`` samples of ``test3``; with ``all_tracks`` (the counts of every training track
    with re-pairings, :mod:`sepcore.train.counts`) also beam search on those, raw and smoothed
    (the sparse back-off chosen on validation). Search time excludes encoding and decoding."""
    classes3 = list(test3.classes)
    indices3 = list(range(len(test3)))
    frames = [evaluate(test3, lambda m: average(m, len(classes3)), method=MIXTURE, indices=indices3)]
    runs = {(method, "paper counts"): (extra, likelihood3)
            for method, extra in {"beam": {"n_rows": n_beams}, "top_p": {"n_rows": n_beams, "top_p": 0.9}}.items()}
    likelihood_all, meta_all = None, None
    if all_tracks is not None and Path(all_tracks).exists():
        likelihood_all, meta_all = load_counts_file(all_tracks, expect_vqvae=lqvae.checkpoint_info["path"])
        runs[("beam", "all-track counts")] = ({"n_rows": n_beams}, likelihood_all)
        if meta_all.get("smoothing"):
            runs[("beam", "smoothed all-track counts")] = (
                {"n_rows": n_beams}, lass_smoothed.smoothed_likelihood(likelihood_all, lqvae.codebook, **meta_all["smoothing"]))
    steps, seconds = {}, {}
    for (method, counts_label), (extra, likelihood) in runs.items():
        separator = LASSSeparator(lqvae, priors3, likelihood, LASSConfig(method=method, likelihood_weight=3.0, seed=seed,
                                                                         **extra), device=device)
        label = f"LASS {method} ({n_beams} {'beams' if method == 'beam' else 'samples'}), 3 sources"
        label += "" if counts_label == "paper counts" else f", {counts_label}"
        searches = []

        def separate(m, separator=separator, searches=searches):
            out = separator.separate(m)
            searches.append(separator.last)
            return out

        frames.append(evaluate(test3, separate, method=label, indices=indices3))
        steps[label] = sum(r.codes.shape[-1] for r in searches)
        seconds[label] = sum(r.seconds for r in searches)
    table = wide_table(pd.concat(frames, ignore_index=True), classes3)
    table["mean"] = table.mean(1)
    audio_seconds = len(test3) * chunk_length / test3.sample_rate
    table["search_ms_per_step"] = [1000 * seconds[m] / steps[m] if m in steps else np.nan for m in table.index]
    table["search_seconds_per_separated_second"] = [seconds[m] / audio_seconds if m in steps else np.nan
                                                    for m in table.index]
    return ThreeSources(table, likelihood3, likelihood_all, meta_all)


#: The committed all-track count tables: (codec, classes joined by "_").
COUNT_TABLES = (("vqvae", "drums_bass"), ("spectral", "drums_bass"), ("lqvae", "drums_bass_guitar"))


def counts_table(lass_folder: Path) -> pd.DataFrame:
    """Per committed count table of :data:`COUNT_TABLES`: pairings, positions, entries, density, the
    back-off's strength and scale, and the held-out log-likelihood (nats per validation position)
    raw and smoothed, and the share of validation tuples never counted."""
    rows = []
    for name, classes in COUNT_TABLES:
        meta = load_counts_file(Path(lass_folder) / f"counts_{name}_{classes}.pt")[1]
        rows.append({"codec": name, "classes": classes.replace("_", " + "),
                     **{k: meta[k] for k in ("pairings", "train_positions", "nnz", "density_percent")},
                     "smoothing_beta": meta["smoothing"]["beta"], "smoothing_sigma": meta["smoothing"]["sigma"],
                     "held_out_nats_raw": meta["smoothing_grid"][0]["held_out_nats"],
                     "held_out_nats_smoothed": max(r["held_out_nats"] for r in meta["smoothing_grid"][1:]),
                     "unseen_validation_triples_percent": meta["smoothing_grid"][0]["unseen_percent"]})
    return pd.DataFrame(rows)


def read_posterior_checks(path: Path) -> pd.DataFrame | None:
    """The table of ``scripts/lass_posterior_checks.py`` (``check, drums, bass, mean``), or ``None``
    when it has not been run in this checkout."""
    return pd.read_csv(path) if Path(path).exists() else None


def posterior_checks_sentence(checks: pd.DataFrame | None, base: str = "mean of 32 samples",
                              margin: float = 0.1) -> str:
    """What :func:`read_posterior_checks`' table says, in words: each family of checks (more samples,
    weighted samples, EM iterations) against the plain posterior mean ``base``, and whether any
    beats it by more than ``margin`` dB (then the sampler limits the estimate)."""
    if checks is None:
        return ("`scripts/lass_posterior_checks.py` has not been run in this checkout, so the sampler is "
                "not checked here.")
    by = checks.set_index("check")["mean"]
    reference = by[base]
    families = {"more samples": by[by.index.str.startswith("mean of") & ~by.index.str.contains("EM") & (by.index != base)],
                "score-weighted samples": by[by.index.str.contains("weighted")],
                "EM Wiener iterations": by[by.index.str.contains("EM")]}
    parts = [f"{name} at best {values.max() - reference:+.2f} dB ({values.idxmax()})"
             for name, values in families.items() if len(values)]
    best = max((values.max() - reference for values in families.values() if len(values)), default=float("-inf"))
    verdict = (f"one check beats the plain mean by more than {margin:g} dB, so the sampler limits the estimate"
               if best > margin else
               f"none beats the plain mean by more than {margin:g} dB: the sampler does not limit the estimate, "
               "and what is missing lies in the likelihood and the codec")
    return (f"Against the mean of 32 samples ({reference:.2f} dB on these validation chunks): "
            + "; ".join(parts) + f". So {verdict}.")


def shifts_sentence(table: pd.DataFrame, chosen: int, checks: pd.DataFrame | None = None) -> str:
    """What :func:`~sepcore.experiments.latent_variants.choose_shifts_on_validation`'s table (one
    row per count of frame grids: ``shifts``, ``sdr``, ``search_seconds_per_second``) says, in
    words, and, given :func:`read_posterior_checks`' table, against more samples on one grid."""
    if not len(table) or 1 not in set(table["shifts"]):
        return "No validation chunk was scored on one grid, so the posterior output keeps one grid."
    by = table.set_index("shifts")
    one = by.loc[1, "sdr"]
    gains = ", ".join(f"{n} grids {by.loc[n, 'sdr'] - one:+.2f} dB" for n in by.index if n != 1)
    text = f"Against one grid ({one:.2f} dB on these validation chunks): {gains}. "
    if chosen == 1:
        return text + "Validation keeps one grid, and the test rows below search once."
    text += (f"Validation chose {chosen} grids: the sampled row's posterior outputs in the test table below average "
             f"{chosen} searches, {by.loc[chosen, 'search_seconds_per_second']:.2f} s of search per second of audio "
             f"on this machine against {by.loc[1, 'search_seconds_per_second']:.2f} s for one.")
    if checks is not None:
        samples = checks.set_index("check")["mean"]
        more = samples[samples.index.str.match(r"mean of \d+ samples$")]
        most = max(more.index, key=lambda name: int(name.split()[2]))
        more_gain, shift_gain = more[most] - samples["mean of 32 samples"], by.loc[chosen, "sdr"] - one
        text += (f" More samples on one grid gain less (the {most}: {more_gain:+.2f} dB against 32 in the sampler "
                 "check), so part of the error is tied to where the codec's frames fall." if more_gain < shift_gain / 2
                 else f" More samples on one grid gain about as much (the {most}: {more_gain:+.2f} dB against 32 in "
                 "the sampler check), so the grids may act as more samples.")
    return text


def pair_features_sentence(table: pd.DataFrame, metadata: dict) -> str:
    """What :func:`~sepcore.experiments.latent_variants.choose_magnitude_on_validation`'s table (one
    row per ``fitted_pairs``, ``magnitude_weight``, ``spectral_beams``: the validation ``sdr``) says
    about the fitted pair features, in words, with the fit's own validation evidence (``metadata`` of
    :mod:`sepcore.train.magnitude_pairs`: the true pair's rank among all pairs)."""
    if not len(table) or set(table["fitted_pairs"]) != {False, True}:
        return "Validation scored one kind of pair features only, so the rows below keep the decoded atoms."
    best = table.groupby("fitted_pairs")["sdr"].max()
    decoded, fitted = metadata["validation_decoded_atoms"], metadata["validation_fitted"]
    rank = (f"On the validation frames, the true pair is the closest of all {metadata['n_pairs']:,} pairs "
            f"at {decoded['true_pair_first_percent']:.1f} % of frames with the decoded atoms and at "
            f"{fitted['true_pair_first_percent']:.1f} % with the fitted features (median rank "
            f"{decoded['true_pair_median_rank']:.0f} against {fitted['true_pair_median_rank']:.0f}; residual mean square "
            f"{decoded['residual_mse']:.3f} against {fitted['residual_mse']:.3f}). ")
    gain = best[True] - best[False]
    if gain > 0:
        return rank + (f"At its best weight, LASS with the fitted features scores {best[True]:.2f} dB on the validation "
                       f"chunks against {best[False]:.2f} dB with the decoded atoms ({gain:+.2f} dB), so the rows "
                       "below use them.")
    return rank + (f"Yet LASS with the fitted features scores {best[True]:.2f} dB at its best weight against "
                   f"{best[False]:.2f} dB with the decoded atoms ({gain:+.2f} dB), so the rows below keep the atoms.")
