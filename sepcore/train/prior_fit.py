"""Latent priors trained for real (paper 003 Sec. 3.2, paper 004 Sec. 3): every training code, random
offsets, a CPU budget planned up front, validation NLL, resumable (:func:`sepcore.train.fit.fit`).

    python -m sepcore.train.prior_fit --codec checkpoints/latents/vqvae.pt --source-class drums \
        --cpu-minutes 45 --out checkpoints/latents/prior_vqvae_drums.pt
    torchrun --nproc_per_node 2 -m sepcore.train.prior_fit ... --steps 200000   (data-parallel)

1. **Codes.** Every track of the class in the training and validation splits is encoded whole by
   the codec (``codec.encode``: ``(1, T) -> (1, S)``), once, and cached beside the data
   (``<data root>/codes/<codec>-<sha>/<class>-<split>.pt``): a list of ``(S_track,)`` sequences.
2. **Training.** Windows of ``window`` codes at uniformly random positions of random tracks
   (weighted by length), placed at a random position ``< block_size`` of the prior (so every
   position embedding is trained), next-code cross-entropy in nats.
3. **Validation.** The mean NLL per code of fixed windows of the validation split (placed at
   position 0, as at inference), every ``eval_every`` steps; the best weights are written to
   ``--out`` at every checkpoint, with the unigram and bigram baselines' NLL on the same windows.

The learning curve goes to ``tables/training/<out stem>.csv``.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from sepcore.checkpoints import load_model, save_checkpoint
from sepcore.models.transformer import PriorConfig, TransformerPrior
from sepcore.paths import training_tables
from sepcore.profiles import ProfileConfig
from sepcore.train import distributed as ddp
from sepcore.train.fit import FitPlan, fit
from sepcore.utils import file_sha256, progress, save_atomic, seed_everything


@dataclass
class PriorFitConfig(ProfileConfig):
    profile: str = "default"
    window: int = 512
    batch_size: int = 8
    val_windows: int = 96
    seed: int = 0

    @classmethod
    def quick(cls):
        return cls(profile="quick", window=128, batch_size=8, val_windows=16)

    @classmethod
    def full(cls):
        return cls(profile="full", window=2048, batch_size=32, val_windows=512)


file_digest = file_sha256          # the codec's identity in caches and metadata


@torch.no_grad()
def encode_long(codec, wave: torch.Tensor, chunk_seconds: float = 30.0) -> torch.Tensor:
    """One ``(T,)`` signal -> ``(T // hop,)`` codes, encoded in chunks of ``chunk_seconds``."""
    hop = codec.config.hop
    chunk = max(hop, int(chunk_seconds * codec.config.sample_rate) // hop * hop)
    usable = wave[: wave.shape[0] // hop * hop]
    parts = [codec.encode(usable[s:s + chunk][None])[0] for s in range(0, usable.shape[0], chunk)]
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)


def encode_tracks(codec, audio: list[torch.Tensor], chunk_seconds: float = 30.0, desc: str = "encode") -> list[torch.Tensor]:
    """Each ``(T,)`` track -> ``(T // hop,)`` codes (:func:`encode_long`)."""
    return [encode_long(codec, track, chunk_seconds) for track in progress(audio, desc=desc)]


def class_codes(codec_path, source_class: str, split: str, *, profile: str = "default", data_root=None) -> list[torch.Tensor]:
    """Cached codes of every track of ``source_class`` in ``split`` (see the module docstring)."""
    from sepcore.book import default_data_root
    from sepcore.data.render import ensure_dataset
    from sepcore.data.slakh import SlakhStems

    root = ensure_dataset(profile, data_root or default_data_root())
    digest = file_digest(codec_path)[:12]
    cache = root.parent / "codes" / f"{root.name}-{Path(codec_path).stem}-{digest}" / f"{source_class}-{split}.pt"
    if cache.exists():
        return torch.load(cache, weights_only=True)
    codec = load_model(codec_path).eval()
    stems = SlakhStems(root, source_class, split=split, sample_rate=codec.config.sample_rate)
    codes = encode_tracks(codec, stems.audio, desc=f"encode {source_class} {split}")
    save_atomic(codes, cache)
    return codes


def fixed_windows(tracks: list[torch.Tensor], window: int, n: int, seed: int = 1) -> torch.Tensor:
    """``(n, window)`` windows at seeded random positions (the validation set; same every call)."""
    generator = torch.Generator().manual_seed(seed)
    return sample_windows(tracks, window, n, generator)


def sample_windows(tracks: list[torch.Tensor], window: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """``(n, window)`` windows of random tracks (weighted by length) at uniformly random offsets."""
    sizes = torch.tensor([max(t.shape[0] - window + 1, 0) for t in tracks], dtype=torch.float64)
    if sizes.sum() == 0:
        raise ValueError(f"every code sequence is shorter than the window {window}")
    rows = torch.multinomial(sizes, n, replacement=True, generator=generator).tolist()
    return torch.stack([tracks[r][o:o + window] for r, o in
                        ((r, int(torch.randint(int(sizes[r]), (1,), generator=generator))) for r in rows)])


def ngram_nll(train: list[torch.Tensor], windows: torch.Tensor, K: int, order: int, alpha: float = 0.5) -> float:
    """Mean NLL (nats per code) of ``windows (n, W)`` under an additively smoothed unigram (order 1)
    or bigram (order 2) model counted on ``train``; the first code of a bigram window is scored by
    the unigram. The baselines a learned prior must beat."""
    flat = torch.cat(train)
    uni = torch.bincount(flat, minlength=K).double() + alpha
    log_uni = (uni / uni.sum()).log()
    if order == 1:
        return float(-log_uni[windows].mean())
    pairs = torch.cat([t[:-1] * K + t[1:] for t in train if t.shape[0] > 1])
    big = torch.bincount(pairs, minlength=K * K).double().reshape(K, K) + alpha
    log_big = (big / big.sum(1, keepdim=True)).log()
    nll = -log_big[windows[:, :-1], windows[:, 1:]].sum() - log_uni[windows[:, 0]].sum()
    return float(nll / windows.numel())


def prior_nll(prior: TransformerPrior, windows: torch.Tensor, batch: int = 16) -> float:
    """Mean next-code NLL (nats) of ``windows (n, W)`` starting at position 0 after the start token."""
    total = 0.0
    for s in range(0, windows.shape[0], batch):
        part = windows[s:s + batch].to(next(prior.parameters()).device)
        logits, _ = prior(prior.with_start(part), use_cache=False)
        total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), part.reshape(-1), reduction="sum"))
    return total / windows.numel()


