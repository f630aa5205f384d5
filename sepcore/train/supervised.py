"""Train the supervised Conv-TasNet upper bound on random mixtures of the embedded stems.

Command line::

    python -m sepcore.train.supervised --profile quick|default [--data-root DIR] [--out PATH]
                                      [--steps N] [--max-minutes M] [--max-wall-minutes W] [--resume]

Data: for every step, each batch item draws one of the training ``pairs`` uniformly, and an
independent random non-silent crop of each of its two classes from ``SlakhStems(split="train")``
(the stems the generative priors train on; independent crops = the random mixing of paper
003's LQ-VAE training). The mixture is :func:`sepcore.mixing.mix` of the two crops. The loss is
the negative SDR of the pair's two outputs (:func:`sepcore.models.convtasnet.sdr_loss`).
Training stops at ``steps``, at ``max_minutes`` of **CPU time** of the process (one core with
``OMP_NUM_THREADS=1``: the same compute budget on a busy or an idle machine), or at
``max_wall_minutes`` of wall time, whichever is first; the checkpoint (saved every ``save_every`` steps and at the end) records the steps done, so
``--resume`` continues a run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from sepcore.checkpoints import read_checkpoint, save_checkpoint
from sepcore.metrics import sdr
from sepcore.mixing import mix
from sepcore.models.convtasnet import ConvTasNet, ConvTasNetConfig, sdr_loss
from sepcore.profiles import PROFILES
from sepcore.train.fit import check_config
from sepcore.train.resume import flatten_config
from sepcore.train.safe_paths import refuse_committed_path
from sepcore.utils import REPO_ROOT, progress, resolve_device, seed_everything


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


def train(config: ConvTasNetConfig, data_root: Path, out: Path, device: str = "auto", resume: bool = False,
          save_every: int = 100, max_wall_minutes: float | None = None, log=print) -> tuple[ConvTasNet, dict]:
    """Train (or continue) a model; save it to ``out``; return it with its training metadata."""
    device = resolve_device(device)
    generator = seed_everything(config.seed)
    model = ConvTasNet(config).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    done, seconds_before, cpu_before, losses = 0, 0.0, 0.0, []
    if resume and out.exists():
        payload = read_checkpoint(out)
        budget = ("steps", "max_minutes")                   # the budget may grow; the model and data may not
        check_config(out, {k: v for k, v in flatten_config(payload["config"]).items() if k not in budget},
                     {k: v for k, v in flatten_config(config.to_dict()).items() if k not in budget})
        model.load_state_dict(payload["state_dict"])
        done = int(payload["metadata"].get("steps_done", 0))
        seconds_before = float(payload["metadata"].get("train_seconds", 0.0))
        cpu_before = float(payload["metadata"].get("cpu_seconds", 0.0))
        generator.manual_seed(config.seed + done)
        log(f"resuming {out} at step {done}")
    stems = load_stems(data_root, config)
    manifest_hash = "+".join(stems[c].manifest_hash for c in config.classes)
    started, cpu_started = time.time(), time.process_time()
    bar = progress(range(done, config.steps), desc="train convtasnet", initial=done, total=config.steps)

    def metadata(final: bool) -> dict:
        return {"steps_done": done, "train_seconds": round(seconds_before + time.time() - started, 1),
                "cpu_seconds": round(cpu_before + time.process_time() - cpu_started, 1),
                "final_loss": float(np.mean(losses[-50:])) if losses else None, "data_root": str(data_root),
                "threads": torch.get_num_threads(), "device": str(device), "finished": final}

    for step in bar:
        mixture, sources, index = make_batch(stems, config, generator)
        mixture, sources, index = mixture.to(device), sources.to(device), index.to(device)
        estimates = model(mixture)                                          # (B, C, T)
        chosen = torch.gather(estimates, 1, index[..., None].expand(-1, -1, estimates.shape[-1]))
        loss = sdr_loss(chosen, sources)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimiser.step()
        losses.append(loss.item())
        done = step + 1
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.2f}")
        if done % save_every == 0:
            save_checkpoint(out, model, manifest_hash=manifest_hash, metadata=metadata(False))
        if cpu_before + time.process_time() - cpu_started > config.max_minutes * 60:
            log(f"stopping at step {done}: max_minutes={config.max_minutes} of CPU time reached")
            break
        if max_wall_minutes is not None and time.time() - started > max_wall_minutes * 60:
            log(f"stopping at step {done}: max_wall_minutes={max_wall_minutes} reached")
            break
    info = metadata(True)
    info["validation_sdr"] = validate(model, data_root, config)
    save_checkpoint(out, model, manifest_hash=manifest_hash, metadata=info)
    log(f"saved {out} ({out.stat().st_size / 1e6:.2f} MB): {info}")
    return model.eval(), info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sepcore.train.supervised", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default", choices=PROFILES)
    parser.add_argument("--data-root", default="", help="Slakh2100 copy or where the embedded dataset is rendered")
    parser.add_argument("--out", default="", help="checkpoint path (default checkpoints/supervised/convtasnet.pt; other profiles under _build/<profile>/)")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument("--max-wall-minutes", type=float, default=None, help="also stop after this much wall time")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    from sepcore.book import default_data_root
    from sepcore.data.slakh import resolve_root

    overrides = {k: v for k, v in {"steps": args.steps, "max_minutes": args.max_minutes}.items() if v is not None}
    config = ConvTasNetConfig.for_profile(args.profile, **overrides)
    root = resolve_root(args.profile, args.data_root or default_data_root())
    folder = REPO_ROOT / "checkpoints" if args.profile == "default" else REPO_ROOT / "_build" / args.profile / "checkpoints"
    out = Path(args.out) if args.out else folder / "supervised" / "convtasnet.pt"
    refuse_committed_path(out, args.profile)
    train(config, root, out, args.device, args.resume, max_wall_minutes=args.max_wall_minutes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
