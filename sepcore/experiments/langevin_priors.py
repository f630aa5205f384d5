"""Prior family x sampler on the toy mixtures: flows, score priors and the exact (ideal) prior.

What the Langevin chapter runs beside Frank's flows (issue "Langevin that separates"):

* the committed noise-conditioned score priors (:func:`sepcore.pretrained.get_score_priors`), or
  tiny ones trained on the fly in ``quick``;
* :func:`exact_priors`: the toy family's exact noisy prior (:mod:`sepcore.models.toy_exact`), the
  ideal-prior ceiling;
* :func:`sampler_variants`: the chapter's annealed schedule, the exact mixture constraint, longer
  annealing and parallel chains ranked by the posterior score;
* :func:`separate_all` and :func:`score_rows`: every (family, sampler) on the same mixtures, in
  the same run, with seconds per separated second;
* :func:`prior_diagnostics`: denoising gain and leakage per sigma for each family, and the
  sampler started at the truth (an oracle diagnostic).

Sampler variants are chosen on the **validation** split; the test split only reports.

    OMP_NUM_THREADS=1 python -m sepcore.experiments.langevin_priors --profile default
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from sepcore.data.toy import ToyConfig, ToyDataset
from sepcore.evaluation import evaluate
from sepcore.models.priors import denoising_gain, leakage
from sepcore.models.toy_exact import ExactToyPrior
from sepcore.paths import tables_root
from sepcore.pretrained import get_score_priors
from sepcore.profiles import ProfileConfig
from sepcore.separation.langevin import LangevinConfig, annealed_langevin, langevin_level
from sepcore.tables import write_table
from sepcore.utils import file_sha256


@dataclass
class ToyLangevinConfig(ProfileConfig):
    """Sizes of the toy comparison. ``segment`` matches the chapter's Langevin section."""

    segment: int = 512
    n_test: int = 100
    n_validation: int = 50
    batch_size: int = 50
    leakage_crops: int = 32
    sigmas: tuple = (1.0, 0.27, 0.1, 0.03, 0.01)
    truth_steps: int = 100
    exact_drift: float = 0.02
    exact_phases: int = 64
    n_sweep: int = 10
    seed: int = 0

    @classmethod
    def quick(cls):
        return cls(n_test=3, n_validation=3, batch_size=3, leakage_crops=4, sigmas=(1.0, 0.1),
                   truth_steps=5, exact_drift=0.2, exact_phases=8, n_sweep=2)


def toy_split(profile: str, split: str, n_items: int, segment: int) -> ToyDataset:
    return ToyDataset(ToyConfig.for_profile(profile).replace(length=segment), split, n_items=n_items)


def exact_priors(sources: Sequence[str], profile: str, config: ToyLangevinConfig) -> dict[str, ExactToyPrior]:
    toy = ToyConfig.for_profile(profile)
    return {s: ExactToyPrior(s, toy, max_drift=config.exact_drift, n_phases=config.exact_phases) for s in sources}


def sampler_variants(profile: str) -> dict[str, LangevinConfig]:
    """The samplers compared: the chapter's schedule and the issue's unsupervised ways past the blend."""
    base = LangevinConfig.for_profile(profile)
    return {
        "annealed": base,
        "exact constraint": base.replace(constraint="exact"),
        "longer annealing (2x steps)": base.replace(steps_per_level=2 * base.steps_per_level),
        "4 chains, best posterior": base.replace(n_chains=4),
    }


def exact_samplers(samplers: Mapping[str, LangevinConfig]) -> dict[str, LangevinConfig]:
    """The samplers run with the exact prior: the chapter's schedule and the exact constraint (its grid
    makes every step cost about as much as a score prior's on 60 mixtures, so chains are left out)."""
    return {k: samplers[k] for k in ("annealed", "exact constraint")}


def exact_sweep_samplers(profile: str) -> dict[str, LangevinConfig]:
    """Longer and wider samplers tried with the exact prior only (does any schedule find the sources?)."""
    base = LangevinConfig.for_profile(profile)
    basis = LangevinConfig.full() if profile != "quick" else base                # BASIS: 10 levels x 100 steps
    basis = basis.replace(likelihood_weight=4.0)
    wide = base.replace(sigma_max=16.0, n_levels=2 * base.n_levels)               # starts where templates are unresolved
    return {
        f"BASIS length ({basis.n_levels} x {basis.steps_per_level}), w_λ = 4": basis,
        "σ_max = 16, exact constraint": wide.replace(constraint="exact"),
        "8 chains, best posterior": base.replace(n_chains=8),
    }


