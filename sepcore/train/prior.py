"""Code extraction and latent prior training (paper 003 Sec. 3.2): two separate, resumable stages.

    python -m sepcore.train.prior extract --vqvae checkpoints/latents/lqvae.pt --source-class drums \
        --out checkpoints/latents/codes_drums.pt
    python -m sepcore.train.prior train --codes checkpoints/latents/codes_drums.pt \
        --out checkpoints/latents/prior_drums.pt
    torchrun --nproc_per_node 2 -m sepcore.train.prior train ...        (DDP, unchanged)

``extract`` encodes ``n_sequences`` random crops of ``sequence_length`` samples of one class
(the training split) into code sequences ``(n_sequences, S)`` and skips work already saved.
``train`` fits a :class:`TransformerPrior` on random windows of those sequences and resumes from
``<out>.state.pt``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from sepcore.checkpoints import load_model, save_checkpoint
from sepcore.models.transformer import PriorConfig, TransformerPrior
from sepcore.models.vqvae import VQVAE
from sepcore.profiles import ProfileConfig
from sepcore.train import distributed as ddp
from sepcore.train.budget import cpu_clock
from sepcore.train.resume import flatten_config
from sepcore.train.stems import stem_source
from sepcore.utils import progress, quiet, seed_everything


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


def train_prior(config: PriorTrainConfig, codes: torch.Tensor, out, *, vocab_size: int, source_class: str = "",
                prior_config: PriorConfig | None = None, device: str = "auto", max_seconds: float | None = None,
                metadata: dict | None = None) -> TransformerPrior:
    """Fit a prior on random ``window``-long slices of ``codes: (n, S)``; save at ``out`` (rank 0)."""
    rank, world, dev = ddp.setup(device)
    seed_everything(config.seed)
    prior_config = (prior_config or PriorConfig.for_profile(config.profile)).replace(
        vocab_size=vocab_size, source_class=source_class)
    window = min(config.window, codes.shape[1], prior_config.block_size)
    model = TransformerPrior(prior_config).to(dev)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    run_config = flatten_config({"train": {k: v for k, v in config.to_dict().items() if k != "steps"},  # the budget may grow
                                 "model": prior_config.to_dict()})
    start, _ = ddp.load_state(out, model, optimizer, config=run_config, log=print if rank == 0 else (lambda *_: None))
    wrapped = ddp.wrap(model, dev)
    generator = torch.Generator().manual_seed(config.seed * 1000 + rank + 7919 * start)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / 100) * max(0.1, 1 - s / max(1, config.steps)))
    for _ in range(start):
        schedule.step()
    bar = progress(range(start, config.steps), desc=f"train prior {source_class}", disable=(rank != 0) or quiet())
    started, wall_started, loss_value, steps_done = cpu_clock(), time.time(), float("nan"), start
    for step in bar:
        rows = torch.randint(0, codes.shape[0], (config.batch_size,), generator=generator)
        offsets = torch.randint(0, codes.shape[1] - window + 1, (config.batch_size,), generator=generator)
        batch = torch.stack([codes[r, o:o + window] for r, o in zip(rows.tolist(), offsets.tolist())]).to(dev)
        model.train()
        position = int(torch.randint(0, prior_config.block_size - window + 1, (1,), generator=generator))
        logits, _ = wrapped(model.with_start(batch), use_cache=False, offset=position)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab_size), batch.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        loss_value = float(loss.detach())
        if rank == 0 and hasattr(bar, "set_postfix"):
            bar.set_postfix(nats=f"{loss_value:.3f}")
        done = steps_done = step + 1
        if ddp.after_step(out, model, optimizer, done, total=config.steps, every=config.checkpoint_every,
                          rank=rank, started=started, max_seconds=max_seconds, config=run_config):
            break
    if rank == 0:
        save_checkpoint(out, model, metadata={"train_config": config.to_dict(), "final_loss_nats": loss_value,
                                              "world_size": world, "steps_done": steps_done, "wall_time_s": round(time.time() - wall_started, 1), "cpu_seconds": round(cpu_clock() - started, 1),
                                              **(metadata or {})})
    ddp.barrier()
    return model.eval()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("extract", help="encode one class's training audio into code sequences")
    ex.add_argument("--vqvae", required=True)
    ex.add_argument("--source-class", required=True)
    ex.add_argument("--out", required=True)
    tr = sub.add_parser("train", help="train a transformer prior on extracted codes")
    tr.add_argument("--codes", required=True)
    tr.add_argument("--out", required=True)
    tr.add_argument("--steps", type=int, default=None)
    tr.add_argument("--max-minutes", type=float, default=None)
    for p in (ex, tr):
        p.add_argument("--profile", default="default", choices=("quick", "default", "full"))
        p.add_argument("--device", default="auto")
        p.add_argument("--data-root", default=None)
        p.add_argument("--synthetic", action="store_true")
    args = parser.parse_args(argv)
    from sepcore.train.safe_paths import refuse_committed_path

    refuse_committed_path(args.out, args.profile)
    overrides = {"synthetic": True} if args.synthetic else {}
    if getattr(args, "steps", None):
        overrides["steps"] = args.steps
    config = PriorTrainConfig.for_profile(args.profile, **overrides)
    if args.command == "extract":
        vqvae = load_model(args.vqvae, expect_class=VQVAE)
        source = stem_source(args.source_class, profile=config.profile, data_root=args.data_root,
                             synthetic=config.synthetic)
        codes = extract_codes(vqvae, source, config.n_sequences, config.sequence_length, seed=config.seed, out=args.out)
        print(f"{args.out}: codes {tuple(codes.shape)} from {source.data}")
        return
    saved = torch.load(args.codes, weights_only=True)
    if not saved.get("complete"):
        raise SystemExit(f"{args.codes} is incomplete; re-run `extract` with the same --out to finish it")
    codes = saved["codes"]
    vocab = int(saved["vocab_size"])
    train_prior(config, codes, args.out, vocab_size=vocab, source_class=saved.get("source_class", ""),
                device=args.device, max_seconds=None if args.max_minutes is None else 60 * args.max_minutes,
                metadata={"data": saved.get("data"), "codes": str(args.codes)})
    ddp.teardown()


if __name__ == "__main__":
    main()
