"""Train the supervised Conv-TasNet upper bound on random mixtures of the embedded stems.

Command line::

    python -m sepcore.train.supervised --profile quick|default [--data-root DIR] [--out PATH]
                                      [--steps N] [--max-minutes M]

Data: for every step, each batch item draws one of the training ``pairs`` uniformly, and an
independent random non-silent crop of each of its two classes from ``SlakhStems(split="train")``
(the stems the generative priors train on; independent crops = the random mixing of paper
003's LQ-VAE training). The mixture is :func:`sepcore.mixing.mix` of the two crops. The loss is
the negative SDR of the pair's two outputs (:func:`sepcore.models.convtasnet.sdr_loss`).

Training goes through :func:`sepcore.train.fit.fit`, like every other family: ``steps`` or
``max_minutes`` of **CPU time** (whichever is first, planned up front with a cosine learning
rate), the same loss on fixed validation chunks of every pair every ``eval_every`` steps, a
plateau stop, the best weights written as the run goes on, ``<out>.state.pt`` for a re-run with
the same ``--out`` to resume ("resuming at step N"), and the curve in
``tables/training/<out stem>.csv``. The final checkpoint adds the museval SDR per (pair, class) on
those validation chunks (:func:`validate`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from sepcore.checkpoints import save_checkpoint
from sepcore.metrics import sdr
from sepcore.mixing import mix
from sepcore.models.convtasnet import ConvTasNet, ConvTasNetConfig, sdr_loss
from sepcore.profiles import PROFILES
from sepcore.train.fit import FitPlan, fit
from sepcore.train.safe_paths import refuse_committed_path
from sepcore.utils import REPO_ROOT, resolve_device, seed_everything


def load_stems(root: Path, config: ConvTasNetConfig, split: str = "train") -> dict:
    from sepcore.data.slakh import SlakhStems

    return {c: SlakhStems(root, c, split=split, sample_rate=config.sample_rate,
                          segment_length=config.segment_length) for c in config.classes}


def make_batch(stems: dict, config: ConvTasNetConfig, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(mixture (B, T), sources (B, 2, T), class_index (B, 2))`` for random training pairs."""
    pair_ids = torch.randint(len(config.pairs), (config.batch_size,), generator=generator)
    sources, index = [], []
    for p in pair_ids.tolist():
        pair = config.pairs[p]
        sources.append(torch.cat([stems[c].random_crops(1, config.segment_length, generator) for c in pair]))
        index.append([config.classes.index(c) for c in pair])
    sources = torch.stack(sources)                                         # (B, 2, T)
    return mix(sources), sources, torch.tensor(index)


def validate(model: ConvTasNet, root: Path, config: ConvTasNetConfig, max_chunks: int = 8) -> dict:
    """Mean SDR per (pair, class) on the validation split's chunks (same chunking as the test)."""
    from sepcore.data.slakh import SlakhMixtures

    device = next(model.parameters()).device
    scores = {}
    model.eval()
    with torch.no_grad():
        for pair in config.pairs:
            data = SlakhMixtures(root, classes=pair, split="validation", sample_rate=config.sample_rate, max_chunks=max_chunks)
            values = []
            for i in range(len(data)):
                item = data[i]
                out = model(item["mixture"][None].to(device))[0, [config.classes.index(c) for c in pair]].cpu()
                values.append(sdr(item["sources"], out, config.sample_rate).numpy())
            if values:
                mean = np.nanmean(np.stack(values), 0)
                scores.update({f"{pair[0]}/{pair[1]}:{c}": float(mean[k]) for k, c in enumerate(pair)})
    model.train()
    return scores