def exact_sweep(profile: str, config: ToyLangevinConfig, exact: Mapping[str, torch.nn.Module], cache: Path,
                log=print) -> pd.DataFrame:
    """The exact prior with :func:`exact_sweep_samplers` on the first ``n_sweep`` validation mixtures, and
    the chapter's schedule on two-source (sine + square) validation mixtures: is the ceiling a sampler limit?"""
    validation = toy_split(profile, "validation", config.n_sweep, config.segment)
    frames = [run_family_sampler({EXACT: exact}, {"annealed": sampler_variants(profile)["annealed"],
                                                 **exact_sweep_samplers(profile)},
                                 validation, seed=config.seed, batch_size=config.n_sweep, cache=cache, log=log)
              .assign(sources=4)]
    pair = ToyDataset(ToyConfig.for_profile(profile).replace(length=config.segment, waveforms=("sine", "square")),
                      "validation", n_items=2 * config.n_sweep)
    frames.append(run_family_sampler({EXACT: {c: exact[c] for c in pair.classes}},
                                     {"annealed, 2 sources (sine + square)": sampler_variants(profile)["annealed"]},
                                     pair, seed=config.seed, batch_size=2 * config.n_sweep, cache=cache, log=log)
                  .assign(sources=2))
    frame = pd.concat(frames, ignore_index=True)
    table = (frame.groupby(["sampler", "sources"], sort=False)
             .agg(sdr_median=("sdr", "median"), sdr_mean=("sdr", "mean"), seconds_per_second=("seconds_per_second", "first"),
                  n=("sdr", "size")).reset_index())
    per_source = frame.pivot_table(index="sampler", columns="source", values="sdr", aggfunc="median", sort=False)
    return table.merge(per_source.add_prefix("median_").reset_index(), on="sampler")


def separate_all(dataset: ToyDataset, priors: Sequence[torch.nn.Module], schedule: LangevinConfig, *,
                 seed: int, batch_size: int) -> tuple[torch.Tensor, float]:
    """Estimates ``(n, N, T)`` of every mixture of ``dataset`` and the wall seconds they took."""
    generator = torch.Generator().manual_seed(seed)
    mixtures = torch.stack([dataset[i]["mixture"] for i in range(len(dataset))])
    started = time.perf_counter()
    with torch.no_grad():
        estimates = torch.cat([annealed_langevin(mixtures[i:i + batch_size], priors, schedule, generator, device="cpu")[0]
                               for i in range(0, len(mixtures), batch_size)])
    return estimates, time.perf_counter() - started


def score_rows(dataset: ToyDataset, estimates: torch.Tensor, method: str, seconds: float) -> pd.DataFrame:
    """Per-(mixture, source) SDR rows of precomputed estimates of the first ``len(estimates)`` items."""
    queue = iter(estimates)
    frame = evaluate(dataset, lambda mixture: next(queue), method=method, indices=range(len(estimates)))
    audio_seconds = len(estimates) * dataset.config.length / dataset.sample_rate
    return frame.assign(seconds_per_second=seconds / audio_seconds)


def checkpoint_key(model: torch.nn.Module) -> str:
    """The first 16 hex digits of the sha256 of the checkpoint ``model`` was loaded from
    (``checkpoint_info["path"]``), or ``"trained in this run"`` (never reused by :func:`cached`)."""
    path = getattr(model, "checkpoint_info", {}).get("path")
    return file_sha256(path)[:16] if path is not None and Path(path).exists() else "trained in this run"


def family_key(family: str, priors: Mapping[str, torch.nn.Module]) -> dict:
    """What a family's results depend on: its checkpoints' hashes, or the exact prior's grid."""
    key = {source: {"max_drift": prior.max_drift, "n_phases": prior.n_phases, "top_k": prior.top_k}
           if isinstance(prior, ExactToyPrior) else checkpoint_key(prior) for source, prior in priors.items()}
    return {"family": family, "priors": key}


def cached(folder: Path, name: str, key: dict, compute) -> pd.DataFrame:
    """``compute()`` once per ``key``: the frame is stored as ``folder/name.csv`` beside ``name.key.json``
    and read back while the key is unchanged (a precomputed evaluation run the chapter reuses)."""
    csv, key_file = folder / f"{name}.csv", folder / f"{name}.key.json"
    text = json.dumps(key, sort_keys=True, default=str)
    if csv.exists() and key_file.exists() and key_file.read_text() == text and "trained in this run" not in text:
        return pd.read_csv(csv)
    frame = compute()
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(csv, index=False)
    key_file.write_text(text)
    return frame


