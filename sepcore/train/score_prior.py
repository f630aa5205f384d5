"""Train one noise-conditioned score prior per source class (:mod:`sepcore.models.score_prior`).

Each step draws ``batch_size`` random crops of one class (toy waveforms, or embedded Slakh-format
stems), a noise level per crop, log-uniform in ``[sigma_min, sigma_max]``, and minimises the
EDM-weighted denoising score matching loss (:meth:`ScorePrior.dsm_loss`). The noise range is
scaled to the class: ``sigma_data`` is the RMS of 256 training crops, and the bounds are
``sigma_lo * sigma_data`` and ``sigma_hi * sigma_data`` (toy waves have RMS ~0.6, Slakh stems
~0.06, so one absolute range cannot fit both). Validation: the same loss on fixed crops of the
validation split with fixed noise, averaged over a fixed grid of levels.

The loop is :func:`sepcore.train.fit.fit`: a CPU-time budget, resumable state with a config
check, validation every ``eval_every`` steps, a plateau stop and a learning curve in
``tables/training/score_<dataset>_<source>.csv``.

    OMP_NUM_THREADS=1 python -m sepcore.train.score_prior --dataset toy --cpu-minutes 10
    OMP_NUM_THREADS=1 python -m sepcore.train.score_prior --dataset slakh --sources drums bass guitar --cpu-minutes 15

``--joint`` trains one joint model over all ``--sources`` instead (MSDM's route,
:class:`ScorePrior` with ``n_sources = K``): every training item stacks one crop of each class,
each drawn **independently** (other items, other offsets), so the model never sees a mixture
together with its own sources. Output ``checkpoints/score/<dataset>_joint.pt``.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from sepcore.checkpoints import save_checkpoint
from sepcore.models.score_prior import ScorePrior, ScorePriorConfig
from sepcore.paths import score_prior_path, training_tables
from sepcore.profiles import ProfileConfig
from sepcore.train.fit import FitPlan, fit
from sepcore.train.safe_paths import refuse_committed_path
from sepcore.utils import seed_everything

TOY_SOURCES = ("sine", "square", "sawtooth", "triangle")
SLAKH_SOURCES = ("drums", "bass", "guitar")


@dataclass
class ScoreTrainConfig(ProfileConfig):
    """Data and noise settings of one score prior's training run."""

    dataset: str = "toy"
    source: str = "sine"
    profile: str = "default"
    crop_length: int = 1024
    batch_size: int = 8
    sigma_lo: float = 0.008          # sigma_min = sigma_lo * sigma_data
    sigma_hi: float = 3.0            # sigma_max = sigma_hi * sigma_data
    val_crops: int = 64
    val_levels: int = 8
    seed: int = 0

    @classmethod
    def quick(cls):
        return cls(profile="quick", crop_length=512, batch_size=4, val_crops=8, val_levels=3)


def crop_source(dataset: str, source: str, split: str, profile: str, data_root=None):
    """A function ``(n, length, generator) -> (n, length)`` of crops of one class and split.

    ``source = "a+b+..."`` (a joint model's classes) gives ``(n, K, length)``: one independent crop
    of each class per item, stacked."""
    if "+" in source:
        parts = [crop_source(dataset, s, split, profile, data_root) for s in source.split("+")]
        return lambda n, length, generator: torch.stack([draw(n, length, generator) for draw in parts], dim=1)
    if dataset == "toy":
        from sepcore.data.toy import ToyConfig
        from sepcore.train.flow import toy_crops

        config = ToyConfig.for_profile(profile)
        if source not in config.waveforms:
            raise ValueError(f"unknown toy source {source!r}; choose from {config.waveforms}")
        return lambda n, length, generator: toy_crops(source, n, length, generator, config, split)
    if dataset == "slakh":
        from sepcore.train.stems import stem_source

        stems = stem_source(source, split=split, profile=profile, data_root=data_root)
        return stems.random_crops
    raise ValueError(f"dataset must be 'toy' or 'slakh', got {dataset!r}")


def default_out(dataset: str, source: str) -> Path:
    """``checkpoints/score/<dataset>_<source>.pt``; a joint model (``"a+b+..."``) is ``<dataset>_joint.pt``."""
    return score_prior_path(dataset, source)


