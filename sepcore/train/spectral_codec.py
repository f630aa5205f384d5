"""Train the phase-free spectral codec (:mod:`sepcore.models.spectral_codec`), resumable, CPU-budgeted.

    python -m sepcore.train.spectral_codec --cpu-minutes 20 --out checkpoints/latents/spectral.pt

Each step draws ``batch_size`` independent random crops of every class of ``classes`` (training
split, silent crops redrawn) and reconstructs the crops and their mean mixtures. Validation: the
feature MSE of fixed crops of the validation split. Learning curve: ``tables/training/<out stem>.csv``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch

from sepcore.checkpoints import save_checkpoint
from sepcore.models.spectral_codec import SpectralCodec, SpectralCodecConfig
from sepcore.paths import training_tables
from sepcore.profiles import ProfileConfig
from sepcore.train.fit import FitPlan, fit
from sepcore.train.safe_paths import refuse_committed_path
from sepcore.train.stems import stem_source
from sepcore.utils import seed_everything


@dataclass
class SpectralTrainConfig(ProfileConfig):
    profile: str = "default"
    classes: tuple = ("drums", "bass", "guitar")
    crop_length: int = 16384
    batch_size: int = 4                 # crops per class per step
    val_crops: int = 32                 # per class
    seed: int = 0

    @classmethod
    def quick(cls):
        return cls(profile="quick", crop_length=4096, batch_size=2, val_crops=4)


def train_spectral_codec(config: SpectralTrainConfig, plan: FitPlan, out, *, data_root=None,
                         codec_config: SpectralCodecConfig | None = None):
    seed_everything(config.seed)
    codec_config = codec_config or SpectralCodecConfig.for_profile(config.profile)
    model = SpectralCodec(codec_config)
    train = [stem_source(c, profile=config.profile, data_root=data_root) for c in config.classes]
    val_sources = [stem_source(c, split="validation", profile=config.profile, data_root=data_root) for c in config.classes]
    length = config.crop_length - config.crop_length % codec_config.hop
    val_generator = torch.Generator().manual_seed(config.seed + 1)
    val = torch.stack([s.random_crops(config.val_crops, length, val_generator) for s in val_sources], 1)  # (n, N, T)
    generator = torch.Generator().manual_seed(config.seed)

    def loss_fn(step):
        batch = torch.stack([s.random_crops(config.batch_size, length, generator) for s in train], 1)
        return model.losses(batch)["total"]

    def val_fn():
        return float(sum(model.losses(val[i:i + 8])["rec"] * val[i:i + 8].shape[0] for i in range(0, len(val), 8)) / len(val))

    out = Path(out)
    data = getattr(train[0], "data", "")
    run_config = {"train": config.to_dict(), "codec": codec_config.to_dict(), "data": data}

    def on_checkpoint(best, info):
        save_checkpoint(out, best, metadata={"data": data, "train_config": config.to_dict(), "plan": plan.__dict__,
                                             "val_feature_mse": round(info["best_val"], 5), **info})

    return fit(model, loss_fn, val_fn, plan, state_path=out.with_name(out.name + ".state.pt"), config=run_config,
               curve_path=training_tables(config.profile) / f"{out.stem}.csv", name=f"codec {out.stem}", on_checkpoint=on_checkpoint)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--profile", default="default", choices=("quick", "default", "full"))
    parser.add_argument("--cpu-minutes", type=float, default=None)
    parser.add_argument("--steps", type=int, default=50000)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--codebook-size", type=int, default=None)
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args(argv)
    refuse_committed_path(args.out, args.profile)
    codec_config = SpectralCodecConfig.for_profile(args.profile)
    if args.codebook_size:
        codec_config = codec_config.replace(codebook_size=args.codebook_size)
    plan = FitPlan(steps=args.steps, cpu_minutes=args.cpu_minutes, lr=args.lr, warmup_steps=100, eval_every=200,
                   checkpoint_every=200, patience=10, min_delta=1e-4, weight_decay=0.0)
    result = train_spectral_codec(SpectralTrainConfig.for_profile(args.profile), plan, args.out,
                                  data_root=args.data_root, codec_config=codec_config)
    print(f"{args.out}: {result.steps_done} steps, best validation feature MSE {result.best_val:.5f} at step "
          f"{result.best_step}, {result.cpu_seconds:.0f} CPU-s ({result.stopped_by})")


if __name__ == "__main__":
    main()
