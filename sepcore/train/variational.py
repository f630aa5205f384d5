"""Train the posterior encoders of amortised variational separation (paper 002, Eq. 21-23).

Each step draws random crops of training **mixtures** (never their sources), a one-sample ELBO
(:func:`sepcore.separation.variational.elbo_terms`) against the fixed flow priors, and an Adam
step on the encoders. The KL weight ``beta_kl`` rises linearly from 0 to 1 over the first
``kl_warmup`` fraction of training (``kl_warmup = 0`` disables the warm-up).

    OMP_NUM_THREADS=1 nice -n 10 python -m sepcore.train.variational --profile default --dataset toy
    OMP_NUM_THREADS=1 nice -n 10 python -m sepcore.train.variational --profile default --dataset slakh

The priors are the flow checkpoints ``checkpoints/flows/<dataset>_<source>.pt`` (``default``) or tiny
flows trained on the fly (``quick``), via :func:`sepcore.pretrained.get_flow_priors`. ``slakh`` trains
truncated-normal encoders for drums and bass on crops of the embedded dataset's **training mixtures**. The checkpoint
(``checkpoints/variational/<dataset>_<posterior>.pt``) stores the encoders' config and weights, the
training config and the curves (``metadata["history"]``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from sepcore.checkpoints import save_checkpoint
from sepcore.paths import data_root as default_data_root
from sepcore.profiles import ProfileConfig
from sepcore.separation.variational import VariationalConfig, VariationalSeparator, elbo_terms
from sepcore.train.budget import budget_fraction, budget_step, cpu_clock
from sepcore.train.resume import LoopState, flatten_config
from sepcore.train.safe_paths import refuse_committed_path
from sepcore.utils import REPO_ROOT, progress, resolve_device, seed_everything

MixtureSampler = Callable[[int, int, torch.Generator], torch.Tensor]


@dataclass
class VariationalTrainConfig(ProfileConfig):
    """Optimisation settings; Adam with an exponential decay from ``lr`` to ``lr_final``."""

    steps: int = 3000
    batch_size: int = 8
    segment_length: int = 1024
    lr: float = 2e-3
    lr_final: float = 2e-4
    grad_clip: float = 10.0
    kl_warmup: float = 0.1
    max_minutes: float = 25.0          # CPU minutes (sepcore.train.budget)
    log_every: int = 20

    @classmethod
    def quick(cls):
        return cls(steps=120, batch_size=8, segment_length=512, lr=3e-3, max_minutes=1.0, log_every=5)


def mixture_sampler(dataset) -> MixtureSampler:
    """``(n, length, generator) -> (n, length)`` random crops of the dataset's **mixtures** only
    (any dataset whose items hold ``"mixture" (time,)`` of one length: toy items, Slakh chunks)."""
    total = int(dataset[0]["mixture"].shape[-1])

    def sample(n: int, length: int, generator: torch.Generator) -> torch.Tensor:
        items = torch.randint(len(dataset), (n,), generator=generator).tolist()
        if length > total:
            raise ValueError(f"segment_length {length} exceeds the dataset's item length {total}")
        offsets = torch.randint(total - length + 1, (n,), generator=generator).tolist()
        return torch.stack([dataset[i]["mixture"][o:o + length] for i, o in zip(items, offsets)])
    return sample


def kl_weight_fraction(done: float, warmup: float) -> float:
    """``beta_kl`` from the spent fraction ``done`` of the budget: linear from 0 to 1 over the first ``warmup``."""
    if warmup <= 0:
        return 1.0
    return min(1.0, done / warmup)


def kl_weight(step: int, n_steps: int, warmup: float) -> float:
    """``beta_kl``: linear from 0 to 1 over the first ``warmup`` fraction of ``n_steps``, then 1."""
    if warmup <= 0:
        return 1.0
    return min(1.0, step / (warmup * n_steps))


def train_variational(
    priors: Sequence[nn.Module],
    sample_mixtures: MixtureSampler,
    config: VariationalConfig,
    train_config: VariationalTrainConfig,
    *,
    seed: int = 0,
    device: str = "auto",
    desc: str = "train encoders",
    state_path=None,
) -> tuple[VariationalSeparator, list[dict]]:
    """Fit the encoders by maximising the ELBO; returns the separator (eval, CPU) and the curves.

    History rows: ``step, seconds, beta_kl, loss, elbo, reconstruction, entropy, kl`` (nats per sample,
    means over the logging window) and ``kl_<source>``; ``elbo`` and the KLs are NaN against score
    priors, which have no density (:func:`sepcore.separation.variational.prior_log_density`).
    """
    generator = seed_everything(seed)
    device = resolve_device(device)
    separator = VariationalSeparator(config).to(device).train()
    priors = [prior.to(device).eval().requires_grad_(False) for prior in priors]
    optimiser = torch.optim.Adam(separator.parameters(), lr=train_config.lr)
    state = None if state_path is None else LoopState(state_path, flatten_config(
        {"separator": config.to_dict(), "train": train_config.to_dict(), "seed": seed}))
    start, history, spent = (0, [], 0.0) if state is None else state.load(separator, optimiser, generator)
    window, started = [], cpu_clock() - spent
    bar = progress(range(start, train_config.steps), desc=desc)
    for step in bar:
        mixture = sample_mixtures(train_config.batch_size, train_config.segment_length, generator).to(device)
        # the warm-up follows the spent fraction of the budget (steps or CPU time), so beta reaches 1
        beta = kl_weight_fraction(budget_fraction(step, started, steps=train_config.steps,
                                                  max_minutes=train_config.max_minutes), train_config.kl_warmup)
        terms = elbo_terms(separator, priors, mixture, beta_kl=beta)
        if not torch.isfinite(terms["loss"]):
            raise FloatingPointError(f"{desc}: non-finite loss at step {step}; lower --lr or raise likelihood_sigma")
        optimiser.zero_grad()
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(separator.parameters(), train_config.grad_clip)
        optimiser.step()
        elapsed, last = budget_step(optimiser, step, started, steps=train_config.steps, max_minutes=train_config.max_minutes,
                                    lr=train_config.lr, lr_final=train_config.lr_final)
        window.append({key: value.detach().cpu() for key, value in terms.items()} | {"beta_kl": beta})
        if (step + 1) % train_config.log_every == 0 or last:
            row = {"step": step + 1, "seconds": elapsed, "beta_kl": beta}
            for key in ("loss", "elbo", "reconstruction", "entropy", "kl"):
                row[key] = float(torch.stack([w[key] for w in window]).mean())
            per_source = torch.stack([w["kl_per_source"] for w in window]).mean(0)
            row.update({f"kl_{name}": float(v) for name, v in zip(config.sources, per_source)})
            history.append(row)
            bar.set_postfix(elbo=f"{row['elbo']:.2f}", rec=f"{row['reconstruction']:.2f}", kl=f"{row['kl']:.2f}")
            window = []
            if state is not None:
                state.save(separator, optimiser, generator, step + 1, history, cpu_clock() - started)
        if last:
            break
    return separator.cpu().eval(), history


def checkpoint_path(dataset: str, posterior: str, prior: str = "flow") -> Path:
    """``checkpoints/variational/<dataset>_<posterior>.pt``, with ``_score`` for encoders trained against score priors."""
    suffix = "" if prior == "flow" else f"_{prior}"
    return REPO_ROOT / "checkpoints" / "variational" / f"{dataset}_{posterior}{suffix}.pt"


def train_against_flows(profile: str, config: VariationalConfig, dataset_name: str, mixtures, *,
                        retrain_priors: bool = False, seed: int = 0, device: str = "auto",
                        train_overrides: dict | None = None, state_path=None, prior: str = "flow"):
    """Encoders of ``config`` trained on crops of ``mixtures`` (a dataset of ``{"mixture"}`` items)
    against the priors ``dataset_name`` of its sources: the flows (:func:`sepcore.pretrained.get_flow_priors`)
    or, with ``prior="score"``, the score priors (:func:`sepcore.experiments.langevin_priors.score_priors`);
    returns ``(separator, history, priors, wall_seconds)``."""
    train_config = VariationalTrainConfig.for_profile(profile, **(train_overrides or {}))
    if prior == "score":
        from sepcore.experiments.langevin_priors import score_priors

        prior_map = score_priors(config.sources, profile, dataset=dataset_name, seed=seed)
    elif prior == "flow":
        from sepcore.pretrained import get_flow_priors

        prior_map, _ = get_flow_priors(config.sources, profile, dataset=dataset_name, retrain=retrain_priors, seed=seed)
    else:
        raise ValueError(f"prior must be 'flow' or 'score', got {prior!r}")
    priors = [prior_map[name] for name in config.sources]
    started = time.perf_counter()
    separator, history = train_variational(priors, mixture_sampler(mixtures), config, train_config,
                                           seed=seed, device=device, desc=f"{dataset_name}/{config.posterior}",
                                           state_path=state_path)
    return separator, history, priors, time.perf_counter() - started


def prior_hashes(priors) -> dict[str, str]:
    """``{source: first 16 hex digits of the checkpoint's sha256}`` of the priors an encoder was trained against."""
    from sepcore.utils import file_sha256

    hashes = {}
    for prior in priors:
        info = getattr(prior, "checkpoint_info", {})
        path = info.get("path")
        hashes[prior.config.source] = file_sha256(path)[:16] if path else "trained in this run"
    return hashes


def train_toy(profile: str, *, overrides: dict | None = None, **kwargs):
    """Beta encoders (``VariationalConfig``) on toy training mixtures; see :func:`train_against_flows`."""
    from sepcore.data.toy import ToyConfig, ToyDataset

    config = VariationalConfig.for_profile(profile, **(overrides or {}))
    return train_against_flows(profile, config, "toy", ToyDataset(ToyConfig.for_profile(profile), "train"), **kwargs)


def train_slakh(profile: str, *, classes: Sequence[str] = ("drums", "bass"), data_root: str | None = None,
                overrides: dict | None = None, **kwargs):
    """Truncated-normal encoders (:meth:`VariationalConfig.music`) on random crops of the embedded
    dataset's training mixtures of ``classes`` (never their stems); see :func:`train_against_flows`."""
    from sepcore.data.slakh import SlakhMixtures, resolve_root

    config = VariationalConfig.music(profile, tuple(classes), **(overrides or {}))
    root = resolve_root(profile, data_root or default_data_root())
    mixtures = SlakhMixtures(root, config.sources, split="train", cache_tracks=4096)
    return train_against_flows(profile, config, "slakh", mixtures, **kwargs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="default", choices=("quick", "default", "full"))
    parser.add_argument("--dataset", default="toy", choices=("toy", "slakh"))
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--posterior", default=None, choices=("beta", "truncnormal"))
    parser.add_argument("--prior", default="flow", choices=("flow", "score"), help="the fixed priors: flows or score priors")
    parser.add_argument("--out", default=None, help="checkpoint path (default checkpoints/variational/<dataset>_<posterior>.pt)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--max-minutes", type=float, default=None)
    args = parser.parse_args(argv)

    overrides = {"posterior": args.posterior} if args.posterior else {}
    train_overrides = {k: v for k, v in (("steps", args.steps), ("max_minutes", args.max_minutes)) if v is not None}
    posterior = args.posterior or ("beta" if args.dataset == "toy" else "truncnormal")
    default_out = checkpoint_path(args.dataset, posterior, args.prior)
    if args.profile != "default":
        default_out = REPO_ROOT / "_build" / args.profile / "checkpoints" / "variational" / default_out.name
    out = Path(args.out or default_out)
    refuse_committed_path(out, args.profile)
    state_path = out.with_name(out.name + ".state.pt")
    if args.dataset == "toy":
        separator, history, priors, wall = train_toy(args.profile, seed=args.seed, device=args.device, overrides=overrides,
                                                train_overrides=train_overrides, state_path=state_path, prior=args.prior)
    else:
        separator, history, priors, wall = train_slakh(args.profile, data_root=args.data_root, seed=args.seed,
                                                  device=args.device, overrides=overrides,
                                                  train_overrides=train_overrides, state_path=state_path,
                                                  prior=args.prior)
    train_config = VariationalTrainConfig.for_profile(args.profile, **train_overrides)
    save_checkpoint(out, separator, metadata={
        "dataset": args.dataset, "prior": args.prior, "prior_checkpoints": prior_hashes(priors),
        "cpu_seconds": history[-1]["seconds"], "train_config": train_config.to_dict(), "history": history,
        "wall_seconds": wall, "steps_done": history[-1]["step"], "seed": args.seed, "profile": args.profile,
    })
    print(f"saved {out} ({out.stat().st_size / 1e6:.2f} MB) after {history[-1]['step']} steps, "
          f"{wall / 60:.1f} min; final ELBO {history[-1]['elbo']:.3f} nats/sample, KL {history[-1]['kl']:.3f}, "
          f"reconstruction {history[-1]['reconstruction']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
