"""Train one noise-conditioned flow prior per source (paper 002; Jayaram & Thickstun 2020).

Each step draws random crops of one source class, a noise level per crop, and minimises the
negative log-likelihood of ``x + sigma * eps`` under the flow conditioned on ``sigma`` (paper 002,
Eq. 7; nats per sample). A fraction ``p_clean`` of the crops get ``sigma = 0``, so the same network
is the clean prior; the others draw ``log sigma ~ U[log sigma_min, log sigma_max]``, covering every
level of a geometric Langevin schedule between those bounds.

    OMP_NUM_THREADS=1 python -m sepcore.train.flow --profile default --dataset toy --source sine --cpu-minutes 8
    python -m sepcore.train.flow --profile default --dataset slakh --source bass --data-root data --cpu-minutes 35

Training goes through the package's one loop, :func:`sepcore.train.fit.fit` (:func:`fit_flow`):
a planned budget, validation NLL, a plateau stop, resumable state, a learning curve. The
checkpoint (``checkpoints/flows/<dataset>_<source>.pt`` by default) stores the config, the
best-validation weights, the training config and the curve (``metadata["history"]``).
:func:`train_on_the_fly` is the ``quick`` / ``full`` path of :func:`sepcore.pretrained.get_flow_priors`.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sepcore.checkpoints import save_checkpoint
from sepcore.models.flow import FlowConfig, FlowPrior
from sepcore.profiles import ProfileConfig
from sepcore.train.fit import FitPlan
from sepcore.train.safe_paths import refuse_committed_path
from sepcore.utils import resolve_device, seed_everything


@dataclass
class FlowTrainConfig(ProfileConfig):
    """Optimisation settings (the reference: Adam, lr 1e-4 with step decay, 16384-sample crops;
    ours use shorter crops and a larger learning rate to fit a CPU budget). ``steps`` is the budget of
    a run without ``--cpu-minutes``; ``lr_final``, ``max_minutes`` and ``log_every`` were the settings
    of the loop that trained the Slakh-format flows before :func:`sepcore.train.fit.fit` (kept so
    that their checkpoints' metadata still reads)."""

    steps: int = 3000
    batch_size: int = 8
    segment_length: int = 2048
    lr: float = 2e-3
    lr_final: float = 1e-4
    grad_clip: float = 1.0
    p_clean: float = 0.25
    sigma_min: float = 0.01
    sigma_max: float = 1.0
    max_minutes: float = 25.0          # CPU minutes (sepcore.train.budget)
    log_every: int = 25

    @classmethod
    def quick(cls):
        return cls(steps=40, batch_size=8, segment_length=1024, lr=3e-3, max_minutes=1.0, log_every=5)


def toy_crops(source: str, n: int, length: int, generator: torch.Generator, config=None, split: str = "train") -> torch.Tensor:
    """``(n, length)`` random crops of one toy class from random items of ``split``."""
    from sepcore.data.toy import ToyConfig, ToyDataset, waveform

    dataset = ToyDataset(config or ToyConfig(), split)
    if source not in dataset.classes:
        raise ValueError(f"unknown toy source {source!r}; choose from {dataset.classes}")
    k = dataset.classes.index(source)
    cfg = dataset.config
    indices = torch.randint(len(dataset), (n,), generator=generator).tolist()
    offsets = torch.randint(cfg.length - length + 1, (n,), generator=generator).tolist()
    crops = []
    for index, offset in zip(indices, offsets):
        p = dataset.parameters(index)
        phase = (p["phase"][k] + p["frequency"][k] * offset / cfg.sample_rate) % 1.0
        crops.append(waveform(source, p["frequency"][k], phase, p["amplitude"][k], length, cfg.sample_rate))
    return torch.from_numpy(np.stack(crops))


def draw_sigma(n: int, config: FlowTrainConfig, generator: torch.Generator) -> torch.Tensor:
    """``(n,)`` noise levels: 0 with probability ``p_clean``, else log-uniform in [sigma_min, sigma_max]."""
    u = torch.rand(n, generator=generator)
    log_sigma = math.log(config.sigma_min) + u * (math.log(config.sigma_max) - math.log(config.sigma_min))
    clean = torch.rand(n, generator=generator) < config.p_clean
    return torch.where(clean, torch.zeros(n), log_sigma.exp())


def flow_plan(train_config: FlowTrainConfig, *, steps: int | None = None, cpu_minutes: float | None = None) -> FitPlan:
    """The :class:`~sepcore.train.fit.FitPlan` of a flow run: ``steps`` (default ``train_config.steps``;
    an upper bound with ``cpu_minutes``), the config's learning rate, no weight decay, a warm-up of
    ``min(100, steps / 10)`` steps, validation and a checkpoint every ``min(200, steps / 4)`` steps,
    and a plateau after 10 evaluations without a gain of 1e-3 nats per sample."""
    steps = steps or train_config.steps
    every = min(200, max(1, steps // 4))
    return FitPlan(steps=steps, cpu_minutes=cpu_minutes, lr=train_config.lr, warmup_steps=min(100, max(1, steps // 10)),
                   eval_every=every, checkpoint_every=every, patience=10, min_delta=1e-3, weight_decay=0.0,
                   grad_clip=train_config.grad_clip)


def train_on_the_fly(dataset: str, source: str, profile: str, *, seed: int = 0, data_root=None, log=print,
                     device="auto") -> Path:
    """A flow of ``profile``'s sizes trained by :func:`fit_flow` for its ``FlowTrainConfig.steps``
    into ``_build/<profile>/checkpoints/flows/<dataset>_<source>.pt`` (curve beside it); returns the
    path. A finished run there with the same config is reused; one with another config is started over."""
    from sepcore.paths import BUILD, flow_prior_path
    from sepcore.train.fit import restart_on_mismatch

    out = flow_prior_path(dataset, source, BUILD / profile / "checkpoints")
    plan = flow_plan(FlowTrainConfig.for_profile(profile))
    restart_on_mismatch(lambda: fit_flow(dataset, source, plan, out, profile=profile, data_root=data_root, seed=seed,
                                         log=log, curve_path=out.with_suffix(".csv"), device=device),
                        out.with_name(out.name + ".state.pt"), log=log)
    return out


def fit_flow(dataset: str, source: str, plan, out, *, profile: str = "default", data_root=None, seed: int = 0,
             val_crops: int = 32, log=print, conditioned_actnorm: bool = False, curve_path=None, device="cpu"):
    """Train (or resume) one flow prior with :func:`sepcore.train.fit.fit`: a CPU-time (or step)
    budget, a validation NLL every ``plan.eval_every`` steps on fixed crops of the validation split (a
    quarter clean, the rest at three fixed levels log-spaced in ``[sigma_min, sigma_max]``, fixed
    noise), a plateau stop, resumable state and a learning curve (``curve_path``, by default
    ``tables/training/flow_<checkpoint name>.csv``; quick: under ``_build``).
    ``conditioned_actnorm``: the ablation with noise-conditioned ActNorm (:class:`sepcore.models.flow.ActNorm`).

    The checkpoint's ``metadata["history"]`` has one row per evaluation: ``step``, ``seconds`` (CPU),
    ``nll`` (training loss since the previous evaluation) and ``val_nll``, in nats per sample; the
    last row adds the best model's validation ``nll_clean`` and ``nll_noisy``. Returns the
    :class:`~sepcore.train.fit.FitResult`.
    """
    import pandas as pd

    from sepcore.paths import training_tables
    from sepcore.train.fit import fit
    from sepcore.train.score_prior import crop_source

    seed_everything(seed)
    out = Path(out)
    sample_rate = 14700 if dataset == "toy" else 22050
    flow_config = FlowConfig.for_profile(profile, source=source, sample_rate=sample_rate,
                                         conditioned_actnorm=conditioned_actnorm)
    train_config = FlowTrainConfig.for_profile(profile)
    device = resolve_device(device)
    model = FlowPrior(flow_config).to(device)
    train = crop_source(dataset, source, "train", profile, data_root)
    length = train_config.segment_length
    val_generator = torch.Generator().manual_seed(seed + 1)
    val_clean = crop_source(dataset, source, "validation", profile, data_root)(val_crops, length, val_generator)
    levels = torch.logspace(math.log10(train_config.sigma_min), math.log10(train_config.sigma_max), 3)
    n_clean = max(1, val_crops // 4)
    val_sigma = torch.cat([torch.zeros(n_clean), levels[torch.arange(val_crops - n_clean) % len(levels)]])
    val_noisy = (val_clean + val_sigma[:, None] * torch.randn(val_clean.shape, generator=val_generator)).to(device)
    val_sigma = val_sigma.to(device)
    curve_path = Path(curve_path or training_tables(profile) / f"flow_{out.stem}.csv")
    generator = torch.Generator().manual_seed(seed)

    def loss_fn(step):
        x = train(train_config.batch_size, length, generator)
        sigma = draw_sigma(x.shape[0], train_config, generator)
        noisy = x + sigma[:, None] * torch.randn(x.shape, generator=generator)
        return (-model.log_prob(noisy.to(device), sigma.to(device)) / length).mean()

    def val_nll(net) -> torch.Tensor:
        return -net.log_prob(val_noisy, val_sigma) / length                     # (val_crops,)

    def val_fn():
        return float(val_nll(model).mean())

    data = f"{dataset} {source}, {profile} profile, crops of {length} samples"
    run_config = {"flow": flow_config.to_dict(), "train": train_config.to_dict(), "seed": seed, "data": data,
                  "val_crops": val_crops}

    def on_checkpoint(best, info):
        curve = pd.read_csv(curve_path).to_dict("records") if curve_path.exists() else []
        history = [{"step": int(r["step"]), "seconds": r["cpu_s"], "nll": r["train_loss"], "val_nll": r["val_loss"]}
                   for r in curve]
        with torch.no_grad():
            nll = val_nll(best)
        if history:
            history[-1] |= {"nll_clean": float(nll[val_sigma == 0].mean()), "nll_noisy": float(nll[val_sigma > 0].mean())}
        save_checkpoint(out, best, metadata={
            "dataset": dataset, "train_config": train_config.to_dict(), "history": history, "seed": seed,
            "steps_done": info["step"], "plan": plan.__dict__,
            "val_nll": round(info["best_val"], 5), "data": data, **info})

    return fit(model, loss_fn, val_fn, plan, state_path=out.with_name(out.name + ".state.pt"), config=run_config,
               curve_path=curve_path, name=f"flow {dataset}/{source}", on_checkpoint=on_checkpoint, log=log)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="default", choices=("quick", "default", "full"))
    parser.add_argument("--dataset", default="toy", choices=("toy", "slakh"))
    parser.add_argument("--source", required=True)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", default=None, help="checkpoint path (default checkpoints/flows/<dataset>_<source>.pt)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None,
                        help="step budget (default: the profile's; an upper bound with --cpu-minutes)")
    parser.add_argument("--cpu-minutes", type=float, default=None,
                        help="CPU budget: the step count is planned from the speed of the first 30 steps")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (the committed flows trained on CPU)")
    parser.add_argument("--conditioned-actnorm", action="store_true",
                        help="ablation: noise-conditioned ActNorm (default out checkpoints/flows/ablation/<dataset>_<source>_actnorm.pt)")
    args = parser.parse_args(argv)

    from sepcore.paths import BUILD, CHECKPOINTS, flow_prior_path

    folder = CHECKPOINTS if args.profile == "default" else BUILD / args.profile / "checkpoints"
    if args.conditioned_actnorm:
        default_out = folder / "flows" / "ablation" / f"{args.dataset}_{args.source}_actnorm.pt"
    else:
        default_out = flow_prior_path(args.dataset, args.source, folder)
    out = Path(args.out or default_out)
    refuse_committed_path(out, args.profile)
    steps = args.steps or (100000 if args.cpu_minutes is not None else None)
    plan = flow_plan(FlowTrainConfig.for_profile(args.profile), steps=steps, cpu_minutes=args.cpu_minutes)
    result = fit_flow(args.dataset, args.source, plan, out, profile=args.profile, data_root=args.data_root, seed=args.seed,
                      conditioned_actnorm=args.conditioned_actnorm, device=args.device)
    print(f"{out}: {result.steps_done} steps, best validation NLL {result.best_val:.4f} nats/sample at step "
          f"{result.best_step}, {result.cpu_seconds:.0f} CPU-s ({result.stopped_by})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
