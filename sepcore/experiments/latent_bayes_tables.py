"""The latent Bayes chapter (notebooks/09_latent_bayes.md): paper 003's Tables 1 and 2 and its ablations.

* :class:`LatentBayesChapterConfig`: the chapter's chunks per profile;
* :func:`run_configurations`: the mixture, latent Bayes in each configuration of :data:`RUNS`
  (candidates sampled once per chunk, then scored by every selection rule,
  :class:`~sepcore.separation.latent_runs.CandidateBank`), and each codec's ceiling, on the same
  chunks;
* :func:`load_models`: both autoencoders and each one's class priors;
* :func:`pair_rows`: one pair of instruments' rows of Table 1; :func:`pairs_table`: the whole table;
* :func:`other_pair_scores`: the same for another pair with the LQ-VAE's priors;
* :func:`ablation`: rows of the wide SDR table with the ablated setting as a column and the mean;
  :func:`alpha_table`, :func:`sigma_table`, :func:`lin_table`: paper 003's Table 2 and the ablations;
* :func:`prior_training`: how each autoencoder's priors were trained, in words;
* :func:`diagnostics`: codec, model or search, per autoencoder (:mod:`sepcore.experiments.latent_variants`);
* :func:`speed_table`, :func:`three_sources`: the cost, and three sources with pruned triples.

Shapes: scores frames have one row per (method, chunk, source); ``wide`` is method x source.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

import pandas as pd
import torch

from sepcore.evaluation import evaluate, summarise, wide_table
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


#: Table 1's rows for every pair: the mixture, rejection (alpha 0), the oracle best-of-B, the codec ceiling.
MAIN_ROWS = ("mixture (ŝ = m)", "LQ-VAE σ=0.4 (rej α=0)", "LQ-VAE σ=0.4 (ORACLE best-of-B)", CEILING["lqvae"])
#: The autoencoders of the diagnostics, with their labels.
CODEC_LABELS = {"lqvae": "LQ-VAE", "vqvae": "VQ-VAE"}


def load_models(classes, **pretrained) -> tuple[dict, dict]:
    """``({kind: codec}, {kind: [prior per class]})`` for the LQ-VAE and the plain VQ-VAE, loaded or
    trained by :func:`sepcore.pretrained.get_vqvae` / :func:`~sepcore.pretrained.get_prior` with the
    keyword arguments ``pretrained`` (profile, retrain, work_dir, data_root, device)."""
    from sepcore.pretrained import get_prior, get_vqvae

    vqvaes = {kind: get_vqvae(kind, **pretrained) for kind in CODEC_LABELS}
    return vqvaes, {kind: [get_prior(kind, c, vqvaes[kind], **pretrained) for c in classes] for kind in vqvaes}


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


def pair_rows(pair, wide: pd.DataFrame, n_chunks: int, methods) -> list[dict]:
    """Table 1's rows of one pair: both sources' SDR and their mean, per method."""
    rows = []
    for method in methods:
        sdr_1, sdr_2 = (float(wide.loc[method, c]) for c in pair)
        rows.append({"pair": "/".join(pair), "method": method, "source 1": pair[0], "SDR 1": sdr_1,
                     "source 2": pair[1], "SDR 2": sdr_2, "mean SDR": (sdr_1 + sdr_2) / 2, "n_chunks": n_chunks})
    return rows


def pairs_table(test, wide: pd.DataFrame, root, vqvae, base, config: LatentBayesChapterConfig, *, seed: int = 0,
                device="cpu", **pretrained) -> tuple[pd.DataFrame, dict]:
    """Table 1: the :data:`MAIN_ROWS` of ``test``'s pair (from ``wide``) and of every ``config.extra_pairs``
    (on their own test chunks, with the LQ-VAE ``vqvae`` and its priors); and ``{pair: manifest hash}``."""
    from sepcore.data.slakh import SlakhMixtures
    from sepcore.pretrained import get_prior

    rows = pair_rows(tuple(test.classes), wide, len(test), MAIN_ROWS)
    hashes = {"/".join(test.classes): test.manifest_hash}
    for pair in config.extra_pairs:
        pair_test = SlakhMixtures(root, classes=pair, split="test", chunk_length=config.chunk_length,
                                  max_chunks=config.n_pair_chunks, seed=seed)
        pair_priors = [get_prior("lqvae", c, vqvae, **pretrained) for c in pair]
        summary = summarise(other_pair_scores(pair_test, vqvae, pair_priors, base, device=device))
        rows += pair_rows(pair, summary.pivot(index="method", columns="source", values="sdr_mean"), len(pair_test),
                          MAIN_ROWS)
        hashes["/".join(pair)] = pair_test.manifest_hash
    return pd.DataFrame(rows), hashes


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


def alpha_table(wide: pd.DataFrame, classes) -> pd.DataFrame:
    """Paper 003's Table 2: the rejection weight alpha, on the same LQ-VAE (sigma 0.4) candidates."""
    return ablation(wide, [f"LQ-VAE σ=0.4 (rej α={a:g})" for a in ALPHAS], "alpha", ALPHAS, classes)


