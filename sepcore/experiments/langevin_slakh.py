"""Score-prior Langevin on the embedded Slakh-format drums+bass, on the results chapter's chunks.

The sampler is chosen on a few **validation** chunks among the annealed schedule, a stronger
likelihood and the exact mixture constraint, each with raw and masked output
(:func:`sepcore.separation.masking.mask_with_waveforms`: the mixture redistributed by the
estimates' spectrograms, labelled "masked"); the test chunks (the same list as
``sepcore.results.spread_indices`` gives the results chapter) then report the chosen sampler beside
the mixture and HPSS, computed in the same run. The per-chunk rows are written as
``tables/langevin/per_chunk_score_slakh.csv``, which the results chapter collects.

The amortised variational encoders trained against the same score priors on training mixtures
only (``checkpoints/variational/slakh_truncnormal_score.pt``, :mod:`sepcore.train.variational`
``--prior score``) are scored on the same test chunks, raw and masked, both reported
(``tables/langevin/per_chunk_variational_score_slakh.csv``, also collected by the results chapter).

    OMP_NUM_THREADS=1 python -m sepcore.experiments.langevin_slakh --profile default
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass

import pandas as pd
import torch

from sepcore.evaluation import evaluate
from sepcore.experiments.langevin_priors import (
    cached,
    checkpoint_key,
    family_key,
    gain_and_leakage,
)
from sepcore.paths import CHECKPOINTS, tables_root
from sepcore.pretrained import get_score_priors
from sepcore.profiles import ProfileConfig
from sepcore.separation.langevin import LangevinConfig, LangevinSeparator
from sepcore.separation.masking import mask_with_waveforms
from sepcore.tables import write_table

CLASSES = ("drums", "bass")
VARIATIONAL = "variational vs score priors"
SETTINGS = CHECKPOINTS / "score" / "langevin_settings.json"     # the validation choice the API method reads
METHOD = "Langevin, score priors"


@dataclass
class SlakhLangevinConfig(ProfileConfig):
    n_test: int | None = 40             # the results chapter's chunks per pair
    n_validation: int = 4
    n_levels: int = 8
    steps_per_level: int = 5            # 40 steps: about 20 s per 3 s chunk on one thread
    step_ratio: float = 0.5             # eta_i / sigma_i^2 at every level
    seed: int = 0

    @classmethod
    def quick(cls):
        return cls(n_test=2, n_validation=1, n_levels=2, steps_per_level=3)


def score_schedule(priors, config: SlakhLangevinConfig, **overrides) -> LangevinConfig:
    return LangevinConfig.for_score_priors(priors, config.n_levels, config.steps_per_level, config.step_ratio, **overrides)


def candidates(priors, config: SlakhLangevinConfig) -> dict[str, LangevinConfig]:
    return {
        "annealed": score_schedule(priors, config),
        "annealed, w_λ = N": score_schedule(priors, config, likelihood_weight=float(len(priors))),
        "exact constraint": score_schedule(priors, config, constraint="exact"),
    }


def run_chunks(data, indices, separate, label: str) -> pd.DataFrame:
    """Raw and masked rows of ``separate (time,) -> (2, time)`` for every chunk; ``seconds`` is its wall time per chunk."""
    estimates, seconds = {}, {}

    def timed(mixture):
        started = time.perf_counter()
        estimate = separate(mixture)
        seconds[len(seconds)] = time.perf_counter() - started
        estimates[len(estimates)] = estimate
        return estimate

    raw = evaluate(data, timed, method=f"{label} (raw)", indices=indices)
    queue = iter(range(len(estimates)))

    def masked(mixture):
        return mask_with_waveforms(mixture, estimates[next(queue)])

    masked_rows = evaluate(data, masked, method=f"{label} (masked)", indices=indices)
    per_chunk = [seconds[i] for i in range(len(seconds)) for _ in CLASSES]
    masked_rows["seconds"] = per_chunk
    return pd.concat([raw, masked_rows], ignore_index=True)


def split_method(method: str) -> tuple[str, str]:
    """``"<label> (<output>)"`` (a :func:`run_chunks` row) -> ``(label, output)``."""
    label, output = method.rsplit(" (", 1)
    return label, output.rstrip(")")


def baselines(data, indices) -> pd.DataFrame:
    from sepcore.api import build_separator, get_method

    frames = []
    for name in ("average", "hpss"):                     # the mixture itself (m / (w N)) and the best blind baseline
        spec = get_method(name)
        separate = build_separator(name, tuple(data.classes), sample_rate=data.sample_rate)
        frame = evaluate(data, separate, method=spec.label, indices=indices)
        frames.append(frame.assign(family=spec.family))
    return pd.concat(frames, ignore_index=True)


def means(frame: pd.DataFrame) -> pd.DataFrame:
    table = frame.pivot_table(index="method", columns="source", values="sdr", aggfunc="mean", sort=False)
    table = table[list(CLASSES)].assign(mean=lambda t: t.mean(axis=1)).reset_index()
    seconds = frame.groupby("method", sort=False).apply(lambda g: g.seconds.sum() / g.audio_seconds.sum(),
                                                        include_groups=False)
    return table.assign(seconds_per_second=table.method.map(seconds))


def run(profile: str, *, data_root=None, log=print) -> dict[str, pd.DataFrame]:
    from sepcore.book import default_data_root
    from sepcore.data.slakh import SlakhMixtures, resolve_root
    from sepcore.results import spread_indices

    config = SlakhLangevinConfig.for_profile(profile)
    root = resolve_root(profile, data_root or default_data_root())
    priors_by_class = get_score_priors(CLASSES, profile, dataset="slakh", seed=config.seed)
    priors = [priors_by_class[c] for c in CLASSES]
    out = tables_root(profile) / "langevin"
    started = time.time()
    validation = SlakhMixtures(root, classes=CLASSES, split="validation")
    val_indices = spread_indices(len(validation), config.n_validation)
    options = candidates(priors, config)
    frames = []
    for name, schedule in options.items():
        key = {**family_key("score prior", priors_by_class), "schedule": schedule.to_dict(), "split": "validation",
               "indices": val_indices, "data": validation.manifest_hash, "seed": config.seed}
        frames.append(cached(out / "runs", f"slakh_validation_{name}".replace(" ", "_").replace(",", "").replace("=", ""),
                             key, lambda s=schedule, n=name: run_chunks(
                                 validation, val_indices, LangevinSeparator(priors, s, device="cpu", seed=config.seed).separate, n)))
        log(f"validation {name}: {means(frames[-1]).round(2).to_dict('records')}")
    val_table = means(pd.concat(frames, ignore_index=True))
    best = val_table.sort_values("mean", ascending=False).method.iloc[0]
    chosen_sampler, chosen_output = split_method(best)
    parameters = {"config": config.to_dict(), "candidates": {k: v.to_dict() for k, v in options.items()},
                  "chosen": best, "priors": family_key("score prior", priors_by_class)}
    val_table = val_table.assign(chosen=val_table.method == best)

    if profile == "default":
        settings = {"sampler": chosen_sampler, "output": chosen_output, "schedule": options[chosen_sampler].to_dict(),
                    "chosen_on": f"{len(val_indices)} validation chunks (tables/langevin/slakh_score_validation)"}
        SETTINGS.write_text(json.dumps(settings, indent=2) + "\n")
    test = SlakhMixtures(root, classes=CLASSES, split="test")
    indices = spread_indices(len(test), config.n_test)
    schedule = options[chosen_sampler]
    key = {**family_key("score prior", priors_by_class), "schedule": schedule.to_dict(), "split": "test",
           "indices": indices, "data": test.manifest_hash, "seed": config.seed}
    rows = cached(out / "runs", "slakh_test_chosen", key,
                  lambda: run_chunks(test, indices, LangevinSeparator(priors, schedule, device="cpu", seed=config.seed).separate,
                                     f"{METHOD}, {chosen_sampler}"))
    rows = rows.assign(family="generative", pair="drums/bass")
    separator = variational_encoder(profile, config.seed)
    encoder_sha = checkpoint_key(separator)
    encoder_val = means(cached(out / "runs", "slakh_validation_variational_score",
                               {"encoder": encoder_sha, "split": "validation", "indices": val_indices,
                                "data": validation.manifest_hash},
                               lambda: run_chunks(validation, val_indices, separator.separate, VARIATIONAL)))
    encoder_output = split_method(encoder_val.sort_values("mean", ascending=False).method.iloc[0])[1]
    encoder_key = {"encoder": encoder_sha, "split": "test", "indices": indices, "data": test.manifest_hash}
    encoder_rows = cached(out / "runs", "slakh_test_variational_score", encoder_key,
                          lambda: run_chunks(test, indices, separator.separate, VARIATIONAL))
    encoder_rows = encoder_rows.assign(family="generative", pair="drums/bass",
                                       chosen_on_validation=encoder_rows.method.str.endswith(f"({encoder_output})"))
    same_run = pd.concat([baselines(test, indices).assign(pair="drums/bass"), rows, encoder_rows], ignore_index=True)
    val_table = pd.concat([val_table, encoder_val.assign(chosen=encoder_val.method.str.endswith(f"({encoder_output})"))],
                          ignore_index=True)
    write_table(val_table, out / "slakh_score_validation", profile=profile,
                parameters=parameters, started=started, manifest_hash=validation.manifest_hash,
                n_mixtures=len(val_indices), notes="drums+bass validation chunks; chooses the Langevin sampler and "
                "output, and the variational encoders' output")
    table = means(same_run)
    write_table(table, out / "slakh_score_sdr", profile=profile, parameters=parameters, started=started,
                manifest_hash=test.manifest_hash, n_mixtures=len(indices),
                notes="drums+bass test chunks of the results chapter; mean SDR (sepcore.metrics.sdr); one thread")
    chosen_rows = rows[rows.method.str.endswith(f"({chosen_output})")]
    write_table(chosen_rows, out / "per_chunk_score_slakh", profile=profile, parameters=parameters, started=started,
                manifest_hash=test.manifest_hash, n_mixtures=len(indices),
                notes="the validation-chosen score-prior Langevin rows, collected by the results chapter")
    write_table(encoder_rows, out / "per_chunk_variational_score_slakh", profile=profile, parameters=parameters,
                started=started, manifest_hash=test.manifest_hash, n_mixtures=len(indices),
                notes="variational encoders trained against the score priors on mixtures only; raw and masked, "
                      "collected by the results chapter")
    diagnostics = prior_diagnostics(priors_by_class, validation, val_indices, options["annealed"], config.seed)
    for name, frame in zip(("slakh_score_denoising", "slakh_score_leakage"), diagnostics):
        write_table(frame, out / name, profile=profile, parameters=parameters, started=started,
                    manifest_hash=validation.manifest_hash, n_mixtures=len(val_indices),
                    notes="validation chunks' own stems; oracle diagnostics (they use the true sources)")
    return {"validation": val_table, "table": table, "rows": same_run, "gain": diagnostics[0], "leakage": diagnostics[1]}


def variational_encoder(profile: str, seed: int = 0):
    """The drums+bass encoders trained against the score priors (``checkpoints/variational/slakh_truncnormal_score.pt``;
    ``quick``: 5 training steps, a smoke test)."""
    from sepcore.checkpoints import load_model
    from sepcore.separation.variational import VariationalSeparator
    from sepcore.train.variational import checkpoint_path, train_slakh

    if profile == "quick":
        return train_slakh("quick", classes=CLASSES, seed=seed, prior="score", train_overrides={"steps": 5})[0]
    path = checkpoint_path("slakh", "truncnormal", "score")
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; train it with `python -m sepcore.train.variational --dataset slakh "
                                "--prior score`")
    return load_model(path, expect={"sources": CLASSES}, expect_class=VariationalSeparator)


def prior_diagnostics(priors_by_class, dataset, indices, schedule: LangevinConfig, seed: int):
    """Denoising gain of each score prior on its own stems and leakage of the other stem, at five of
    the schedule's levels (:func:`sepcore.experiments.langevin_priors.gain_and_leakage`)."""
    stems = torch.stack([dataset[i]["sources"] for i in indices])                 # (n, 2, T)
    clean = {c: stems[:, k] for k, c in enumerate(CLASSES)}
    sigmas = schedule.sigmas()[:: max(1, schedule.n_levels // 4)].tolist() + [schedule.sigma_min]
    sigmas = sorted(set(round(s, 6) for s in sigmas), reverse=True)
    return gain_and_leakage(priors_by_class, clean, sigmas, torch.Generator().manual_seed(seed + 5))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default", choices=("quick", "default", "full"))
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args(argv)
    print(run(args.profile, data_root=args.data_root)["table"].round(2).to_string(index=False))


if __name__ == "__main__":
    main()
