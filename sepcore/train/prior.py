"""Code extraction for latent priors (paper 003 Sec. 3.2) and the profiles' budgets of priors trained on the fly.

    python -m sepcore.train.prior extract --vqvae checkpoints/latents/lqvae.pt --source-class drums \
        --out checkpoints/latents/codes_drums.pt

``extract`` encodes ``n_sequences`` random crops of ``sequence_length`` samples of one class
(the training split) into code sequences ``(n_sequences, S)`` and skips work already saved.
The priors themselves are trained by :mod:`sepcore.train.prior_fit` (one process or ``torchrun``),
on every code of the class, through the one training loop :func:`sepcore.train.fit.fit`.
:class:`PriorTrainConfig` holds the step budget and learning rate of a prior trained on the fly
(:func:`sepcore.train.prior_fit.on_the_fly_plan`).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch

from sepcore.checkpoints import load_model
from sepcore.models.vqvae import VQVAE
from sepcore.profiles import ProfileConfig
from sepcore.train.stems import stem_source
from sepcore.utils import progress


@dataclass
class PriorTrainConfig(ProfileConfig):
    profile: str = "default"
    n_sequences: int = 128             # crops encoded by `extract`
    sequence_length: int = 65536       # samples per crop (1024 codes at hop 64)
    window: int = 512                  # training window in codes, placed at random positions < block_size
    steps: int = 3000
    batch_size: int = 8
    lr: float = 1e-3
    seed: int = 0
    checkpoint_every: int = 250
    synthetic: bool = False

    @classmethod
    def quick(cls):
        return cls(profile="quick", n_sequences=32, sequence_length=16384, window=128, steps=150, batch_size=8)

    @classmethod
    def full(cls):
        return cls(profile="full", n_sequences=20000, sequence_length=131072, window=2048, steps=200000,
                   batch_size=32, lr=3e-4)


@torch.no_grad()
def extract_codes(vqvae: VQVAE, source, n_sequences: int, sequence_length: int, *, seed: int = 0,
                  batch: int = 8, out=None) -> torch.Tensor:
    """Encode ``n_sequences`` random crops: returns codes ``(n_sequences, sequence_length // hop)``.

    With ``out``, partial results are saved every batch and a re-run continues from them.
    """
    length = sequence_length - sequence_length % vqvae.config.hop
    done = []
    if out is not None and Path(out).exists():
        saved = torch.load(out, weights_only=True)
        done = [saved["codes"]] if saved["codes"].numel() else []
        if saved.get("complete"):
            return saved["codes"]
    n_done = sum(c.shape[0] for c in done)
    generator = torch.Generator().manual_seed(seed * 1000 + n_done)
    device = vqvae.codebook.device
    for start in progress(range(n_done, n_sequences, batch), desc="extract codes"):
        x = source.random_crops(min(batch, n_sequences - start), length, generator).to(device)
        done.append(vqvae.encode(x).cpu())
        if out is not None:
            _save_codes(out, torch.cat(done), complete=False, source=source, vocab_size=vqvae.config.codebook_size)
    codes = torch.cat(done) if done else torch.zeros(0, length // vqvae.config.hop, dtype=torch.long)
    if out is not None:
        _save_codes(out, codes, complete=True, source=source, vocab_size=vqvae.config.codebook_size)
    return codes


def _save_codes(out, codes, *, complete, source, vocab_size):
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    torch.save({"codes": codes, "complete": complete, "data": getattr(source, "data", "custom"),
                "source_class": getattr(source, "source_class", ""), "vocab_size": vocab_size}, tmp)
    tmp.replace(out)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("extract", help="encode one class's training audio into code sequences")
    ex.add_argument("--vqvae", required=True)
    ex.add_argument("--source-class", required=True)
    ex.add_argument("--out", required=True)
    ex.add_argument("--profile", default="default", choices=("quick", "default", "full"))
    ex.add_argument("--data-root", default=None)
    ex.add_argument("--synthetic", action="store_true")
    args = parser.parse_args(argv)
    from sepcore.train.safe_paths import refuse_committed_path

    refuse_committed_path(args.out, args.profile)
    config = PriorTrainConfig.for_profile(args.profile, **({"synthetic": True} if args.synthetic else {}))
    vqvae = load_model(args.vqvae, expect_class=VQVAE)
    source = stem_source(args.source_class, profile=config.profile, data_root=args.data_root, synthetic=config.synthetic)
    codes = extract_codes(vqvae, source, config.n_sequences, config.sequence_length, seed=config.seed, out=args.out)
    print(f"{args.out}: codes {tuple(codes.shape)} from {source.data}")


if __name__ == "__main__":
    main()