def pair_loss(model: ConvTasNet, mixture: torch.Tensor, sources: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Negative SDR of the outputs of each item's two classes: ``mixture (B, T)``, ``sources (B, 2, T)``,
    ``index (B, 2)`` the classes' output rows."""
    estimates = model(mixture)                                              # (B, C, T)
    chosen = torch.gather(estimates, 1, index[..., None].expand(-1, -1, estimates.shape[-1]))
    return sdr_loss(chosen, sources)


def validation_batches(root: Path, config: ConvTasNetConfig, max_chunks: int = 8) -> list[tuple]:
    """Per pair, the validation split's first ``max_chunks`` chunks as one ``(mixture, sources, index)`` batch."""
    from sepcore.data.slakh import SlakhMixtures

    batches = []
    for pair in config.pairs:
        data = SlakhMixtures(root, classes=pair, split="validation", sample_rate=config.sample_rate, max_chunks=max_chunks)
        items = [data[i] for i in range(len(data))]
        if items:
            index = torch.tensor([[config.classes.index(c) for c in pair]] * len(items))
            batches.append((torch.stack([x["mixture"] for x in items]), torch.stack([x["sources"] for x in items]), index))
    return batches


def training_plan(config: ConvTasNetConfig) -> FitPlan:
    """``config.steps`` or ``config.max_minutes`` CPU-minutes; five or more evaluations per run."""
    every = max(1, min(250, config.steps // 5))
    return FitPlan(steps=config.steps, cpu_minutes=config.max_minutes, lr=config.learning_rate,
                   warmup_steps=min(100, config.steps // 10), weight_decay=0.0, grad_clip=5.0,
                   eval_every=every, checkpoint_every=every, patience=8, min_delta=0.01)


def train(config: ConvTasNetConfig, data_root: Path, out: Path, device: str = "auto", log=print, *,
          profile: str = "default", plan: FitPlan | None = None, stems: dict | None = None,
          val_batches: list | None = None) -> tuple[ConvTasNet, dict]:
    """Train (or resume) a model under ``plan`` (default :func:`training_plan`); write the best
    weights to ``out`` as the run goes on; return the model with its checkpoint metadata.
    ``stems`` (class -> object with ``random_crops``) and ``val_batches`` (:func:`validation_batches`)
    replace the dataset's; the final museval SDR is scored only on the dataset's validation split.
    The curve goes to ``tables/training/<out stem>.csv`` of ``profile``."""
    from sepcore.paths import training_tables

    out, device = Path(out), resolve_device(device)
    plan = plan or training_plan(config)
    generator = seed_everything(config.seed)
    model = ConvTasNet(config).to(device)
    stems = stems or load_stems(data_root, config)
    score_validation = val_batches is None
    val_batches = validation_batches(data_root, config) if score_validation else val_batches
    manifest_hash = "+".join(str(getattr(stems[c], "manifest_hash", "custom")) for c in config.classes)

    def loss_fn(step):
        mixture, sources, index = make_batch(stems, config, generator)
        return pair_loss(model, mixture.to(device), sources.to(device), index.to(device))

    def val_fn():
        losses = [float(pair_loss(model, m.to(device), s.to(device), i.to(device))) for m, s, i in val_batches]
        return sum(losses) / max(1, len(losses))

    def on_checkpoint(best, info):
        metadata = {"steps_done": info["step"], "train_seconds": info["wall_seconds"], "cpu_seconds": info["cpu_seconds"],
                    "best_step": info["best_step"], "val_loss": round(info["best_val"], 4), "planned_steps": info["planned_steps"],
                    "plan": plan.__dict__, "data_root": str(data_root), "threads": torch.get_num_threads(),
                    "device": str(device), "finished": "stopped_by" in info}
        if "stopped_by" in info:
            metadata |= {"stopped_by": info["stopped_by"],
                         "validation_sdr": validate(best, data_root, config) if score_validation else {}}
        save_checkpoint(out, best, manifest_hash=manifest_hash, metadata=metadata)
        on_checkpoint.metadata = metadata

    budget = ("steps", "max_minutes")                       # the plan holds the budget
    run_config = {"model": {k: v for k, v in config.to_dict().items() if k not in budget}, "data": manifest_hash,
                  "val_chunks": [tuple(m.shape) for m, _, _ in val_batches]}
    fit(model, loss_fn, val_fn, plan, state_path=out.with_name(out.name + ".state.pt"), config=run_config,
        curve_path=training_tables(profile) / f"{out.stem}.csv",
        name=f"convtasnet {out.stem}", on_checkpoint=on_checkpoint, log=log)
    log(f"saved {out} ({out.stat().st_size / 1e6:.2f} MB): {on_checkpoint.metadata}")
    return model.eval(), on_checkpoint.metadata


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sepcore.train.supervised", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default", choices=PROFILES)
    parser.add_argument("--data-root", default="", help="Slakh2100 copy or where the embedded dataset is rendered")
    parser.add_argument("--out", default="", help="checkpoint path (default checkpoints/supervised/convtasnet.pt; other profiles under _build/<profile>/)")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--max-minutes", type=float, default=None, help="CPU-minute budget")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    from sepcore.book import default_data_root
    from sepcore.data.slakh import resolve_root

    overrides = {k: v for k, v in {"steps": args.steps, "max_minutes": args.max_minutes}.items() if v is not None}
    config = ConvTasNetConfig.for_profile(args.profile, **overrides)
    root = resolve_root(args.profile, args.data_root or default_data_root())
    folder = REPO_ROOT / "checkpoints" if args.profile == "default" else REPO_ROOT / "_build" / args.profile / "checkpoints"
    out = Path(args.out) if args.out else folder / "supervised" / "convtasnet.pt"
    refuse_committed_path(out, args.profile)
    train(config, root, out, args.device, profile=args.profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