def sigma_table(wide: pd.DataFrame, classes) -> pd.DataFrame:
    """sigma of Eq. 6 (the paper's 0.1, its code's 0.4): rejection (alpha 0) and the oracle best-of-B."""
    rows = ["LQ-VAE σ=0.4 (rej α=0)", "LQ-VAE σ=0.1 (rej α=0)", "LQ-VAE σ=0.4 (ORACLE best-of-B)",
            "LQ-VAE σ=0.1 (ORACLE best-of-B)"]
    return ablation(wide, rows, "sigma", [0.4, 0.1, 0.4, 0.1], classes)


def lin_table(wide: pd.DataFrame, classes) -> pd.DataFrame:
    """L_lin (Eq. 8) or not: each autoencoder with its own priors, rejection, oracle best-of-B and ceiling."""
    rows = ["VQ-VAE σ=0.4 (rej α=0)", "LQ-VAE σ=0.4 (rej α=0)", "VQ-VAE σ=0.4 (ORACLE best-of-B)",
            "LQ-VAE σ=0.4 (ORACLE best-of-B)", CEILING["vqvae"], CEILING["lqvae"]]
    return ablation(wide, rows, "L_lin", [False, True, False, True, False, True], classes)


def prior_training(priors: dict, classes) -> tuple[dict, bool]:
    """``({kind: sentence}, same_recipe)``: each autoencoder's class priors' validation (or final
    training) loss, steps over every run and data, and whether both autoencoders' priors were trained
    alike (on every training code)."""
    from sepcore.checkpoints import training_totals

    meta = {kind: [getattr(p, "checkpoint_info", {}).get("metadata", {}) for p in priors[kind]] for kind in priors}

    def one(c, m):
        steps, gpu_steps = training_totals(m)[0], training_totals(m, "cuda")[0]
        on_gpu = f" ({gpu_steps:,} of them on a GPU)" if gpu_steps else ""
        data = "every training code" if "train_codes" in m else "128 random 3 s crops"
        return (f"{c} {m.get('val_nll', m.get('final_loss_nats', float('nan'))):.2f} nats after {steps:,} steps{on_gpu} "
                f"on {data}")

    sentences = {kind: "; ".join(one(c, m) for c, m in zip(classes, meta[kind])) for kind in meta}
    first = next(iter(meta.values()))[0]
    return sentences, all(("train_codes" in m) == ("train_codes" in first) for kind in meta for m in meta[kind])


