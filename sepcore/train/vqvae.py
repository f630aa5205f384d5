"""Train a VQ-VAE or LQ-VAE (paper 003 Eq. 1, 7) on single-class audio crops.

    python -m sepcore.train.vqvae --lin-weight 1.0 --cpu-minutes 30 --out checkpoints/latents/lqvae.pt
    torchrun --nproc_per_node 2 -m sepcore.train.vqvae --profile full --steps 200000 --out ...   (data-parallel)

:func:`fit_vqvae` trains through :func:`sepcore.train.fit.fit`, in one process or under
``torchrun``: a step or CPU budget planned up front with a cosine learning rate, the objective of
fixed validation pairs every ``eval_every`` steps, a plateau stop, the best weights written as
the run goes on, and the learning curve in ``tables/training/<out stem>.csv``. Under
``torchrun`` each rank draws its own batches and DistributedDataParallel averages the gradients.

Each batch holds ``batch_size`` crops: its first half from one class and its second half from
another (drawn at random per pair), so the L_lin pairs ``(x1, x2)`` of
:meth:`VQVAE.losses` are two different instruments, and the optional mixture reconstruction
sees their mix (:func:`sepcore.mixing.mix`). Resumable: ``<out>.state.pt`` is written every
``checkpoint_every`` steps and picked up by a re-run with the same ``--out``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch

from sepcore.checkpoints import save_checkpoint
from sepcore.models.vqvae import VQVAE, VQVAEConfig
from sepcore.paths import training_tables
from sepcore.profiles import ProfileConfig
from sepcore.train import distributed as ddp
from sepcore.train.fit import FitPlan, fit
from sepcore.train.stems import stem_source
from sepcore.utils import seed_everything


@dataclass
class VQVAETrainConfig(ProfileConfig):
    profile: str = "default"            # model and data profile
    classes: tuple = ("drums", "bass", "guitar")
    steps: int = 3000
    batch_size: int = 8
    segment_length: int = 8192
    lr: float = 1e-3
    lin_weight: float = 0.0
    seed: int = 0
    checkpoint_every: int = 250
    synthetic: bool = False

    @classmethod
    def quick(cls):
        return cls(profile="quick", steps=150, batch_size=8, segment_length=4096, classes=("drums", "bass"))

    @classmethod
    def full(cls):
        return cls(profile="full", steps=200000, batch_size=32, segment_length=32768, lr=3e-4)


class _Objective(torch.nn.Module):
    """Makes ``VQVAE.losses`` the ``forward`` so DistributedDataParallel can wrap it."""

    def __init__(self, model: VQVAE):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.losses(x)


def draw_batch(sources: dict, batch_size: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """(batch_size, length): halves from two different random classes, paired row by row."""
    names = list(sources)
    half = batch_size // 2
    first, second = [], []
    for _ in range(half):
        a, b = torch.randperm(len(names), generator=generator)[:2].tolist() if len(names) > 1 else (0, 0)
        first.append(sources[names[a]].random_crops(1, length, generator))
        second.append(sources[names[b]].random_crops(1, length, generator))
    return torch.cat(first + second)


def _named_config(config: VQVAETrainConfig, model_config: VQVAEConfig | None) -> VQVAEConfig:
    model_config = (model_config or VQVAEConfig.for_profile(config.profile)).replace(lin_weight=config.lin_weight)
    return model_config.replace(name="lqvae" if config.lin_weight else "vqvae")


def validation_pairs(sources: dict, n_pairs: int, length: int, seed: int) -> torch.Tensor:
    """``(2 * n_pairs, length)`` fixed crops: row ``i`` and row ``n_pairs + i`` are a pair of two
    classes, every ordered pair of classes in turn (the layout :meth:`VQVAE.losses` expects)."""
    names = list(sources)
    generator = torch.Generator().manual_seed(seed)
    pairs = [(a, b) for a in names for b in names if a != b] or [(names[0], names[0])]
    first, second = [], []
    for i in range(n_pairs):
        a, b = pairs[i % len(pairs)]
        first.append(sources[a].random_crops(1, length, generator))
        second.append(sources[b].random_crops(1, length, generator))
    return torch.cat(first + second)


@torch.no_grad()
def validation_losses(model: VQVAE, pairs: torch.Tensor, batch_pairs: int = 8) -> dict[str, float]:
    """Mean ``total, rec, commit, lin`` of :meth:`VQVAE.losses` over the fixed pairs, in batches of pairs
    (in eval mode: the EMA codebook is not updated by validation)."""
    model.eval()
    n = pairs.shape[0] // 2
    sums: dict[str, float] = {}
    for i in range(0, n, batch_pairs):
        j = min(n, i + batch_pairs)
        out = model.losses(torch.cat([pairs[i:j], pairs[n + i:n + j]]))
        for key in ("total", "rec", "commit", "lin"):
            sums[key] = sums.get(key, 0.0) + float(out[key]) * (j - i)
    return {k: v / n for k, v in sums.items()}


def fit_vqvae(config: VQVAETrainConfig, plan: FitPlan, out, *, model_config: VQVAEConfig | None = None,
              data_root=None, val_pairs: int = 48, device: str = "cpu", sources: dict | None = None,
              val_sources: dict | None = None, log=print):
    """Train (or resume) a VQ-VAE / LQ-VAE under ``plan``; writes ``out`` as it goes (rank 0 under ``torchrun``).

    Validation: the training objective (Eq. 1, plus ``lin_weight`` x Eq. 8) on ``val_pairs``
    fixed pairs of validation-split crops of two different classes; the checkpoint keeps the
    best weights and records their reconstruction and L_lin terms. ``sources`` / ``val_sources``
    (class -> object with ``random_crops``) replace the dataset's stems. Returns ``(model, FitResult)``.
    """
    rank, _, device = ddp.setup(device)
    seed_everything(config.seed)                                  # identical initial weights on every rank
    model_config = _named_config(config, model_config)
    model = VQVAE(model_config).to(device)
    objective = ddp.wrap(_Objective(model), device)               # the model itself in one process
    train = sources or {c: stem_source(c, profile=config.profile, data_root=data_root, synthetic=config.synthetic)
                        for c in config.classes}
    val_sources = val_sources or {c: stem_source(c, split="validation", profile=config.profile, data_root=data_root,
                                                 synthetic=config.synthetic) for c in config.classes}
    segment = config.segment_length - config.segment_length % model_config.hop
    val = validation_pairs(val_sources, val_pairs, segment, config.seed + 1).to(device)
    generator = torch.Generator().manual_seed(config.seed + 1000 * rank)      # each rank its own batches
    data = getattr(next(iter(train.values())), "data", "custom")

    def loss_fn(step):
        return objective(draw_batch(train, config.batch_size, segment, generator).to(device))["total"]

    def val_fn():
        return validation_losses(model, val)["total"]

    out = Path(out)
    train_config = {k: v for k, v in config.to_dict().items() if k not in ("steps", "checkpoint_every")}
    run_config = {"train": train_config, "model": model_config.to_dict(), "data": data, "val_pairs": val_pairs}

    def on_checkpoint(best, info):
        losses = validation_losses(best, val) if "stopped_by" in info else {}
        save_checkpoint(out, best, metadata={"data": data, "train_config": train_config, "plan": plan.__dict__,
                                             "steps_done": info["step"], "val_objective": round(info["best_val"], 6),
                                             **{f"val_{k}": round(v, 6) for k, v in losses.items()}, **info})

    result = fit(model, loss_fn, val_fn, plan, state_path=out.with_name(out.name + ".state.pt"), config=run_config,
                 curve_path=training_tables(config.profile) / f"{out.stem}.csv", name=f"{model_config.name} {out.stem}",
                 on_checkpoint=on_checkpoint, log=log)
    return model.eval(), result




def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default", choices=("quick", "default", "full"))
    parser.add_argument("--out", required=True, help="checkpoint path, e.g. checkpoints/latents/lqvae.pt")
    parser.add_argument("--lin-weight", type=float, default=None, help="L_lin weight; 0 trains a plain VQ-VAE")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--classes", nargs="+", default=None)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--synthetic", action="store_true", help="train on the procedural stand-in audio")
    parser.add_argument("--cpu-minutes", type=float, default=None,
                        help="plan the step count for this much CPU time (at most --steps)")
    parser.add_argument("--lr", type=float, default=None)
    args = parser.parse_args(argv)
    from sepcore.train.safe_paths import refuse_committed_path

    refuse_committed_path(args.out, args.profile)
    overrides = {k: v for k, v in {"lin_weight": args.lin_weight, "steps": args.steps,
                                   "classes": tuple(args.classes) if args.classes else None,
                                   "synthetic": args.synthetic or None}.items() if v is not None}
    config = VQVAETrainConfig.for_profile(args.profile, **overrides)
    plan = FitPlan(steps=args.steps or (50000 if args.cpu_minutes else config.steps), cpu_minutes=args.cpu_minutes,
                   lr=args.lr or config.lr, warmup_steps=100, eval_every=250, checkpoint_every=250, patience=10,
                   min_delta=1e-5, weight_decay=0.0)
    _, result = fit_vqvae(config, plan, args.out, data_root=args.data_root, device=args.device)
    if ddp.rank_and_world()[0] == 0:
        print(f"{args.out}: {result.steps_done} steps, best validation objective {result.best_val:.6f} at step "
              f"{result.best_step}, {result.cpu_seconds:.0f} CPU-s ({result.stopped_by})")
    ddp.teardown()


if __name__ == "__main__":
    main()