def run_family_sampler(families: Mapping[str, Mapping[str, torch.nn.Module]], samplers: Mapping[str, LangevinConfig],
                       dataset: ToyDataset, *, seed: int, batch_size: int, cache: Path | None = None,
                       log=print) -> pd.DataFrame:
    """Every (family, sampler) pair on the same mixtures; rows ``family, sampler, method, id, source, sdr, ...``.

    With ``cache``, each pair's rows are stored there and reused while its key (priors, schedule,
    mixtures, seed) is unchanged."""
    frames = []
    for family, priors in families.items():
        prior_list = [priors[c] for c in dataset.classes]
        for sampler, schedule in samplers.items():
            def compute(schedule=schedule, family=family, sampler=sampler, prior_list=prior_list):
                estimates, seconds = separate_all(dataset, prior_list, schedule, seed=seed, batch_size=batch_size)
                frame = score_rows(dataset, estimates, f"{family} / {sampler}", seconds)
                log(f"{family} / {sampler}: median SDR {frame.sdr.median():.2f} dB, {seconds:.0f} s")
                return frame.assign(family=family, sampler=sampler)

            key = {**family_key(family, priors), "schedule": schedule.to_dict(), "data": dataset.manifest_hash,
                   "split": dataset.split, "n": len(dataset), "seed": seed, "batch_size": batch_size}
            slug = re.sub(r"[^a-z0-9]+", "_", f"{dataset.split} {family} {sampler}".lower()).strip("_")
            frames.append(cached(cache, slug, key, compute) if cache is not None else compute())
    return pd.concat(frames, ignore_index=True)


def mixture_rows(dataset: ToyDataset) -> pd.DataFrame:
    """The baseline every sampler starts from: every estimate equal to the mixture."""
    n = len(dataset.classes)
    frame = evaluate(dataset, lambda m: m[None].expand(n, -1).clone(), method="mixture (ŝ = m)")
    return frame.assign(family="none", sampler="none", seconds_per_second=0.0)