def diagnostics(test, indices, vqvaes: dict, priors: dict, base, device="cpu"):
    """``(variants, summary, per-chunk codes)``: latent Bayes (sigma 0.4, rejection alpha 0) with each
    autoencoder scored raw, masked and as its candidates' posterior mean and posterior Wiener filter, beside the
    mixture, with the codec ceilings, correct codes, claim (a) and the joint score of estimate and
    truth (:func:`sepcore.experiments.latent_variants.evaluate_variants`)."""
    from sepcore.experiments import latent_variants as lv

    variants = [lv.Variant(f"latent Bayes {label}", LatentBayesSeparator(vqvaes[kind], priors[kind], base.replace(sigma=0.4),
                                                                        device=device), label)
                for kind, label in CODEC_LABELS.items()]
    scores, codes = lv.evaluate_variants(
        test, indices, variants, codecs={label: vqvaes[kind] for kind, label in CODEC_LABELS.items()},
        baselines={"mixture (ŝ = m)": ("baseline", lv.mixture_baseline(len(test.classes)))})
    return variants, lv.summary_table(scores, codes), codes


def speed_table(banks: dict, peak_rss: dict, chunk_length: int, sample_rate: int, device) -> pd.DataFrame:
    """Per run: wall time of sampling B candidates and decoding them, per separated second and per
    chunk, the sampler's working set (both priors' KV caches, the K x K tables, the B x K step
    buffers) and the process's peak RSS."""
    rows = []
    for name, bank in banks.items():
        seconds = bank.sampling_seconds()
        audio = len(bank.candidates) * chunk_length / sample_rate
        pr, B = bank.separator.priors[0].config, bank.separator.config.n_candidates
        cache_mb = 2 * 2 * pr.n_layer * B * pr.block_size * pr.n_embd * 4 / 2**20
        K = bank.separator.vqvae.config.codebook_size
        rows.append({"run": name, "B": B, "K": K, "seconds_per_separated_second": seconds / audio,
                     "seconds_per_chunk": seconds / len(bank.candidates),
                     "sampler_working_set_MB": cache_mb + (3 * K * K * 8 + 4 * B * K * 8) / 2**20,
                     "peak_rss_MB_process": peak_rss[name], "threads": torch.get_num_threads(), "device": str(device)})
    return pd.DataFrame(rows)


def three_sources(root, config: LatentBayesChapterConfig, vqvae, base, *, seed: int = 0, device="cpu",
                  classes=("drums", "bass", "guitar"), **pretrained):
    """``(table, cost, test)``: the mixture and LQ-VAE latent Bayes (sigma 0.4, alpha 0, top-k pruned
    triples) on ``config.n_chunks3`` chunks of three sources, their SDR per source and mean, and the
    sampler's cost per latent step and per separated second."""
    from sepcore.data.slakh import SlakhMixtures
    from sepcore.pretrained import get_prior

    test = SlakhMixtures(root, classes=classes, split="test", chunk_length=config.chunk_length,
                         max_chunks=config.n_chunks3, seed=seed)
    priors = [get_prior("lqvae", c, vqvae, **pretrained) for c in classes]
    config3 = base.replace(sigma=0.4)
    bank = CandidateBank(LatentBayesSeparator(vqvae, priors, config3, device=device), test, test.sample_rate)
    indices = list(range(len(test)))
    frames = [evaluate(test, lambda m: average(m, len(classes)), method="mixture (ŝ = m)", indices=indices),
              bank.evaluate("LQ-VAE σ=0.4, 3 sources", indices, alphas=(0.0,))]
    table = wide_table(pd.concat(frames, ignore_index=True), classes)
    table["mean"] = table.mean(1)
    steps = sum(c.codes.shape[-1] for c in bank.candidates.values())
    sampling = sum(c.sampling_seconds for c in bank.candidates.values())
    K = vqvae.config.codebook_size
    cost = pd.DataFrame([{
        "N": len(classes), "K": K, "k (prune_k)": config3.prune_k, "triples per step": config3.prune_k ** 3,
        "full table per step": K ** 3, "B": config3.n_candidates, "latent steps": steps,
        "ms_per_step": 1000 * sampling / steps,
        "sampling_seconds_per_separated_second": sampling / (len(test) * config.chunk_length / test.sample_rate),
        "score_buffer_MB": config3.n_candidates * config3.prune_k ** 3 * 4 / 2**20,
        "threads": torch.get_num_threads(), "device": str(device)}])
    return table, cost, test