def train_score_prior(config: ScoreTrainConfig, plan: FitPlan, out, *, data_root=None,
                      model_config: ScorePriorConfig | None = None, init_from: dict | None = None):
    """Train (or resume) one class's score prior into ``out``; returns the :class:`FitResult`.
    ``init_from``: weights to warm-start a fresh run from (a later session continuing a committed prior)."""
    seed_everything(config.seed)
    out = Path(out)
    train = crop_source(config.dataset, config.source, "train", config.profile, data_root)
    val_draw = crop_source(config.dataset, config.source, "validation", config.profile, data_root)
    probe = train(256, config.crop_length, torch.Generator().manual_seed(config.seed + 7))
    sigma_data = round(float(probe.pow(2).mean().sqrt()), 5)
    base = model_config or ScorePriorConfig.for_profile(config.profile)
    sample_rate = 14700 if config.dataset == "toy" else 22050
    model_config = base.replace(source=config.source, sigma_data=sigma_data, sample_rate=sample_rate,
                                n_sources=len(config.source.split("+")),
                                sigma_min=round(config.sigma_lo * sigma_data, 6),
                                sigma_max=round(config.sigma_hi * sigma_data, 6))
    model = ScorePrior(model_config)
    log_lo, log_hi = math.log(model_config.sigma_min), math.log(model_config.sigma_max)
    val_generator = torch.Generator().manual_seed(config.seed + 1)
    val_clean = val_draw(config.val_crops, config.crop_length, val_generator)
    val_noise = torch.randn(val_clean.shape, generator=val_generator)
    val_sigmas = torch.logspace(log_lo / math.log(10), log_hi / math.log(10), config.val_levels)
    generator = torch.Generator().manual_seed(config.seed)

    def loss_fn(step):
        clean = train(config.batch_size, config.crop_length, generator)
        sigma = (log_lo + torch.rand(config.batch_size, generator=generator) * (log_hi - log_lo)).exp()
        return model.dsm_loss(clean, sigma, torch.randn(clean.shape, generator=generator))

    def val_fn():
        losses = [model.dsm_loss(val_clean, torch.full((len(val_clean),), float(s)), val_noise) for s in val_sigmas]
        return float(torch.stack(losses).mean())

    data = f"{config.dataset} {config.source}, {config.profile} profile"
    run_config = {"train": config.to_dict(), "model": model_config.to_dict(), "data": data}

    def on_checkpoint(best, info):
        save_checkpoint(out, best, metadata={"data": data, "train_config": config.to_dict(), "plan": plan.__dict__,
                                             "val_dsm_loss": round(info["best_val"], 5), **info})

    return fit(model, loss_fn, val_fn, plan, state_path=out.with_name(out.name + ".state.pt"), config=run_config,
               curve_path=training_tables(config.profile) / f"score_{default_out(config.dataset, config.source).stem}.csv",
               name=f"score {config.dataset}/{config.source}", on_checkpoint=on_checkpoint, init_from=init_from)


def on_the_fly_plan(profile: str) -> FitPlan:
    """The :class:`FitPlan` of a prior trained on the fly (:func:`train_on_the_fly`): ``quick``, 30
    steps (a smoke test); otherwise the command-line runs' settings (learning rate 1e-3 with 100
    warm-up steps, validation every 200 steps, a plateau after 10 evaluations without a gain of
    1e-4) with at most 20,000 steps, about 2-4 times the committed CPU runs (``checkpoints/score``)."""
    if profile == "quick":
        return FitPlan(steps=30, warmup_steps=5, eval_every=30, checkpoint_every=30)
    return FitPlan(steps=20000, lr=1e-3, warmup_steps=100, eval_every=200, checkpoint_every=200, patience=10,
                   min_delta=1e-4, weight_decay=0.0)


def train_on_the_fly(dataset: str, source: str, profile: str, *, seed: int = 0, data_root=None, log=print) -> Path:
    """A score prior of ``profile``'s sizes and data trained by :func:`train_score_prior` under
    :func:`on_the_fly_plan` into ``_build/<profile>/checkpoints/score/<dataset>_<source>.pt``;
    returns the path. A finished run there with the same config is reused; one with another config
    is started over."""
    from sepcore.paths import BUILD
    from sepcore.train.fit import restart_on_mismatch

    out = score_prior_path(dataset, source, BUILD / profile / "checkpoints")
    config = ScoreTrainConfig.for_profile(profile).replace(dataset=dataset, source=source, seed=seed)
    restart_on_mismatch(lambda: train_score_prior(config, on_the_fly_plan(profile), out, data_root=data_root),
                        out.with_name(out.name + ".state.pt"), log=log)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="toy", choices=("toy", "slakh"))
    parser.add_argument("--sources", nargs="+", default=None, help="classes to train, one after another")
    parser.add_argument("--profile", default="default", choices=("quick", "default", "full"))
    parser.add_argument("--out-dir", default=None, help="default: checkpoints/score (default profile only)")
    parser.add_argument("--cpu-minutes", type=float, default=None, help="CPU budget per class")
    parser.add_argument("--steps", type=int, default=100000)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--channels", type=int, default=None, help="denoiser width (default: the profile's)")
    parser.add_argument("--max-dilation", type=int, default=None)
    parser.add_argument("--warm-start", action="store_true",
                        help="start from the weights already at the output path (fresh optimiser, 100 warm-up steps)")
    parser.add_argument("--joint", action="store_true", help="one joint model over all --sources (MSDM)")
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args(argv)
    sources = args.sources or (TOY_SOURCES if args.dataset == "toy" else SLAKH_SOURCES)
    if args.joint:
        sources = ["+".join(sources)]
    plan = FitPlan(steps=args.steps, cpu_minutes=args.cpu_minutes, lr=args.lr, warmup_steps=100, eval_every=200,
                   checkpoint_every=200, patience=10, min_delta=1e-4, weight_decay=0.0)
    for source in sources:
        out = Path(args.out_dir) / default_out(args.dataset, source).name if args.out_dir else default_out(args.dataset, source)
        refuse_committed_path(out, args.profile)
        config = ScoreTrainConfig.for_profile(args.profile).replace(dataset=args.dataset, source=source)
        model_config = ScorePriorConfig.for_profile(args.profile)
        if args.channels:
            model_config = model_config.replace(channels=args.channels)
        if args.max_dilation:
            model_config = model_config.replace(max_dilation=args.max_dilation)
        init = None
        if args.warm_start and out.exists() and not out.with_name(out.name + ".state.pt").exists():
            from sepcore.checkpoints import load_model

            init = load_model(out, expect={"source": source}, expect_class=ScorePrior).state_dict()
        result = train_score_prior(config, plan, out, data_root=args.data_root, model_config=model_config,
                                   init_from=init)
        print(f"{out}: {result.steps_done} steps, best validation DSM loss {result.best_val:.5f} at step "
              f"{result.best_step}, {result.cpu_seconds:.0f} CPU-s ({result.stopped_by})", flush=True)


if __name__ == "__main__":
    main()