@torch.no_grad()
def gain_and_leakage(priors: Mapping[str, torch.nn.Module], clean: Mapping[str, torch.Tensor], sigmas,
                     generator: torch.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each prior's denoising gain on its own class (:func:`~sepcore.models.priors.denoising_gain`) and
    its leakage of every other class (:func:`~sepcore.models.priors.leakage`, the sources summed at
    their natural levels), per sigma. ``clean``: ``{class: (n, time)}``."""
    gain = pd.DataFrame([{"prior": c, **denoising_gain(prior, clean[c], float(s), generator)}
                         for c, prior in priors.items() for s in sigmas])
    return gain, leakage(priors, clean, sigmas, generator, mixing_weight=1.0)


def prior_diagnostics(families: Mapping[str, Mapping[str, torch.nn.Module]], dataset: ToyDataset,
                      config: ToyLangevinConfig) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Denoising gain per sigma, leakage per sigma, and a sampler started at the truth (oracle diagnostic;
    a chain that becomes non-finite is scored as the mixture and counted in ``diverged``).

    Returns ``(gain, leak, truth_start)`` frames, each with a ``family`` column.
    """
    n = min(config.leakage_crops, len(dataset))
    clean = torch.stack([dataset[i]["sources"] for i in range(n)])                       # (n, N, T)
    by_class = {c: clean[:, k] for k, c in enumerate(dataset.classes)}
    gains, leaks, truth = [], [], []
    for family, priors in families.items():
        generator = torch.Generator().manual_seed(config.seed + 11)
        gain, leak = gain_and_leakage(priors, by_class, config.sigmas, generator)
        gains.append(gain.assign(family=family))
        leaks.append(leak.assign(family=family))
        mixture = clean.mean(1)
        prior_list = [priors[c] for c in dataset.classes]
        schedule = LangevinConfig.for_profile("default")
        for sigma in (0.1, 0.01):
            eta = float(schedule.epsilon * sigma**2 / schedule.sigma_min**2)
            start = clean + sigma * torch.randn(clean.shape, generator=generator)
            with torch.no_grad():
                end, _ = langevin_level(start, mixture, prior_list, sigma, eta, 1.0, config.truth_steps, generator)
            finite = torch.isfinite(end).flatten(1).all(1)                   # a chain may blow up: count it
            end = torch.where(finite[:, None, None], end, mixture[:, None].expand_as(end))
            frame = score_rows(dataset, end, f"{family} start at truth σ={sigma}", 0.0)
            truth.append({"family": family, "sigma": sigma, "steps": config.truth_steps,
                          "sdr_median": float(frame.sdr.median()), "sdr_mean": float(frame.sdr.mean()),
                          "diverged": int((~finite).sum())})
    return pd.concat(gains, ignore_index=True), pd.concat(leaks, ignore_index=True), pd.DataFrame(truth)


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Median and mean SDR over all sources and mixtures per (family, sampler), with seconds per second."""
    return (frame.groupby(["family", "sampler"], sort=False)
            .agg(sdr_median=("sdr", "median"), sdr_mean=("sdr", "mean"), si_sdr_median=("si_sdr", "median"),
                 seconds_per_second=("seconds_per_second", "first"), n=("sdr", "size"))
            .reset_index())


FLOW = "flow (papers 001/002)"
SCORE = "score prior"
EXACT = "exact prior (ideal ceiling)"


def run(profile: str, *, flows: Mapping[str, torch.nn.Module] | None = None, include_flows: bool = True,
        log=print) -> dict[str, pd.DataFrame]:
    """The whole toy comparison; writes ``tables/langevin/priors_*`` and returns the frames.

    ``flows``: the flow priors to compare (default: :func:`sepcore.pretrained.get_flow_priors`)."""
    from sepcore.data.toy import WAVEFORMS
    from sepcore.pretrained import get_flow_priors

    config = ToyLangevinConfig.for_profile(profile)
    validation = toy_split(profile, "validation", config.n_validation, config.segment)
    test = toy_split(profile, "test", config.n_test, config.segment)
    families: dict[str, dict] = {SCORE: get_score_priors(WAVEFORMS, profile, seed=config.seed)}
    if include_flows:
        families[FLOW] = dict(flows) if flows is not None else get_flow_priors(WAVEFORMS, profile, dataset="toy",
                                                                           seed=config.seed)[0]
    exact = {EXACT: exact_priors(WAVEFORMS, profile, config)}
    samplers = sampler_variants(profile)
    out = tables_root(profile) / "langevin"
    parameters = {"config": config.to_dict(), "samplers": {k: v.to_dict() for k, v in samplers.items()},
                  "score_priors": family_key(SCORE, families[SCORE])}
    started = time.time()

    # 1. choose the sampler on validation, for the learned families
    cache = out / "runs"
    val = run_family_sampler({SCORE: families[SCORE]}, samplers, validation, seed=config.seed,
                             batch_size=config.batch_size, cache=cache, log=log)
    val_summary = summary(val)
    chosen = str(val_summary.sort_values("sdr_median", ascending=False).sampler.iloc[0])
    val_summary = val_summary.assign(chosen=val_summary.sampler == chosen)
    write_table(val_summary, out / "priors_validation", profile=profile,
                parameters=parameters, started=started, manifest_hash=validation.manifest_hash,
                n_mixtures=len(validation), notes="sampler choice for the score priors, validation split")
    log(f"validation chooses: {chosen}")

    # 2. test: every family with the annealed schedule and the chosen sampler, same mixtures, same run
    test_samplers = {k: samplers[k] for k in dict.fromkeys(["annealed", "exact constraint", chosen])}
    rows = [mixture_rows(test),
            run_family_sampler(families, test_samplers, test, seed=config.seed, batch_size=config.batch_size,
                               cache=cache, log=log),
            run_family_sampler(exact, exact_samplers(samplers), test, seed=config.seed, batch_size=config.batch_size,
                               cache=cache, log=log)]
    per_item = pd.concat(rows, ignore_index=True)
    table = summary(per_item)
    table["sampler_chosen_on_validation"] = table.sampler == chosen           # (for the score priors)
    write_table(table, out / "priors_family_sampler", profile=profile, parameters=parameters, started=started,
                manifest_hash=test.manifest_hash, n_mixtures=len(test),
                notes="toy, 4 sources, test split; SDR: sepcore.metrics.sdr over all sources and mixtures; "
                      "exact prior = template-grid ideal ceiling")
    write_table(per_item, out / "priors_per_item", profile=profile, parameters=parameters, started=started,
                manifest_hash=test.manifest_hash, n_mixtures=len(test))

    # 3. why: is the ceiling the sampler? longer, wider and parallel samplers with the exact prior
    sweep = exact_sweep(profile, config, exact[EXACT], cache, log=log)
    write_table(sweep, out / "priors_exact_sweep", profile=profile, parameters=parameters, started=started,
                manifest_hash=validation.manifest_hash, n_mixtures=config.n_sweep,
                notes="exact (ideal) prior only; first validation mixtures; median SDR over all sources")

    # 4. why: denoising gain, leakage and starts at the truth
    gain, leak, truth = prior_diagnostics(families | exact, validation, config)
    for name, frame in (("priors_denoising", gain), ("priors_leakage", leak), ("priors_truth_start", truth)):
        write_table(frame, out / name, profile=profile, parameters=parameters, started=started,
                    manifest_hash=validation.manifest_hash, n_mixtures=min(config.leakage_crops, len(validation)),
                    notes="validation split; oracle diagnostics (they use the true sources)")
    return {"validation": val_summary, "table": table, "per_item": per_item, "gain": gain, "leakage": leak, "truth": truth,
            "sweep": sweep}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default", choices=("quick", "default", "full"))
    parser.add_argument("--no-flows", action="store_true", help="leave the flows out (they are the slowest family)")
    args = parser.parse_args(argv)
    frames = run(args.profile, include_flows=not args.no_flows)
    print(frames["table"].round(2).to_string(index=False))


if __name__ == "__main__":
    main()
