"""Latent methods side by side with their diagnostics, on the same chunks in the same run.

:func:`evaluate_variants` runs every :class:`Variant` (a latent separator: LASS or latent Bayes,
over one codec, its class priors and a likelihood) on each chunk **once**, and scores both of
its outputs from the same codes: ``raw`` (the codec's decode) and ``masked`` (the mixture masked
by the decodes, :mod:`sepcore.separation.masking`). Beside them, on the same chunks: the mixture
itself (``s_k = m``), HPSS (the strongest blind baseline on this data), and, labelled ORACLE, the
codec ceilings (the true sources' codes decoded, raw and masked).

Diagnostics per chunk and codec: the **consistency** of paper 003's claim (a), the fraction of
positions where the mixture's code equals ``M[z_1, z_2]``, the code of the mean of the true
sources' embeddings. Per chunk and variant (:func:`code_diagnostics`): the fraction of positions where
the estimate's code equals the true source's code, and the joint score (priors plus the
method's likelihood) of the estimate and of the true codes. ``score(estimate) > score(truth)``
means the model prefers the wrong answer (model error: no search can fix it);
``score(estimate) < score(truth)`` means the search missed a better sequence (search error).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass, field

import pandas as pd
import torch

from sepcore.metrics import sdr, si_sdr
from sepcore.models.vqvae import pair_code_table
from sepcore.separation.count_files import load_counts_file
from sepcore.separation.masking import codes_to_sources, shifted_posterior_sources
from sepcore.separation.naive import average
from sepcore.utils import progress


@dataclass
class Variant:
    """One latent separator: ``label`` names it in the tables; ``separator`` is a
    :class:`~sepcore.separation.lass_search.LASSSeparator` or
    :class:`~sepcore.separation.latent_bayes.LatentBayesSeparator`."""

    label: str
    separator: object
    codec_label: str
    notes: str = ""
    extra: dict = field(default_factory=dict)


@torch.no_grad()
def true_codes(codec, sources: torch.Tensor) -> torch.Tensor:
    """``(N, T)`` true sources -> ``(N, S)`` codes."""
    return codec.encode_padded(sources).cpu()


@torch.no_grad()
def search_codes(separator, mixture: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(codes (N, S), mixture codes (S,))`` chosen by ``separator`` for ``mixture (T,)``."""
    from sepcore.separation.lass_search import LASSSeparator
    from sepcore.separation.latent_bayes import prior_scores

    codec = separator.vqvae
    padded = codec.pad_to_hop(mixture.reshape(1, -1)).to(separator.device)
    if isinstance(separator, LASSSeparator):
        result, mix_codes = separator.search(padded)
        separator.last = result
        return result.codes[0, result.score[0].argmax()].cpu(), mix_codes[0].cpu()
    candidates = separator.sample(mixture, decode=False)
    best = int(prior_scores(candidates.prior_log_prob, candidates.codes.shape[-1]).argmax())
    if separator.likelihood is not None:                  # a likelihood of the frames: "codes" are frame indices
        return candidates.codes[best].cpu(), torch.arange(candidates.codes.shape[-1])
    return candidates.codes[best].cpu(), codec.encode(padded)[0].cpu()


def last_rows(separator) -> torch.Tensor:
    """``(R, N, S)``: every row (beam, sample or candidate) of the separator's latest search."""
    return separator.last.codes[0] if separator.last.codes.dim() == 4 else separator.last.codes


def samples_rows(separator) -> bool:
    """Whether the separator's rows are draws from its posterior (latent Bayes's candidates, LASS's
    samplers) rather than the final beams of a beam search, which share almost their whole path."""
    return separator.config.method not in ("beam", "greedy")


#: The outputs of a variant: the best row decoded (raw) or as masks (masked), and, for sampled rows,
#: the mean of every row's masks or the Wiener filter of their mean powers
#: (:func:`~sepcore.separation.masking.posterior_sources`).
OUTPUTS = ("raw", "masked", "posterior mean", "posterior Wiener")
#: The posterior outputs and the ``estimate`` of LASSConfig / LatentBayesConfig that gives each.
POSTERIOR_ESTIMATES = {"posterior mean": "mean", "posterior Wiener": "wiener"}


def outputs_of(separator) -> tuple[str, ...]:
    return OUTPUTS if samples_rows(separator) else OUTPUTS[:2]


def estimate_sources(separator, codes: torch.Tensor, mixture: torch.Tensor, output: str, mask_power: float,
                     delayed=()):
    """``(N, T)`` from one search: the best row ``codes (N, S)`` decoded (``raw``) or as masks
    (``masked``), or all rows of the search: their masks' mean (``posterior mean``) or the Wiener
    filter of their mean powers (``posterior Wiener``), averaged with the searches on the delayed
    mixture ``delayed`` (``[(offset, rows)]``, :meth:`LASSSeparator.delayed_rows`) when given."""
    if output in POSTERIOR_ESTIMATES:
        rows = [(0, last_rows(separator).to(separator.device)), *delayed]
        return shifted_posterior_sources(separator.vqvae, rows, mixture, POSTERIOR_ESTIMATES[output], mask_power)
    return codes_to_sources(separator.vqvae, codes.to(separator.device), mixture, output, mask_power)


