"""Train one noise-conditioned flow prior per source (paper 002; Jayaram & Thickstun 2020).

Each step draws random crops of one source class, a noise level per crop, and minimises the
negative log-likelihood of ``x + sigma * eps`` under the flow conditioned on ``sigma`` (paper 002,
Eq. 7; nats per sample). A fraction ``p_clean`` of the crops get ``sigma = 0``, so the same network
is the clean prior; the others draw ``log sigma ~ U[log sigma_min, log sigma_max]``, covering every
level of a geometric Langevin schedule between those bounds.

    OMP_NUM_THREADS=1 nice -n 10 python -m sepcore.train.flow --profile default --dataset toy --source sine
    python -m sepcore.train.flow --profile default --dataset slakh --source bass --data-root data

The checkpoint (``checkpoints/flows/<dataset>_<source>.pt`` by default) stores the config, the
weights, the training config and the loss curve (``metadata["history"]``).
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sepcore.checkpoints import save_checkpoint
from sepcore.models.flow import FlowConfig, FlowPrior
from sepcore.paths import data_root as default_data_root
from sepcore.profiles import ProfileConfig
from sepcore.train.budget import budget_step, cpu_clock
from sepcore.train.resume import LoopState, flatten_config
from sepcore.train.safe_paths import refuse_committed_path
from sepcore.utils import REPO_ROOT, progress, resolve_device, seed_everything


@dataclass
class FlowTrainConfig(ProfileConfig):
    """Optimisation settings (the reference: Adam, lr 1e-4 with step decay, 16384-sample crops;
    ours use shorter crops and a larger learning rate to fit a CPU budget)."""

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


def crop_sampler(dataset: str, source: str, data_root: str | None = None, profile: str = "default"):
    """A function ``(n, length, generator) -> (n, length)`` of training crops."""
    if dataset == "toy":
        return lambda n, length, generator: toy_crops(source, n, length, generator)
    if dataset == "slakh":
        try:
            from sepcore.data.render import ensure_dataset
            from sepcore.data.slakh import SlakhStems
        except ImportError as error:
            raise ImportError("dataset='slakh' needs sepcore.data.slakh and sepcore.data.render (branch `data`)") from error
        root = ensure_dataset(profile, data_root or default_data_root())
        stems = SlakhStems(root, source, split="train")
        return lambda n, length, generator: stems.random_crops(n, length, generator)
    raise ValueError(f"dataset must be 'toy' or 'slakh', got {dataset!r}")


def draw_sigma(n: int, config: FlowTrainConfig, generator: torch.Generator) -> torch.Tensor:
    """``(n,)`` noise levels: 0 with probability ``p_clean``, else log-uniform in [sigma_min, sigma_max]."""
    u = torch.rand(n, generator=generator)
    log_sigma = math.log(config.sigma_min) + u * (math.log(config.sigma_max) - math.log(config.sigma_min))
    clean = torch.rand(n, generator=generator) < config.p_clean
    return torch.where(clean, torch.zeros(n), log_sigma.exp())


def train_flow(
    sample_crops,
    flow_config: FlowConfig,
    train_config: FlowTrainConfig,
    *,
    seed: int = 0,
    device: str = "auto",
    desc: str = "train flow",
    state_path=None,
) -> tuple[FlowPrior, list[dict]]:
    """Train a flow prior; returns the model (eval mode, on CPU) and the loss history.

    Args:
        sample_crops: ``(n, length, generator) -> (n, length)`` clean training audio.

    History rows: ``{"step", "seconds", "nll", "nll_clean", "nll_noisy"}`` in nats per sample.
    """
    generator = seed_everything(seed)
    device = resolve_device(device)
    model = FlowPrior(flow_config).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=train_config.lr)
    state = None if state_path is None else LoopState(state_path, flatten_config(
        {"flow": flow_config.to_dict(), "train": train_config.to_dict(), "seed": seed}))
    start, history, spent = (0, [], 0.0) if state is None else state.load(model, optimiser, generator)
    started, window = cpu_clock() - spent, []
    bar = progress(range(start, train_config.steps), desc=desc)
    for step in bar:
        x = sample_crops(train_config.batch_size, train_config.segment_length, generator).to(device)
        sigma = draw_sigma(x.shape[0], train_config, generator).to(device)
        noisy = x + sigma[:, None] * torch.randn(x.shape, generator=generator).to(device)
        nll = -model.log_prob(noisy, sigma) / x.shape[-1]                  # (B,) nats per sample
        loss = nll.mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{desc}: non-finite loss at step {step}; lower --lr or raise sigma_min")
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train_config.grad_clip)
        optimiser.step()
        elapsed, last = budget_step(optimiser, step, started, steps=train_config.steps, max_minutes=train_config.max_minutes,
                                    lr=train_config.lr, lr_final=train_config.lr_final)
        window.append((nll.detach().cpu(), (sigma == 0).cpu()))
        if (step + 1) % train_config.log_every == 0 or last:
            values = torch.cat([w[0] for w in window])
            clean = torch.cat([w[1] for w in window])
            history.append({
                "step": step + 1, "seconds": elapsed, "nll": float(values.mean()),
                "nll_clean": float(values[clean].mean()) if clean.any() else float("nan"),
                "nll_noisy": float(values[~clean].mean()) if (~clean).any() else float("nan"),
            })
            bar.set_postfix(nll=f"{history[-1]['nll']:.3f}")
            window = []
            if state is not None:
                state.save(model, optimiser, generator, step + 1, history, cpu_clock() - started)
        if last:
            break
    return model.cpu().eval(), history


def fit_flow(dataset: str, source: str, plan, out, *, profile: str = "default", data_root=None, seed: int = 0,
             val_crops: int = 32, log=print, conditioned_actnorm: bool = False):
    """Train (or resume) one flow prior with :func:`sepcore.train.fit.fit`: a CPU-time (or step)
    budget, a validation NLL every ``plan.eval_every`` steps on fixed crops of the validation split (a
    quarter clean, the rest at three fixed levels log-spaced in ``[sigma_min, sigma_max]``, fixed
    noise), a plateau stop, resumable state and a learning curve
    ``tables/training/flow_<checkpoint name>.csv`` (quick: under ``_build``).
    ``conditioned_actnorm``: the ablation with noise-conditioned ActNorm (:class:`sepcore.models.flow.ActNorm`).

    The checkpoint's ``metadata["history"]`` has one row per evaluation: ``step``, ``seconds`` (CPU),
    ``nll`` (training loss since the previous evaluation) and ``val_nll``, in nats per sample; the
    last row adds the best model's validation ``nll_clean`` and ``nll_noisy``. Returns the
    :class:`~sepcore.train.fit.FitResult`.
    """
    import pandas as pd

    from sepcore.train.fit import fit
    from sepcore.train.prior_fit import training_tables
    from sepcore.train.score_prior import crop_source

    seed_everything(seed)
    out = Path(out)
    sample_rate = 14700 if dataset == "toy" else 22050
    flow_config = FlowConfig.for_profile(profile, source=source, sample_rate=sample_rate,
                                         conditioned_actnorm=conditioned_actnorm)
    train_config = FlowTrainConfig.for_profile(profile)
    model = FlowPrior(flow_config)
    train = crop_source(dataset, source, "train", profile, data_root)
    length = train_config.segment_length
    val_generator = torch.Generator().manual_seed(seed + 1)
    val_clean = crop_source(dataset, source, "validation", profile, data_root)(val_crops, length, val_generator)
    levels = torch.logspace(math.log10(train_config.sigma_min), math.log10(train_config.sigma_max), 3)
    n_clean = max(1, val_crops // 4)
    val_sigma = torch.cat([torch.zeros(n_clean), levels[torch.arange(val_crops - n_clean) % len(levels)]])
    val_noisy = val_clean + val_sigma[:, None] * torch.randn(val_clean.shape, generator=val_generator)
    curve_path = training_tables(profile) / f"flow_{out.stem}.csv"
    generator = torch.Generator().manual_seed(seed)

    def loss_fn(step):
        x = train(train_config.batch_size, length, generator)
        sigma = draw_sigma(x.shape[0], train_config, generator)
        noisy = x + sigma[:, None] * torch.randn(x.shape, generator=generator)
        return (-model.log_prob(noisy, sigma) / length).mean()

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
            "wall_seconds": info["cpu_seconds"], "steps_done": info["step"], "plan": plan.__dict__,
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
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument("--cpu-minutes", type=float, default=None,
                        help="train with the CPU-budgeted, validated loop (sepcore.train.fit) for this many CPU minutes")
    parser.add_argument("--conditioned-actnorm", action="store_true",
                        help="ablation: noise-conditioned ActNorm (default out checkpoints/flows/ablation/<dataset>_<source>_actnorm.pt)")
    args = parser.parse_args(argv)

    if args.cpu_minutes is not None:
        from sepcore.train.fit import FitPlan

        folder = REPO_ROOT / "checkpoints" if args.profile == "default" else REPO_ROOT / "_build" / args.profile / "checkpoints"
        name = f"{args.dataset}_{args.source}" + ("_actnorm" if args.conditioned_actnorm else "")
        out = Path(args.out or folder / "flows" / ("ablation" if args.conditioned_actnorm else "") / f"{name}.pt")
        refuse_committed_path(out, args.profile)
        plan = FitPlan(steps=args.steps or 100000, cpu_minutes=args.cpu_minutes, lr=FlowTrainConfig.for_profile(args.profile).lr,
                       warmup_steps=100, eval_every=200, checkpoint_every=200, patience=10, min_delta=1e-3, weight_decay=0.0)
        result = fit_flow(args.dataset, args.source, plan, out, profile=args.profile, data_root=args.data_root, seed=args.seed,
                          conditioned_actnorm=args.conditioned_actnorm)
        print(f"{out}: {result.steps_done} steps, best validation NLL {result.best_val:.4f} nats/sample at step "
              f"{result.best_step}, {result.cpu_seconds:.0f} CPU-s ({result.stopped_by})")
        return 0
    sample_rate = 14700 if args.dataset == "toy" else 22050
    flow_config = FlowConfig.for_profile(args.profile, source=args.source, sample_rate=sample_rate)
    overrides = {k: v for k, v in (("steps", args.steps), ("max_minutes", args.max_minutes)) if v is not None}
    train_config = FlowTrainConfig.for_profile(args.profile, **overrides)
    sampler = crop_sampler(args.dataset, args.source, args.data_root, args.profile)
    folder = REPO_ROOT / "checkpoints" if args.profile == "default" else REPO_ROOT / "_build" / args.profile / "checkpoints"
    out = Path(args.out or folder / "flows" / f"{args.dataset}_{args.source}.pt")
    refuse_committed_path(out, args.profile)
    started = time.perf_counter()
    model, history = train_flow(sampler, flow_config, train_config, seed=args.seed, device=args.device,
                                desc=f"{args.dataset}/{args.source}", state_path=out.with_name(out.name + ".state.pt"))
    wall = time.perf_counter() - started
    save_checkpoint(out, model, metadata={
        "dataset": args.dataset, "train_config": train_config.to_dict(), "history": history,
        "wall_seconds": wall, "steps_done": history[-1]["step"] if history else 0, "seed": args.seed,
    })
    print(f"saved {out} ({out.stat().st_size / 1e6:.2f} MB) after {history[-1]['step']} steps, "
          f"{wall / 60:.1f} min; final nll {history[-1]['nll']:.3f} nats/sample")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
