"""Train a VQ-VAE or LQ-VAE (paper 003 Eq. 1, 7) on single-class audio crops.

    python -m sepcore.train.vqvae --profile default --lin-weight 1.0 --out checkpoints/latents/lqvae.pt
    torchrun --nproc_per_node 2 -m sepcore.train.vqvae --profile full --out ...   (DDP, unchanged)

Each batch holds ``batch_size`` crops: its first half from one class and its second half from
another (drawn at random per pair), so the L_lin pairs ``(x1, x2)`` of
:meth:`VQVAE.losses` are two different instruments, and the optional mixture reconstruction
sees their mix (:func:`sepcore.mixing.mix`). Resumable: ``<out>.state.pt`` is written every
``checkpoint_every`` steps and picked up by a re-run with the same ``--out``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import torch

from sepcore.checkpoints import save_checkpoint
from sepcore.models.vqvae import VQVAE, VQVAEConfig
from sepcore.profiles import ProfileConfig
from sepcore.train import distributed as ddp
from sepcore.train.budget import cpu_clock
from sepcore.train.resume import flatten_config
from sepcore.train.stems import stem_source
from sepcore.utils import progress, quiet, seed_everything


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


def train_vqvae(config: VQVAETrainConfig, out, *, model_config: VQVAEConfig | None = None, data_root=None,
                device: str = "auto", sources: dict | None = None, max_seconds: float | None = None) -> VQVAE:
    """Train (or resume) and save the checkpoint at ``out`` (rank 0). Returns the trained model."""
    rank, world, dev = ddp.setup(device)
    seed_everything(config.seed)                                  # identical initial weights on all ranks
    model_config = (model_config or VQVAEConfig.for_profile(config.profile)).replace(lin_weight=config.lin_weight)
    if not config.lin_weight:
        model_config = model_config.replace(name="vqvae")
    else:
        model_config = model_config.replace(name="lqvae")
    model = VQVAE(model_config).to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    run_config = flatten_config({"train": {k: v for k, v in config.to_dict().items() if k != "steps"},  # the budget may grow
                                 "model": model_config.to_dict()})
    start, _ = ddp.load_state(out, model, optimizer, config=run_config, log=print if rank == 0 else (lambda *_: None))
    objective = ddp.wrap(_Objective(model), dev)
    if sources is None:
        sources = {c: stem_source(c, profile=config.profile, data_root=data_root, synthetic=config.synthetic)
                   for c in config.classes}
    data_label = next(iter(sources.values())).__dict__.get("data", "custom")
    generator = torch.Generator().manual_seed(config.seed * 1000 + rank + 7919 * start)
    segment = config.segment_length - config.segment_length % model_config.hop
    bar = progress(range(start, config.steps), desc=f"train {model_config.name}", disable=(rank != 0) or quiet())
    started, wall_started, steps_done = cpu_clock(), time.time(), start
    stats = {}
    for step in bar:
        x = draw_batch(sources, config.batch_size, segment, generator).to(dev)
        model.train()
        out_losses = objective(x)
        optimizer.zero_grad(set_to_none=True)
        out_losses["total"].backward()
        optimizer.step()
        stats = {k: float(v.detach()) for k, v in out_losses.items() if k != "codes"}
        if rank == 0 and hasattr(bar, "set_postfix"):
            bar.set_postfix(rec=f"{stats['rec']:.4f}", lin=f"{stats['lin']:.4f}")
        done = steps_done = step + 1
        if ddp.after_step(out, model, optimizer, done, total=config.steps, every=config.checkpoint_every,
                          rank=rank, started=started, max_seconds=max_seconds, config=run_config):
            break
    if rank == 0:
        save_checkpoint(out, model, metadata={"train_config": config.to_dict(), "data": data_label,
                                              "final_losses": stats, "world_size": world, "steps_done": steps_done,
                                              "wall_time_s": round(time.time() - wall_started, 1), "cpu_seconds": round(cpu_clock() - started, 1)})
    ddp.barrier()
    return model.eval()


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
    parser.add_argument("--max-minutes", type=float, default=None, help="stop (and save) after this wall time")
    args = parser.parse_args(argv)
    from sepcore.train.safe_paths import refuse_committed_path

    refuse_committed_path(args.out, args.profile)
    overrides = {k: v for k, v in {"lin_weight": args.lin_weight, "steps": args.steps,
                                   "classes": tuple(args.classes) if args.classes else None,
                                   "synthetic": args.synthetic or None}.items() if v is not None}
    config = VQVAETrainConfig.for_profile(args.profile, **overrides)
    train_vqvae(config, args.out, data_root=args.data_root, device=args.device,
                max_seconds=None if args.max_minutes is None else 60 * args.max_minutes)
    ddp.teardown()


if __name__ == "__main__":
    main()