def on_the_fly_plan(profile: str) -> FitPlan:
    """The plan of a prior trained on the fly (:func:`sepcore.pretrained.get_prior` under ``quick`` and
    ``full``): the profile's step budget and learning rate of
    :class:`~sepcore.train.prior.PriorTrainConfig`, validation and a checkpoint every
    ``min(250, steps / 5)`` steps."""
    from sepcore.train.prior import PriorTrainConfig

    budget = PriorTrainConfig.for_profile(profile)
    every = max(1, min(250, budget.steps // 5))
    return FitPlan(steps=budget.steps, lr=budget.lr, warmup_steps=min(200, max(1, budget.steps // 10)), eval_every=every,
                   checkpoint_every=every, patience=8, min_delta=1e-3)


def fit_prior(codec_path, source_class: str, out, *, config: PriorFitConfig, plan: FitPlan, init_from=None,
              data_root=None, prior_config: PriorConfig | None = None, curve_path=None, log=print, device="cpu"):
    """Train (or resume) one class prior on every training code of ``source_class``; returns the
    FitResult. The learning curve goes to ``curve_path`` (default ``tables/training/<out stem>.csv``,
    a scratch folder outside ``default``)."""
    seed_everything(config.seed)
    train = [t for t in class_codes(codec_path, source_class, "train", profile=config.profile, data_root=data_root)
             if t.shape[0] > config.window]
    val_tracks = [t for t in class_codes(codec_path, source_class, "validation", profile=config.profile,
                                         data_root=data_root) if t.shape[0] > config.window]
    codec_config = torch.load(codec_path, map_location="cpu", weights_only=True)["config"]
    K = int(codec_config["codebook_size"])
    prior_config = (prior_config or PriorConfig.for_profile(config.profile)).replace(vocab_size=K, source_class=source_class)
    window = min(config.window, prior_config.block_size)
    val = fixed_windows(val_tracks, window, config.val_windows)
    baselines = {"unigram_nll": round(ngram_nll(train, val, K, 1), 4), "bigram_nll": round(ngram_nll(train, val, K, 2), 4)}
    n_codes = sum(t.shape[0] for t in train)
    log(f"{source_class}: {n_codes} training codes in {len(train)} tracks; validation unigram "
          f"{baselines['unigram_nll']:.3f}, bigram {baselines['bigram_nll']:.3f} nats/code")
    rank, _, device = ddp.setup(device)
    model = TransformerPrior(prior_config).to(device)
    wrapped = ddp.wrap(model, device)                             # the model itself in one process
    generator = torch.Generator().manual_seed(config.seed + 1000 * rank)      # each rank its own windows

    def loss_fn(step: int) -> torch.Tensor:
        batch = sample_windows(train, window, config.batch_size, generator).to(device)
        position = int(torch.randint(0, prior_config.block_size - window + 1, (1,), generator=generator))
        logits, _ = wrapped(model.with_start(batch), use_cache=False, offset=position)
        return F.cross_entropy(logits.reshape(-1, K), batch.reshape(-1))

    out = Path(out)
    metadata = {"codec": str(codec_path), "codec_sha256": file_digest(codec_path), "train_codes": n_codes,
                "train_tracks": len(train), "validation_windows": tuple(val.shape), **baselines,
                "train_config": config.to_dict(), "plan": plan.__dict__, "device": device.type}

    def on_checkpoint(best, info):
        save_checkpoint(out, best, metadata={**metadata, **info, "val_nll": round(info["best_val"], 4),
                                             "final_loss_nats": round(info["best_val"], 4)})

    run_config = {"codec_sha256": metadata["codec_sha256"], "source_class": source_class, "train": config.to_dict(),
                  "prior": prior_config.to_dict()}
    return fit(model, loss_fn, lambda: prior_nll(model, val), plan, state_path=out.with_name(out.name + ".state.pt"),
               config=run_config, curve_path=curve_path or training_tables(config.profile) / f"{out.stem}.csv",
               name=f"prior {out.stem}", init_from=init_from, on_checkpoint=on_checkpoint, log=log)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codec", required=True, help="the VQ-VAE / LQ-VAE / spectrogram codec checkpoint")
    parser.add_argument("--source-class", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--profile", default="default", choices=("quick", "default", "full"))
    parser.add_argument("--cpu-minutes", type=float, default=None, help="CPU budget; the step count is planned from it")
    parser.add_argument("--steps", type=int, default=100000, help="step budget (an upper bound with --cpu-minutes)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warm-start", action="store_true", help="start from the weights in --out (fresh optimiser)")
    parser.add_argument("--block-size", type=int, default=None, help="prior context in codes (default: the profile's)")
    parser.add_argument("--dropout", type=float, default=None, help="the prior's dropout (default: the profile's)")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    args = parser.parse_args(argv)
    from sepcore.train.safe_paths import refuse_committed_path

    refuse_committed_path(args.out, args.profile)
    config = PriorFitConfig.for_profile(args.profile)
    plan = FitPlan(steps=args.steps, cpu_minutes=args.cpu_minutes, lr=args.lr, warmup_steps=100 if args.warm_start else 200,
                   eval_every=250, checkpoint_every=500, patience=8, min_delta=1e-3)
    init = None
    if args.warm_start:
        init = load_model(args.out, expect_class=TransformerPrior).state_dict()
    changes = {name: value for name, value in (("block_size", args.block_size), ("dropout", args.dropout))
               if value is not None}
    prior_config = PriorConfig.for_profile(args.profile).replace(**changes) if changes else None
    result = fit_prior(args.codec, args.source_class, args.out, config=config, plan=plan, init_from=init,
                       data_root=args.data_root, prior_config=prior_config, device=args.device)
    if ddp.rank_and_world()[0] == 0:
        print(f"{args.out}: {result.steps_done} steps, best validation NLL {result.best_val:.4f} nats/code at step "
              f"{result.best_step}, {result.cpu_seconds:.0f} CPU-s ({result.stopped_by})")
    ddp.teardown()
    if math.isinf(result.best_val):
        raise SystemExit("no validation loss was computed")


if __name__ == "__main__":
    main()
