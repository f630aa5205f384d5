"""Unsupervised ways past the blend on the toy mixtures, beside the score priors' Langevin rows.

The Langevin chapter's priors leave blends: each class's denoiser keeps much of the other
classes (``tables/langevin/priors_leakage``). This module runs the remaining unsupervised
escapes of the issue "Langevin that separates" on the **same 100 test mixtures** as
:mod:`sepcore.experiments.langevin_priors`, every row in one table with the mixture beside it:

* **amortised variational encoders** (paper 002, :mod:`sepcore.separation.variational`) trained on
  mixtures only, against the flows (the reproduction) and against the score priors (the ELBO's
  reparameterised gradient needs only their score), alone and as the start of a short Langevin
  refinement with the score priors under the exact mixture constraint;
* a **joint score model** over the four classes (MSDM's route, :class:`ScorePrior` with
  ``n_sources = 4``), trained on independently drawn waveforms, with the annealed sampler and the
  exact constraint;
* the **noise-conditioned ActNorm** ablation of the flows (:class:`sepcore.models.flow.ActNorm`),
  with the flows' sampler, and the denoising gain of both flow variants per sigma.

Choices (the sampler of each new family, the refinement's first level) are made on the
**validation** split; the test split only reports. Separation runs are cached under
``tables/langevin/runs`` by checkpoint hash, schedule and data (:func:`langevin_priors.cached`).

    OMP_NUM_THREADS=1 python -m sepcore.experiments.blend_escapes --profile default
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from sepcore.checkpoints import load_model
from sepcore.data.toy import WAVEFORMS, ToyDataset
from sepcore.experiments.langevin_priors import (
    FLOW,
    SCORE,
    ToyLangevinConfig,
    cached,
    checkpoint_key,
    family_key,
    gain_and_leakage,
    mixture_rows,
    run_family_sampler,
    sampler_variants,
    score_rows,
    summary,
    toy_split,
)
from sepcore.models.flow import FlowPrior
from sepcore.models.priors import denoising_gain
from sepcore.models.score_prior import ScorePrior
from sepcore.paths import BUILD, CHECKPOINTS, tables_root
from sepcore.pretrained import get_score_priors
from sepcore.profiles import ProfileConfig
from sepcore.separation.langevin import LangevinConfig, annealed_langevin
from sepcore.separation.variational import VariationalSeparator
from sepcore.tables import write_table

JOINT = "joint score model (MSDM)"
ACTNORM = "flow, noise-conditioned ActNorm"


@dataclass
class EscapeConfig(ProfileConfig):
    """The refinement's candidate first levels and its number of levels. Everything else (mixtures,
    batch size, seed, diagnostic levels) is :class:`langevin_priors.ToyLangevinConfig`'s, so these rows
    are scored on exactly the prior family x sampler table's mixtures."""

    refine_from: tuple = (0.3, 0.1, 0.03)
    refine_levels: int = 5

    @classmethod
    def quick(cls):
        return cls(refine_from=(0.1,), refine_levels=2)