def variant_separator(variant: Variant, output: str, mask_power: float = 2.0):
    """``separate(mixture (T,)) -> (N, T)`` of a variant with one of its :data:`OUTPUTS`: its search,
    then :func:`estimate_sources` (for listening; the tables score every output from one search in
    :func:`evaluate_variants`)."""
    def separate(mixture):
        codes, _ = search_codes(variant.separator, mixture)
        return estimate_sources(variant.separator, codes, mixture, output, mask_power)
    return separate


@torch.no_grad()
def joint_score(separator, codes: torch.Tensor, mix_codes: torch.Tensor) -> float:
    """Priors plus the method's likelihood of ``codes (N, S)`` given ``mix_codes (S,)`` (nats, the
    objective the separator maximises; LASS: ``lambda`` times the count likelihood; latent Bayes:
    the Gaussian latent likelihood of paper 003 Eq. 6 with its ``sigma``; either with a likelihood of
    the mixture's frames (:mod:`sepcore.separation.magnitude_likelihood`): its weight times that
    likelihood, ``mix_codes`` then being frame indices)."""
    from sepcore.separation.lass_search import LASSSeparator

    device = separator.device
    codes, mix_codes = codes.to(device), mix_codes.to(device)
    total = sum(float(p.log_prob(codes[n][None])[0]) for n, p in enumerate(separator.priors))
    if isinstance(separator, LASSSeparator) or separator.likelihood is not None:
        ll = separator.likelihood.log_prob(*codes, mix_codes)
        return total + separator.config.likelihood_weight * float(ll.sum())
    d2 = separator.code_dist2[separator.pairs[codes[0], codes[1]], mix_codes]
    return total - float(d2.sum()) / (2 * separator.config.sigma ** 2)


def code_diagnostics(separator, estimate: torch.Tensor, truth: torch.Tensor, mix_codes: torch.Tensor,
                     classes) -> dict:
    """Fraction of correct codes per class and the joint scores of estimate and truth."""
    S = min(estimate.shape[-1], truth.shape[-1])
    row = {f"correct_{c}": float((estimate[k, :S] == truth[k, :S]).float().mean()) for k, c in enumerate(classes)}
    row["score_estimate"] = joint_score(separator, estimate[:, :S], mix_codes[:S])
    row["score_truth"] = joint_score(separator, truth[:, :S], mix_codes[:S])
    row["model_error"] = row["score_estimate"] >= row["score_truth"]
    return row


def _score_rows(method, family, item, estimates, seconds, classes, sample_rate, pair):
    references = item["sources"]
    estimates = torch.as_tensor(estimates).float()[..., : references.shape[-1]]
    chunk_sdr = sdr(references, estimates, sample_rate)
    chunk_si = si_sdr(references, estimates)
    return [{"method": method, "family": family, "pair": pair, "id": item["id"], "source": c,
             "sdr": float(chunk_sdr[k]), "si_sdr": float(chunk_si[k]), "seconds": seconds,
             "audio_seconds": references.shape[-1] / sample_rate} for k, c in enumerate(classes)]