def _quick_dir(*parts: str):
    folder = BUILD.joinpath("quick", *parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def encoder(prior: str, profile: str, seed: int = 0) -> VariationalSeparator:
    """The toy Beta encoders trained against ``prior`` (``"flow"`` or ``"score"``): the committed
    ``checkpoints/variational/toy_beta[_score].pt``, or in ``quick`` a few steps of training (a smoke test)."""
    from sepcore.train.variational import checkpoint_path, train_toy

    if profile == "quick":
        return train_toy("quick", seed=seed, prior=prior, train_overrides={"steps": 5})[0]
    path = checkpoint_path("toy", "beta", prior)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; train it with `python -m sepcore.train.variational --dataset toy "
                                f"--prior {prior}`")
    return load_model(path, expect_class=VariationalSeparator).eval()


def joint_prior(profile: str, seed: int = 0) -> ScorePrior:
    """The joint score model over the four toy classes, ``checkpoints/score/toy_joint.pt`` (quick: trained for 30 steps)."""
    source = "+".join(WAVEFORMS)
    if profile == "quick":
        from sepcore.train.fit import FitPlan
        from sepcore.train.score_prior import ScoreTrainConfig, train_score_prior

        out = _quick_dir("score") / "toy_joint.pt"
        for stale in (out, out.with_name(out.name + ".state.pt")):
            stale.unlink(missing_ok=True)
        train_score_prior(ScoreTrainConfig.quick().replace(source=source, seed=seed),
                          FitPlan(steps=30, warmup_steps=5, eval_every=30, checkpoint_every=30), out)
    else:
        out = CHECKPOINTS / "score" / "toy_joint.pt"
        if not out.exists():
            raise FileNotFoundError(f"{out} is missing; train it with `python -m sepcore.train.score_prior --dataset toy --joint`")
    return load_model(out, expect={"source": source}, expect_class=ScorePrior).eval()


def actnorm_flows(profile: str, seed: int = 0) -> dict[str, FlowPrior]:
    """The flows with noise-conditioned ActNorm, ``checkpoints/flows/ablation/toy_<source>_actnorm.pt``
    (quick: 20 steps each)."""
    from sepcore.train.fit import FitPlan
    from sepcore.train.flow import fit_flow

    flows = {}
    for source in WAVEFORMS:
        if profile == "quick":
            out = _quick_dir("flows") / f"toy_{source}_actnorm.pt"
            for stale in (out, out.with_name(out.name + ".state.pt")):
                stale.unlink(missing_ok=True)
            fit_flow("toy", source, FitPlan(steps=20, warmup_steps=5, eval_every=20, checkpoint_every=20), out,
                     profile="quick", seed=seed, val_crops=4, conditioned_actnorm=True, log=lambda *_: None)
        else:
            out = CHECKPOINTS / "flows" / "ablation" / f"toy_{source}_actnorm.pt"
            if not out.exists():
                raise FileNotFoundError(f"{out} is missing; train it with `python -m sepcore.train.flow --dataset toy "
                                        f"--source {source} --conditioned-actnorm` and the plain flow's --steps "
                                        "(commands in checkpoints/flows/README.md)")
        flows[source] = load_model(out, expect={"source": source, "conditioned_actnorm": True}, expect_class=FlowPrior)
    return flows


def encoder_key(name: str, separator: VariationalSeparator) -> dict:
    return {"family": name, "encoder": checkpoint_key(separator)}


def refinement_schedule(sigma_start: float, priors: Sequence[ScorePrior], levels: int) -> LangevinConfig:
    """A short annealed schedule from ``sigma_start`` down to the priors' smallest level, exact constraint."""
    base = LangevinConfig.for_score_priors(priors)
    return base.replace(sigma_max=max(sigma_start, base.sigma_min), n_levels=levels, constraint="exact")


def encoder_rows(dataset: ToyDataset, separator: VariationalSeparator, name: str, *, refine=None,
                 seed: int = 0, batch_size: int = 50) -> pd.DataFrame:
    """Per-(mixture, source) rows of the encoder's posterior means, or, with ``refine = (priors, schedule)``,
    of annealed Langevin started at them (the seconds include the encoder's)."""
    mixtures = torch.stack([dataset[i]["mixture"] for i in range(len(dataset))])
    generator = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    chunks = []
    with torch.no_grad():
        for i in range(0, len(mixtures), batch_size):
            batch = mixtures[i:i + batch_size]
            estimate = separator.separate_batch(batch)
            if refine is not None:
                priors, schedule = refine
                estimate, _ = annealed_langevin(batch, priors, schedule, generator, device="cpu", start=estimate)
            chunks.append(estimate)
    return score_rows(dataset, torch.cat(chunks), name, time.perf_counter() - started)


def variational_rows(dataset: ToyDataset, encoders: Mapping[str, VariationalSeparator], scores: Sequence[ScorePrior],
                     config: ToyLangevinConfig, cache, refine_from: Sequence[float], refine_levels: int,
                     log=print) -> pd.DataFrame:
    """Each encoder alone, and the score-prior encoder refined from each of ``refine_from``; rows
    carry ``family`` (the encoder's prior) and ``sampler`` (``"encoder alone"`` or the refinement)."""
    frames = []
    for prior, separator in encoders.items():
        variants = {"encoder alone": None}
        if prior == "score":
            variants |= {f"encoder + Langevin from σ={s:g}": (scores, refinement_schedule(s, scores, refine_levels))
                         for s in refine_from}
        family = f"variational encoder vs {'score priors' if prior == 'score' else 'flows'}"
        for sampler, refine in variants.items():
            def compute(sampler=sampler, refine=refine, family=family, separator=separator):
                frame = encoder_rows(dataset, separator, f"{family} / {sampler}", refine=refine, seed=config.seed,
                                     batch_size=config.batch_size)
                log(f"{family} / {sampler}: median SDR {frame.sdr.median():.2f} dB")
                return frame.assign(family=family, sampler=sampler)

            key = {**encoder_key(family, separator), "sampler": sampler, "data": dataset.manifest_hash,
                   "split": dataset.split, "n": len(dataset), "seed": config.seed,
                   "refine": None if refine is None else {"priors": family_key(SCORE, dict(zip(WAVEFORMS, scores))),
                                                          "schedule": refine[1].to_dict()}}
            slug = re.sub(r"[^a-z0-9]+", "_", f"{dataset.split} variational {prior} {sampler}".lower()).strip("_")
            frames.append(cached(cache, slug, key, compute))
    return pd.concat(frames, ignore_index=True)


def best(frame: pd.DataFrame, family: str) -> str:
    """The sampler of ``family`` with the best median SDR (on the frame's split)."""
    medians = frame[frame.family == family].groupby("sampler").sdr.median()
    return str(medians.idxmax())


def run(profile: str, *, log=print) -> dict[str, pd.DataFrame]:
    """Every escape on validation (choices), then on test beside the mixture and the score priors;
    writes ``tables/langevin/escapes_*`` and returns the frames."""
    from sepcore.pretrained import get_flow_priors

    config = ToyLangevinConfig.for_profile(profile)
    escape = EscapeConfig.for_profile(profile)
    validation = toy_split(profile, "validation", config.n_validation, config.segment)
    test = toy_split(profile, "test", config.n_test, config.segment)
    scores_map = get_score_priors(WAVEFORMS, profile, seed=config.seed)
    scores = [scores_map[c] for c in WAVEFORMS]
    joint = joint_prior(profile, config.seed)
    ablation = actnorm_flows(profile, config.seed)
    flows = get_flow_priors(WAVEFORMS, profile, dataset="toy", seed=config.seed)[0]
    encoders = {"flow": encoder("flow", profile, config.seed), "score": encoder("score", profile, config.seed)}
    samplers = {k: v for k, v in sampler_variants(profile).items() if k in ("annealed", "exact constraint")}
    out = tables_root(profile) / "langevin"
    cache = out / "runs"
    started = time.time()
    parameters = {"config": config.to_dict(), "escape": escape.to_dict(), "samplers": {k: v.to_dict() for k, v in samplers.items()},
                  "joint": family_key(JOINT, {"joint": joint}), "actnorm": family_key(ACTNORM, ablation),
                  "encoders": {k: encoder_key(k, v) for k, v in encoders.items()}}

    # 1. validation: each new family's sampler, and where the refinement starts
    new_families = {JOINT: {c: joint for c in WAVEFORMS}, ACTNORM: ablation}
    val = pd.concat([run_family_sampler(new_families, samplers, validation, seed=config.seed,
                                        batch_size=config.batch_size, cache=cache, log=log),
                     variational_rows(validation, {"score": encoders["score"]}, scores, config, cache,
                                      escape.refine_from, escape.refine_levels, log=log)], ignore_index=True)
    chosen = {family: best(val, family) for family in val.family.unique()}
    val_table = summary(val)
    val_table["chosen"] = [chosen[f] == s for f, s in zip(val_table.family, val_table.sampler)]
    write_table(val_table, out / "escapes_validation", profile=profile, parameters=parameters, started=started,
                manifest_hash=validation.manifest_hash, n_mixtures=len(validation),
                notes="choices of the new families' samplers and of the refinement's first level, validation split")
    log(f"validation chooses: {chosen}")

    # 2. test: the chosen variants, every row on the same mixtures, beside the mixture and the score priors
    refine_choice = chosen["variational encoder vs score priors"]
    refine_start = [float(refine_choice.rpartition("=")[2])] if "Langevin" in refine_choice else []
    rows = [mixture_rows(test),
            run_family_sampler({SCORE: scores_map}, samplers, test, seed=config.seed, batch_size=config.batch_size,
                               cache=cache, log=log),
            run_family_sampler({FLOW: flows, ACTNORM: ablation}, samplers, test,
                               seed=config.seed, batch_size=config.batch_size, cache=cache, log=log),
            run_family_sampler({JOINT: new_families[JOINT]}, samplers, test, seed=config.seed,
                               batch_size=config.batch_size, cache=cache, log=log),
            variational_rows(test, encoders, scores, config, cache, refine_start, escape.refine_levels, log=log)]
    per_item = pd.concat(rows, ignore_index=True)
    table = summary(per_item)
    table["chosen_on_validation"] = [chosen.get(f) == s for f, s in zip(table.family, table.sampler)]
    per_source = per_item.pivot_table(index=["family", "sampler"], columns="source", values="sdr", aggfunc="median",
                                      sort=False).add_prefix("median_").reset_index()
    table = table.merge(per_source, on=["family", "sampler"], how="left")
    write_table(table, out / "escapes", profile=profile, parameters=parameters, started=started,
                manifest_hash=test.manifest_hash, n_mixtures=len(test),
                notes="toy, 4 sources, test split (the prior family x sampler table's mixtures); SDR over all sources")

    # 3. denoising gain per sigma and mean leakage of the ActNorm ablation beside the flows, and the joint
    #    model's gain on all four classes at once (oracle diagnostics: they use the true sources)
    n = min(config.leakage_crops, len(validation))
    clean = torch.stack([validation[i]["sources"] for i in range(n)])                        # (n, 4, T)
    by_class = {c: clean[:, k] for k, c in enumerate(WAVEFORMS)}
    gains = []
    for family, priors in ((FLOW, flows), (ACTNORM, ablation)):
        gain, leak = gain_and_leakage(priors, by_class, config.sigmas, torch.Generator().manual_seed(config.seed + 11))
        kept = leak.groupby(["prior", "sigma"], as_index=False).agg(kept_of_others=("kept", "mean"))
        gains.append(gain.merge(kept, on=["prior", "sigma"]).assign(family=family))
    generator = torch.Generator().manual_seed(config.seed + 11)
    gains.append(pd.DataFrame([{"prior": "all four (joint)", **denoising_gain(joint, clean, float(s), generator)}
                               for s in config.sigmas]).assign(family=JOINT))
    gain_table = pd.concat(gains, ignore_index=True)
    write_table(gain_table, out / "escapes_denoising", profile=profile, parameters=parameters, started=started,
                manifest_hash=validation.manifest_hash, n_mixtures=n,
                notes="validation split; oracle diagnostics (they use the true sources): Tweedie denoising gain per "
                      "sigma and the mean share of each other class the denoiser keeps (sepcore.models.priors.leakage)")
    return {"validation": val_table, "table": table, "per_item": per_item, "chosen": chosen, "gain": gain_table}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default", choices=("quick", "default", "full"))
    args = parser.parse_args(argv)
    frames = run(args.profile)
    print(frames["table"].round(2).to_string(index=False))
    print(frames["gain"].round(2).to_string(index=False))


if __name__ == "__main__":
    main()