def evaluate_variants(dataset, indices, variants: list[Variant], *, codecs: dict, baselines: dict,
                      mask_power: float = 2.0, posterior_power: float | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every variant (each of its :func:`outputs_of`), the baselines and the codec ceilings on ``dataset[indices]``.

    Args:
        codecs: ``{label: codec}`` whose ceilings (ORACLE) are scored, raw and masked.
        baselines: ``{label: (family, separate)}``, e.g. the mixture and HPSS.
        mask_power: the power of the masked outputs; ``posterior_power`` that of the posterior
            outputs (``mask_power`` when ``None``).

    Returns:
        ``(scores, diagnostics)``: per (method, chunk, source) rows in the layout of
        :func:`sepcore.evaluation.evaluate` plus ``family`` and ``pair``; per (variant, chunk) rows.
    """
    classes = list(dataset.classes)
    pair = "/".join(classes)
    sr = dataset.sample_rate
    rows, diagnostics, pair_tables = [], [], {}
    for index in progress(list(indices), desc="latent variants"):
        item = dataset[index]
        mixture = item["mixture"]
        for label, (family, separate) in baselines.items():
            started = time.perf_counter()
            estimates = separate(mixture)
            rows += _score_rows(label, family, item, estimates, time.perf_counter() - started, classes, sr, pair)
        for label, codec in codecs.items():
            codes = true_codes(codec, item["sources"])
            if label not in pair_tables:
                pair_tables[label] = pair_code_table(codec).cpu()
            mix_codes = codec.encode_padded(mixture.reshape(1, -1))[0].cpu()
            S = min(codes.shape[-1], mix_codes.shape[0])
            consistent = pair_tables[label][codes[0, :S], codes[1, :S]] == mix_codes[:S]
            diagnostics.append({"variant": f"{label} codes", "codec": label, "id": item["id"],
                                "consistency": float(consistent.float().mean())})
            for output in ("raw", "masked"):
                estimates = codes_to_sources(codec, codes.to(codec.codebook.device), mixture, output, mask_power)
                rows += _score_rows(f"{label} codes, {output} (oracle)", "oracle", item, estimates, 0.0, classes, sr, pair)
        for variant in variants:
            separator = variant.separator
            started = time.perf_counter()
            codes, mix_codes = search_codes(separator, mixture)
            searched = time.perf_counter() - started
            started = time.perf_counter()
            delayed = separator.delayed_rows(mixture) if getattr(separator.config, "shifts", 1) > 1 else []
            shifted = time.perf_counter() - started                     # counted for the posterior outputs only
            for output in outputs_of(separator):
                started = time.perf_counter()
                posterior = output in POSTERIOR_ESTIMATES
                power = posterior_power if posterior and posterior_power else mask_power
                estimates = estimate_sources(separator, codes, mixture, output, power, delayed if posterior else ())
                seconds = searched + (shifted if posterior else 0.0) + time.perf_counter() - started
                rows += _score_rows(f"{variant.label}, {output}", "generative", item, estimates, seconds, classes, sr, pair)
            truth = true_codes(separator.vqvae, item["sources"])
            diagnostics.append({"variant": variant.label, "codec": variant.codec_label, "id": item["id"],
                                **code_diagnostics(separator, codes, truth, mix_codes, classes)})
    return pd.DataFrame(rows), pd.DataFrame(diagnostics)


def mixture_baseline(n_sources: int):
    """``s_k = m / (w N)`` for every k: the unprocessed mixture (``s_k = m`` under mean mixing)."""
    return lambda mixture: average(mixture, n_sources)


def summary_table(scores: pd.DataFrame, diagnostics: pd.DataFrame) -> pd.DataFrame:
    """One row per method: mean SDR per class, their mean, seconds per second, and the diagnostics' means."""
    classes = list(dict.fromkeys(scores["source"]))
    rows = []
    for (method, family), group in scores.groupby(["method", "family"], sort=False):
        row = {"method": method, "family": family}
        for c in classes:
            row[f"sdr_{c}"] = group[group.source == c]["sdr"].mean()
        row["sdr_mean"] = sum(row[f"sdr_{c}"] for c in classes) / len(classes)
        chunks = group.drop_duplicates("id")
        row["seconds_per_second"] = chunks["seconds"].sum() / chunks["audio_seconds"].sum()
        row["n_chunks"] = len(chunks)
        variant = method.rsplit(", ", 1)[0]
        d = diagnostics[diagnostics.variant == variant] if len(diagnostics) else diagnostics
        if family == "oracle" and len(d) and "consistency" in d:
            row["consistency_percent"] = 100 * d["consistency"].mean()
        if family == "generative" and len(d):
            for c in classes:
                row[f"correct_{c}"] = d[f"correct_{c}"].mean()
            row["model_error_percent"] = 100 * d["model_error"].mean()
            row["score_estimate_minus_truth"] = (d["score_estimate"] - d["score_truth"]).mean()
        rows.append(row)
    return pd.DataFrame(rows)


def diagnose(summary: pd.DataFrame, variant: str, codec: str, baseline: str = "mixture (ŝ = m)",
             margin: float = 0.0) -> dict:
    """Which part keeps ``variant`` from its target, ``baseline`` + ``margin`` dB: the codec, the model or the search.

    Reads the rows of :func:`summary_table` for ``variant`` (each of its :data:`OUTPUTS`), the ORACLE ceilings of
    ``codec`` (the true codes decoded, raw and masked) and ``baseline``; the order of the checks:

    * **codec**: even the true codes, decoded and masked, fall short of the target;
    * **model** (priors and likelihood): in at least half of the chunks the estimate scores at
      least as high as the true codes under the method's own objective, so no search can help;
    * **search**: the true codes score higher in most chunks, but the search did not find them;
    * **none**: the variant's better output reaches the target on its mean.

    Returns ``{"part", "sentence", "best_output", "best_sdr", "baseline_sdr", "target_sdr", "ceiling_raw",
    "ceiling_masked", "correct_percent", "model_error_percent"}`` (SDRs: mean over sources, dB).
    """
    rows = summary.set_index("method")
    outputs = {o: float(rows.loc[f"{variant}, {o}", "sdr_mean"]) for o in OUTPUTS if f"{variant}, {o}" in rows.index}
    best_output = max(outputs, key=outputs.get)
    generative = rows.loc[f"{variant}, {best_output}"]
    correct = [c for c in rows.columns if c.startswith("correct_")]
    info = {"best_output": best_output, "best_sdr": outputs[best_output],
            "baseline_sdr": float(rows.loc[baseline, "sdr_mean"]),
            "target_sdr": float(rows.loc[baseline, "sdr_mean"]) + margin,
            "ceiling_raw": float(rows.loc[f"{codec} codes, raw (oracle)", "sdr_mean"]),
            "ceiling_masked": float(rows.loc[f"{codec} codes, masked (oracle)", "sdr_mean"]),
            "correct_percent": 100 * float(generative[correct].mean()),
            "model_error_percent": float(generative["model_error_percent"])}
    target = f"{baseline} {info['baseline_sdr']:.2f} dB" + (f" + {margin:g} dB" if margin else "")
    numbers = (f"{variant} ({best_output}) {info['best_sdr']:.2f} dB against {target}; "
               f"codec ceiling {info['ceiling_raw']:.2f} raw / {info['ceiling_masked']:.2f} masked; "
               f"{info['correct_percent']:.0f} % of codes correct; the estimate outscores the truth in "
               f"{info['model_error_percent']:.0f} % of chunks")
    if info["best_sdr"] >= info["target_sdr"]:
        part, why = "none", "it reaches the target"
    elif info["ceiling_masked"] < info["target_sdr"]:
        part, why = "codec", "even the true codes, decoded and masked, fall short of the target"
    elif info["model_error_percent"] >= 50:
        part, why = "model", ("the priors and likelihood prefer the wrong codes to the true ones in most chunks, "
                              "so no search can fix it")
    else:
        part, why = "search", "the true codes score higher in most chunks, but the search does not reach them"
    return {"part": part, "sentence": f"{part}: {why} ({numbers})", **info}


# ----------------------------------------------------------------------------- the committed models
@dataclass
class VariantSettings:
    """Search sizes per profile: ``quick`` is a smoke test of the plumbing on the committed models."""

    n_beams: int = 10
    n_candidates: int = 16
    likelihood_weight: float = 3.0          # lambda of LASS (reference code); the spectral codec's is chosen on validation
    spectral_likelihood_weight: float = 3.0
    magnitude_weight: float = 3.0           # the spectral codec's magnitude likelihood (ours), chosen on validation
    spectral_beams: int = 10                # beams of the counts x magnitudes variant, chosen on validation
    fitted_pairs: bool = False              # its pair features fitted on training frames (else decoded atoms), chosen on validation
    mean_sampler: str = "ancestral"         # the sampled variant's sampler, rows and temperature, chosen on validation
    mean_rows: int = 32
    mean_temperature: float = 1.0
    mean_output: str = "posterior mean"     # or "posterior Wiener" (POSTERIOR_ESTIMATES), chosen on validation
    mean_shifts: int = 1                    # frame grids the posterior outputs average over, chosen on validation
    posterior_power: float | None = None    # the power of the posterior outputs (None: mask_power), chosen on validation
    top_pairs: int = 8192
    mask_power: float = 2.0

    def replace(self, **changes) -> VariantSettings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def for_profile(cls, profile: str, **overrides):
        base = (cls(n_beams=2, n_candidates=2, top_pairs=256, spectral_beams=2, mean_rows=2) if profile == "quick"
                else cls())
        return base if not overrides else cls(**{**base.__dict__, **overrides})

    @classmethod
    def chosen_on_validation(cls, profile: str, checkpoints):
        """The profile's settings with the spectral codec's weights, beams and mask power that the LASS
        audio chapter chose on validation (``checkpoints/lass/lass_spectral_settings.json``; the
        defaults when absent). The quick profile keeps its small searches."""
        from pathlib import Path

        from sepcore.separation.latent_models import spectral_lass_defaults

        saved = spectral_lass_defaults(Path(checkpoints) / "latents")
        chosen = {"spectral_likelihood_weight": saved["likelihood_weight"], "mask_power": saved["mask_power"]}
        if saved["magnitude_weight"] > 0:
            chosen.update(magnitude_weight=saved["magnitude_weight"], fitted_pairs=saved["fitted_pairs"])
        if profile != "quick":
            chosen["spectral_beams"] = saved["spectral_beams"]
            if saved["estimate"] != "map":
                output = {estimate: out for out, estimate in POSTERIOR_ESTIMATES.items()}[saved["estimate"]]
                chosen.update(mean_sampler=saved["sampler"], mean_rows=saved["sampler_rows"],
                              mean_temperature=saved["sampler_temperature"], mean_output=output,
                              posterior_power=saved["posterior_power"], mean_shifts=saved["shifts"])
        return cls.for_profile(profile, **chosen)


CODEC_LABELS = {"vqvae": "VQ-VAE", "lqvae": "LQ-VAE", "spectral": "spectral"}
MAGNITUDE_LASS = "LASS spectral, counts x magnitudes"
MAGNITUDE_BAYES = "latent Bayes spectral, counts x magnitudes"
SAMPLED_LASS = "LASS spectral, counts x magnitudes, sampled"


def build_variants(settings: VariantSettings, *, checkpoints, device="cpu", classes=("drums", "bass"),
                   which=None) -> list[Variant]:
    """The latent separators compared in the LASS audio chapter, from the committed checkpoints.

    ``which``: labels to build (all by default). Needs ``checkpoints/latents/{vqvae,lqvae,spectral}.pt``,
    their ``prior_<codec>_<class>.pt`` and ``checkpoints/lass/counts_<codec>_drums_bass.pt``.
    """
    from pathlib import Path

    from sepcore.checkpoints import load_model
    from sepcore.models.transformer import TransformerPrior
    from sepcore.separation.count_files import load_counts
    from sepcore.separation.lass_search import LASSConfig, LASSSeparator
    from sepcore.separation.lass_smoothed import SmoothedCountLikelihood
    from sepcore.separation.latent_bayes import LatentBayesConfig, LatentBayesSeparator
    from sepcore.separation.magnitude_likelihood import (
        MagnitudeLikelihood,
        load_fitted_pairs,
        relative_counts_weight,
    )

    checkpoints = Path(checkpoints)
    latents, lass = checkpoints / "latents", checkpoints / "lass"

    @functools.cache
    def models(codec_name):                 # each codec and its priors loaded once, and only when a variant needs them
        codec = load_model(latents / f"{codec_name}.pt", device=device).eval()
        priors = [load_model(latents / f"prior_{codec_name}_{c}.pt", expect={"source_class": c},
                             expect_class=TransformerPrior, device=device) for c in classes]
        return codec, priors

    @functools.cache
    def counts(codec_name):
        return load_counts_file(lass / f"counts_{codec_name}_drums_bass.pt")

    @functools.cache
    def smoothed(codec_name):               # one dense (K, K, K) table per codec, shared by its variants
        likelihood, meta = counts(codec_name)
        return SmoothedCountLikelihood(likelihood, models(codec_name)[0].codebook, top_pairs=settings.top_pairs,
                                       **meta["smoothing"])

    @functools.cache
    def fitted_pairs():                     # the pair fit, loaded once for the variants that share it
        return load_fitted_pairs(lass, latents / "spectral.pt", classes) if settings.fitted_pairs else None

    def magnitudes():
        weight = relative_counts_weight(settings.spectral_likelihood_weight, settings.magnitude_weight)
        return MagnitudeLikelihood(models("spectral")[0], top_pairs=settings.top_pairs, counts=smoothed("spectral"),
                                   counts_weight=weight, fitted=fitted_pairs())

    def lass_variant(label, codec_name, likelihood, lam, note, n_beams=None, method="beam", temperature=1.0, shifts=1):
        codec, priors = models(codec_name)
        config = LASSConfig(method=method, n_rows=n_beams or settings.n_beams, likelihood_weight=lam, temperature=temperature,
                            shifts=shifts)
        return Variant(label, LASSSeparator(codec, priors, likelihood, config, device=device), CODEC_LABELS[codec_name], note)

    def bayes_variant(label, codec_name, sigma, note, likelihood=None):
        codec, priors = models(codec_name)
        config = LatentBayesConfig(n_candidates=settings.n_candidates, sigma=sigma, likelihood_weight=settings.magnitude_weight)
        return Variant(label, LatentBayesSeparator(codec, priors, config, device=device, likelihood=likelihood),
                       CODEC_LABELS[codec_name], note)

    builders = {
        "LASS VQ-VAE, paper counts": lambda label: lass_variant(
            label, "vqvae", load_counts(lass / "audio_counts_vqvae.pt"), settings.likelihood_weight,
            "raw ratios over 131k positions (the previous release's file)"),
        "LASS VQ-VAE, smoothed counts": lambda label: lass_variant(
            label, "vqvae", smoothed("vqvae"), settings.likelihood_weight,
            f"{counts('vqvae')[1]['train_positions']} positions, back-off {counts('vqvae')[1]['smoothing']}"),
        "latent Bayes VQ-VAE": lambda label: bayes_variant(label, "vqvae", 0.4, "sigma 0.4 (paper 003 code)"),
        "latent Bayes LQ-VAE": lambda label: bayes_variant(
            label, "lqvae", 0.4, f"sigma 0.4; L_lin of Eq. 8 (paper 003), weight {models('lqvae')[0].config.lin_weight:g} "
            "chosen on validation"),
        "LASS spectral, raw counts": lambda label: lass_variant(
            label, "spectral", counts("spectral")[0], settings.spectral_likelihood_weight,
            f"{counts('spectral')[1]['train_positions']} positions, raw ratios"),
        "LASS spectral, smoothed counts": lambda label: lass_variant(
            label, "spectral", smoothed("spectral"), settings.spectral_likelihood_weight,
            f"back-off {counts('spectral')[1]['smoothing']}"),
        "latent Bayes spectral": lambda label: bayes_variant(
            label, "spectral", float(counts("spectral")[1]["smoothing"]["sigma"]),
            "sigma: the kernel width the count smoothing chose on validation"),
        MAGNITUDE_LASS: lambda label: lass_variant(
            label, "spectral", magnitudes(), settings.magnitude_weight,
            f"ours: smoothed counts times a Gaussian on the mixture's mel-band magnitudes (weights "
            f"{settings.spectral_likelihood_weight:g} and {settings.magnitude_weight:g}; pair features "
            f"{'fitted on training frames' if settings.fitted_pairs else 'of the decoded atoms'}), {settings.spectral_beams} beams",
            n_beams=settings.spectral_beams),
        MAGNITUDE_BAYES: lambda label: bayes_variant(
            label, "spectral", 1.0, f"ours: the likelihood of the row above, {settings.n_candidates} candidates",
            likelihood=magnitudes()),
        SAMPLED_LASS: lambda label: lass_variant(
            label, "spectral", magnitudes(), settings.magnitude_weight,
            f"ours: the likelihood of the counts x magnitudes row, {settings.mean_rows} {settings.mean_sampler} samples "
            f"at temperature {settings.mean_temperature:g} (raw, masked: the best-scoring sample)"
            + (f"; posterior outputs: the mean over {settings.mean_shifts} frame grids" if settings.mean_shifts > 1 else ""),
            n_beams=settings.mean_rows, method=settings.mean_sampler, temperature=settings.mean_temperature,
            shifts=settings.mean_shifts),
    }
    return [build(label) for label, build in builders.items() if which is None or label in which]


def grid_on_validation(configure, grid: dict | list[dict], dataset, indices, powers=(1.0, 2.0), desc="validation",
                       output: str | tuple = "masked"):
    """Score every point of ``grid`` (``{name: values}``, their product; or a list of points) on
    **validation** chunks: the SDR of ``output`` (``masked``, or a posterior output:
    :func:`estimate_sources`), mean over classes and chunks. ``configure(**point)`` returns the
    separator of a point; one search per point and chunk, every mask power (and every output, when
    ``output`` is a tuple of them, then a column of the table) scored from its codes.

    Returns ``(best point with its mask_power (and output), table of mean SDR per point and power)``.
    """
    import itertools

    points = grid if isinstance(grid, list) else [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    names = list(points[0]) if points else []
    outputs = output if isinstance(output, tuple) else (output,)
    rows = []
    for point in points:
        separator = configure(**point)
        for index in progress(list(indices), desc=f"{desc} {point}"):
            item = dataset[index]
            codes, _ = search_codes(separator, item["mixture"])
            for power, out in itertools.product(powers, outputs):
                estimates = estimate_sources(separator, codes, item["mixture"], out, power)
                value = sdr(item["sources"], estimates[..., : item["sources"].shape[-1]], dataset.sample_rate)
                rows.append({**point, "mask_power": power, **({"output": out} if isinstance(output, tuple) else {}),
                             "id": item["id"], "sdr": float(value.nanmean())})
    columns = names + ["mask_power"] + (["output"] if isinstance(output, tuple) else [])
    if not rows:                      # no validation chunk (a tiny smoke-test dataset)
        return None, pd.DataFrame(columns=columns + ["sdr"])
    table = pd.DataFrame(rows).groupby(columns, as_index=False)["sdr"].mean()
    best = table.loc[table["sdr"].idxmax()]
    kinds = {c: type(points[0][c]) for c in names} | {"mask_power": float, "output": str}
    return {c: kinds[c](best[c]) for c in columns}, table


def choose_on_validation(separator, dataset, indices, lambdas=(1.0, 3.0, 10.0), powers=(1.0, 2.0)) -> tuple[dict, pd.DataFrame]:
    """Pick LASS's likelihood weight and the mask power on **validation** chunks (masked output, mean SDR
    over classes and chunks). One search per ``lambda``; every power is scored from its codes."""
    def configure(likelihood_weight):
        separator.config = separator.config.replace(likelihood_weight=float(likelihood_weight))
        return separator

    best, table = grid_on_validation(configure, {"likelihood_weight": list(lambdas)}, dataset, indices, powers)
    if best is None:                  # keep the defaults
        best = {"likelihood_weight": float(separator.config.likelihood_weight), "mask_power": 2.0}
    return best, table


def choose_magnitude_on_validation(settings: VariantSettings, dataset, indices, *, checkpoints, device="cpu",
                                   weights=(1.0, 3.0, 10.0), beams=(10, 32),
                                   fitted_pairs=(False, True)) -> tuple[dict, pd.DataFrame]:
    """Pick the magnitude likelihood's weight, its pair features (decoded atoms or fitted on training
    frames, :mod:`sepcore.train.magnitude_pairs`) and the beam count of :data:`MAGNITUDE_LASS` on
    **validation** chunks (the counts' weight and the mask power as chosen before)."""
    from sepcore.separation.magnitude_likelihood import relative_counts_weight

    separators = {fitted: build_variants(settings.replace(fitted_pairs=fitted), checkpoints=checkpoints, device=device,
                                         which={MAGNITUDE_LASS})[0].separator for fitted in fitted_pairs}

    def configure(fitted_pairs, magnitude_weight, spectral_beams):     # the models loaded once; each point sets the weights
        separator = separators[fitted_pairs]
        separator.config = separator.config.replace(likelihood_weight=float(magnitude_weight), n_rows=int(spectral_beams))
        separator.likelihood.counts_weight = relative_counts_weight(settings.spectral_likelihood_weight, magnitude_weight)
        return separator

    best, table = grid_on_validation(configure, {"fitted_pairs": [bool(f) for f in fitted_pairs],
                                                 "magnitude_weight": [float(w) for w in weights],
                                                 "spectral_beams": [int(b) for b in beams]},
                                     dataset, indices, powers=(settings.mask_power,), desc="validation magnitudes")
    if best is None:
        best = {"magnitude_weight": settings.magnitude_weight, "spectral_beams": settings.spectral_beams,
                "fitted_pairs": settings.fitted_pairs}
    best.pop("mask_power", None)
    return best, table


def choose_mean_on_validation(settings: VariantSettings, dataset, indices, *, checkpoints, device="cpu",
                              samplers=(("ancestral", 32, 1.0), ("ancestral", 32, 1.3), ("top_p", 32, 1.0)),
                              powers=(1.0, 2.0)) -> tuple[dict, pd.DataFrame]:
    """Pick the sampler, the number of rows, the sampling temperature, the posterior output
    (:data:`POSTERIOR_ESTIMATES`: the mean of the rows' masks or the Wiener filter of their mean
    powers) and its power of :data:`SAMPLED_LASS` on **validation** chunks, by SDR, every other
    setting as chosen before; every output and power is scored from each search.

    Returns ``({"mean_sampler", "mean_rows", "mean_temperature", "mean_output", "posterior_power"},
    table of mean SDR per point, power and output)``.
    """
    separator = build_variants(settings, checkpoints=checkpoints, device=device, which={SAMPLED_LASS})[0].separator

    def configure(mean_sampler, mean_rows, mean_temperature):
        separator.config = separator.config.replace(method=mean_sampler, n_rows=int(mean_rows),
                                                    temperature=float(mean_temperature))
        return separator

    points = [{"mean_sampler": str(method), "mean_rows": int(rows), "mean_temperature": float(temperature)}
              for method, rows, temperature in samplers]
    best, table = grid_on_validation(configure, points, dataset, indices, powers=tuple(powers),
                                     desc="validation posterior", output=tuple(POSTERIOR_ESTIMATES))
    if best is None:
        best = {"mean_sampler": settings.mean_sampler, "mean_rows": settings.mean_rows,
                "mean_temperature": settings.mean_temperature, "output": "posterior mean", "mask_power": settings.mask_power}
    best["mean_output"], best["posterior_power"] = best.pop("output"), float(best.pop("mask_power"))
    return best, table


def choose_shifts_on_validation(settings: VariantSettings, dataset, indices, *, checkpoints, device="cpu",
                                shifts=(1, 2, 4)) -> tuple[dict, pd.DataFrame]:
    """Pick how many frame grids (:func:`~sepcore.separation.masking.shifted_posterior_sources`)
    the posterior output of :data:`SAMPLED_LASS` averages over, on **validation** chunks, by SDR,
    every other setting as chosen before. One set of searches per chunk, on ``max(shifts)`` grids
    (offsets ``k * hop / max(shifts)``), scores every count: ``n`` grids take every
    ``max(shifts) / n``-th offset, so each count must divide the largest.

    Returns ``({"mean_shifts"}, table of mean SDR and seconds of search per second of audio per count)``.
    """
    shifts = tuple(sorted(int(n) for n in shifts))
    most = shifts[-1]
    if shifts[0] < 1 or any(most % n for n in shifts):
        raise ValueError(f"every count of shifts must be at least 1 and divide the largest, got {shifts}")
    separator = build_variants(settings.replace(mean_shifts=most), checkpoints=checkpoints, device=device,
                               which={SAMPLED_LASS})[0].separator
    estimate = POSTERIOR_ESTIMATES[settings.mean_output]
    power = settings.posterior_power or settings.mask_power
    rows = []
    for index in progress(list(indices), desc="validation shifts"):
        item = dataset[index]
        started = time.perf_counter()
        search_codes(separator, item["mixture"])
        grids = [(0, last_rows(separator))] + separator.delayed_rows(item["mixture"])
        per_search = (time.perf_counter() - started) / most / (item["mixture"].shape[-1] / dataset.sample_rate)
        for n in shifts:
            estimates = shifted_posterior_sources(separator.vqvae, grids[:: most // n], item["mixture"], estimate, power)
            value = sdr(item["sources"], estimates[..., : item["sources"].shape[-1]], dataset.sample_rate)
            rows.append({"shifts": n, "id": item["id"], "sdr": float(value.nanmean()),
                         "search_seconds_per_second": n * per_search})
    if not rows:
        return {"mean_shifts": settings.mean_shifts}, pd.DataFrame(columns=["shifts", "sdr", "search_seconds_per_second"])
    table = pd.DataFrame(rows).groupby("shifts", as_index=False)[["sdr", "search_seconds_per_second"]].mean()
    return {"mean_shifts": int(table.loc[table["sdr"].idxmax(), "shifts"])}, table


#: The suffixes of continuation curves, in the order they were run (``scripts/promote_continued_prior.py``).
CONTINUATIONS = ("continued", "dropout", "continued2", "continued3", "continued4", "gpu", "gpu2")


def prior_training_curve(folder, name: str, runs: list[dict]) -> pd.DataFrame:
    """The whole validation curve of a committed prior ``name``: the curve of each of its ``runs``
    (:func:`sepcore.checkpoints.training_runs` of its metadata, oldest first: the runs that
    ``scripts/promote_continued_prior.py`` promoted), one after the other, CPU time and steps running
    on, with the ``device`` each run trained on. A run's curve is the one of ``<name>.csv`` and
    ``<name>_<suffix>.csv`` (:data:`CONTINUATIONS`)
    whose lowest validation loss is the run's ``best_val``; curves of runs that were not promoted
    are left out, whatever their losses."""
    from pathlib import Path

    from sepcore.checkpoints import run_device

    candidates = [Path(folder) / f"{name}.csv", *(Path(folder) / f"{name}_{suffix}.csv" for suffix in CONTINUATIONS)]
    curves = [pd.read_csv(path) for path in candidates if path.exists()]
    parts = []
    for run in runs:
        match = [c for c in curves if abs(c.val_loss.min() - run["best_val"]) < 5e-5]
        if len(match) != 1:
            raise ValueError(f"{name}: {len(match)} learning curves in {folder} end at the best validation loss "
                             f"{run['best_val']:.5f} of one of its runs; expected exactly one")
        part = match[0]
        if parts:
            part = part.assign(step=part.step + parts[-1].step.max(), cpu_s=part.cpu_s + parts[-1].cpu_s.max())
        parts.append(part.assign(device=run_device(run)))
    return pd.concat(parts, ignore_index=True)


def committed_runs(checkpoint) -> list[dict]:
    """:func:`sepcore.checkpoints.training_runs` of a committed checkpoint's metadata."""
    import torch

    from sepcore.checkpoints import training_runs

    return training_runs(torch.load(checkpoint, map_location="cpu", weights_only=True)["metadata"])


def prior_nll_table(checkpoints, codecs=("vqvae", "spectral"), classes=("drums", "bass"), split="test", *,
                    profile="default", data_root=None, n_windows=64) -> pd.DataFrame:
    """Held-out NLL per code of each class prior against the unigram and bigram baselines counted on the
    training codes, on the same fixed windows of ``split`` (nats per code; lower is better)."""
    from pathlib import Path

    from sepcore.checkpoints import load_model, training_runs, training_totals
    from sepcore.train.prior_fit import class_codes, fixed_windows, ngram_nll, prior_nll

    rows = []
    for codec_name in codecs:
        codec_path = Path(checkpoints) / "latents" / f"{codec_name}.pt"
        for c in classes:
            prior = load_model(Path(checkpoints) / "latents" / f"prior_{codec_name}_{c}.pt")
            train = class_codes(codec_path, c, "train", profile=profile, data_root=data_root)
            held = [t for t in class_codes(codec_path, c, split, profile=profile, data_root=data_root) if t.shape[0] > 256]
            window = min(512, prior.config.block_size, min(t.shape[0] for t in held))
            windows = fixed_windows(held, window, n_windows, seed=2)
            K = prior.config.vocab_size
            info = prior.checkpoint_info["metadata"]
            steps, _ = training_totals(info)                        # a continued prior: every run
            _, cpu_seconds = training_totals(info, "cpu")
            gpu_steps, gpu_seconds = training_totals(info, "cuda")
            with torch.no_grad():
                nll = prior_nll(prior, windows)
            rows.append({"codec": codec_name, "class": c, "prior_nll": nll, "bigram_nll": ngram_nll(train, windows, K, 2),
                         "unigram_nll": ngram_nll(train, windows, K, 1), "uniform_nll": float(torch.tensor(K).log()),
                         "steps": steps, "cpu_minutes": round(cpu_seconds / 60, 1), "gpu_steps": gpu_steps,
                         "gpu_minutes": round(gpu_seconds / 60, 1),
                         "runs": len(training_runs(info)), "train_codes": info.get("train_codes")})
    return pd.DataFrame(rows)


def estimate_choice(map_table: pd.DataFrame, mean_table: pd.DataFrame) -> dict:
    """``{"estimate", "sampler", "sampler_rows", "sampler_temperature"[, "posterior_power"]}`` for
    ``sepcore separate --method lass-spectral``:
    the posterior estimate of the best row of ``mean_table`` (from :func:`choose_mean_on_validation`:
    ``mean`` or ``wiener``) where its validation SDR beats the best beam's (the best row of
    ``map_table``), else the best beam (``map``)."""
    if not len(mean_table) or (len(map_table) and mean_table["sdr"].max() <= map_table["sdr"].max()):
        return {"estimate": "map"}
    best = mean_table.loc[mean_table["sdr"].idxmax()]
    chosen = {"estimate": POSTERIOR_ESTIMATES[best.get("output", "posterior mean")], "sampler": str(best["mean_sampler"]),
              "sampler_rows": int(best["mean_rows"]), "sampler_temperature": float(best["mean_temperature"])}
    return chosen | ({"posterior_power": float(best["mask_power"])} if "mask_power" in best else {})


def save_validation_choice(folder, chosen: dict, *, n_chunks: int) -> None:
    """Write the validation choice where ``sepcore separate --method lass-spectral`` reads its defaults."""
    import json
    from pathlib import Path

    from sepcore.separation.latent_models import SPECTRAL_SETTINGS

    record = {**chosen, "chosen_on": f"{n_chunks} validation chunks (drums/bass), masked-output SDR",
              "written_by": "notebooks/11_lass_audio.md (lv.choose_on_validation)"}
    (Path(folder) / SPECTRAL_SETTINGS).write_text(json.dumps(record, indent=2) + "\n")
