"""Train the posterior encoders of amortised variational separation (paper 002, Eq. 21-23).

Each step draws random crops of training **mixtures** (never their sources), a one-sample ELBO
(:func:`sepcore.separation.variational.elbo_terms`) against the fixed flow priors, and an AdamW
step on the encoders, through the package's one training loop :func:`sepcore.train.fit.fit`: a
step or CPU budget planned up front, the negative ELBO of fixed crops of the **validation
mixtures** at intervals (a plateau stops the run; the best weights are kept), resumable state
and a learning curve (``tables/training/variational_<dataset>_<posterior>[_score].csv`` from the
command line). The KL weight ``beta_kl`` rises linearly from 0 to 1 over the first ``kl_warmup``
fraction of the planned steps (``kl_warmup = 0`` disables the warm-up).

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
from sepcore.train.fit import FitPlan
from sepcore.train.resume import flatten_config
from sepcore.train.safe_paths import refuse_committed_path
from sepcore.utils import REPO_ROOT, resolve_device, seed_everything

MixtureSampler = Callable[[int, int, torch.Generator], torch.Tensor]


@dataclass
class VariationalTrainConfig(ProfileConfig):
    """Optimisation settings of :func:`sepcore.train.fit.fit`: AdamW, a warm-up then a cosine from
    ``lr`` to ``lr_final``, ``steps`` or ``max_minutes`` of CPU time (the step count planned from the
    speed of the first steps), the negative ELBO of fixed validation crops every ``eval_every`` steps."""

    steps: int = 3000
    batch_size: int = 8
    segment_length: int = 1024
    lr: float = 2e-3
    lr_final: float = 2e-4
    grad_clip: float = 10.0
    kl_warmup: float = 0.1             # fraction of the planned steps over which beta_KL rises from 0 to 1
    max_minutes: float = 25.0          # CPU minutes
    eval_every: int = 100
    n_validation: int = 32             # fixed validation crops

    @classmethod
    def quick(cls):
        return cls(steps=120, batch_size=8, segment_length=512, lr=3e-3, max_minutes=1.0, eval_every=20,
                   n_validation=8)

    @classmethod
    def from_checkpoint(cls, saved: dict) -> VariationalTrainConfig:
        """The config a committed checkpoint recorded; ``log_every``, the logging interval of the loop
        that preceded :func:`sepcore.train.fit.fit`, is dropped, and fields it did not have take their defaults."""
        return cls.from_dict({k: v for k, v in saved.items() if k != "log_every"})

    def plan(self) -> FitPlan:
        return FitPlan(steps=self.steps, cpu_minutes=self.max_minutes, lr=self.lr, lr_final_ratio=self.lr_final / self.lr,
                       warmup_steps=min(100, self.steps // 10), weight_decay=0.0, grad_clip=self.grad_clip,
                       eval_every=self.eval_every, checkpoint_every=self.eval_every)


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


def kl_weight(step: int, n_steps: int, warmup: float) -> float:
    """``beta_kl``: linear from 0 to 1 over the first ``warmup`` fraction of ``n_steps``, then 1."""
    if warmup <= 0:
        return 1.0
    return min(1.0, step / (warmup * n_steps))


def validation_loss(separator, priors, crops: torch.Tensor, batch_size: int) -> float:
    """Mean negative ELBO (``beta_KL = 1``, nats per sample) of fixed validation ``crops (n, length)``,
    one reparameterised sample each under a fixed seed; the reconstruction term alone against score
    priors, which have no density."""
    totals = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for batch in crops.split(batch_size):
            terms = elbo_terms(separator, priors, batch, beta_kl=1.0)
            value = -terms["elbo"] if torch.isfinite(terms["elbo"]) else terms["reconstruction"]
            totals.append(float(value) * len(batch))
    return sum(totals) / len(crops)


def train_variational(
    priors: Sequence[nn.Module],
    sample_mixtures: MixtureSampler,
    config: VariationalConfig,
    train_config: VariationalTrainConfig,
    *,
    validation_mixtures: MixtureSampler | None = None,
    seed: int = 0,
    device: str = "auto",
    desc: str = "train encoders",
    state_path=None,
    curve_path=None,
) -> tuple[VariationalSeparator, list[dict]]:
    """Fit the encoders by maximising the ELBO through :func:`sepcore.train.fit.fit`; returns the
    separator (eval, CPU, the best-validation weights) and the curve.

    Curve rows (one per evaluation): ``step, seconds`` (CPU), ``beta_kl, loss, elbo, reconstruction,
    entropy, kl`` and ``kl_<source>`` (nats per sample, means since the last evaluation),
    ``val_loss`` and ``lr``; ``elbo`` and the KLs are NaN against score priors, which have no density
    (:func:`sepcore.separation.variational.prior_log_density`). Validation crops come from
    ``validation_mixtures`` (the training sampler under another seed when ``None``).
    """
    import tempfile

    from sepcore.train.fit import fit

    generator = seed_everything(seed)
    device = resolve_device(device)
    separator = VariationalSeparator(config).to(device).train()
    priors = [prior.to(device).eval().requires_grad_(False) for prior in priors]
    crops = (validation_mixtures or sample_mixtures)(train_config.n_validation, train_config.segment_length,
                                                     torch.Generator().manual_seed(seed + 1)).to(device)
    planned = {"steps": train_config.steps}

    def loss_fn(step):
        mixture = sample_mixtures(train_config.batch_size, train_config.segment_length, generator).to(device)
        beta = kl_weight(step, planned["steps"], train_config.kl_warmup)
        terms = elbo_terms(separator, priors, mixture, beta_kl=beta)
        per_source = {f"kl_{name}": value for name, value in zip(config.sources, terms["kl_per_source"])}
        return {"loss": terms["loss"], "beta_kl": torch.tensor(beta), **{k: terms[k] for k in
                ("elbo", "reconstruction", "entropy", "kl")}, **per_source}

    run_config = flatten_config({"separator": config.to_dict(), "train": train_config.to_dict(), "seed": seed})
    with tempfile.TemporaryDirectory() as scratch:
        result = fit(separator, loss_fn, lambda: validation_loss(separator, priors, crops, train_config.batch_size),
                     train_config.plan(), state_path=state_path or Path(scratch) / "state.pt", config=run_config,
                     curve_path=curve_path, name=desc, on_plan=lambda steps: planned.update(steps=steps))
    history = [{"step": row["step"], "seconds": row["cpu_s"], **{k: v for k, v in row.items()
                                                               if k not in ("step", "cpu_s", "wall_s", "train_loss")},
                "loss": row["train_loss"]} for row in result.curve]
    return separator.cpu().eval(), history


def checkpoint_path(dataset: str, posterior: str, prior: str = "flow") -> Path:
    """``checkpoints/variational/<dataset>_<posterior>.pt``, with ``_score`` for encoders trained against score priors."""
    suffix = "" if prior == "flow" else f"_{prior}"
    return REPO_ROOT / "checkpoints" / "variational" / f"{dataset}_{posterior}{suffix}.pt"


def train_against_flows(profile: str, config: VariationalConfig, dataset_name: str, mixtures, *,
                        validation=None, retrain_priors: bool = False, seed: int = 0, device: str = "auto",
                        train_overrides: dict | None = None, state_path=None, curve_path=None, prior: str = "flow"):
    """Encoders of ``config`` trained on crops of ``mixtures`` (a dataset of ``{"mixture"}`` items;
    validation crops from ``validation``, a dataset of the same kind) against the priors
    ``dataset_name`` of its sources: the flows (:func:`sepcore.pretrained.get_flow_priors`) or, with
    ``prior="score"``, the score priors (:func:`sepcore.pretrained.get_score_priors`);
    returns ``(separator, history, priors, wall_seconds)``."""
    train_config = VariationalTrainConfig.for_profile(profile, **(train_overrides or {}))
    if prior == "score":
        from sepcore.pretrained import get_score_priors

        prior_map = get_score_priors(config.sources, profile, dataset=dataset_name, seed=seed)
    elif prior == "flow":
        from sepcore.pretrained import get_flow_priors

        prior_map, _ = get_flow_priors(config.sources, profile, dataset=dataset_name, retrain=retrain_priors, seed=seed)
    else:
        raise ValueError(f"prior must be 'flow' or 'score', got {prior!r}")
    priors = [prior_map[name] for name in config.sources]
    started = time.perf_counter()
    separator, history = train_variational(priors, mixture_sampler(mixtures), config, train_config,
                                           validation_mixtures=None if validation is None else mixture_sampler(validation),
                                           seed=seed, device=device, desc=f"{dataset_name}/{config.posterior}",
                                           state_path=state_path, curve_path=curve_path)
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
    toy = ToyConfig.for_profile(profile)
    return train_against_flows(profile, config, "toy", ToyDataset(toy, "train"), validation=ToyDataset(toy, "validation"),
                               **kwargs)


def train_slakh(profile: str, *, classes: Sequence[str] = ("drums", "bass"), data_root: str | None = None,
                overrides: dict | None = None, **kwargs):
    """Truncated-normal encoders (:meth:`VariationalConfig.music`) on random crops of the embedded
    dataset's training mixtures of ``classes`` (never their stems); see :func:`train_against_flows`."""
    from sepcore.data.slakh import SlakhMixtures, resolve_root

    config = VariationalConfig.music(profile, tuple(classes), **(overrides or {}))
    root = resolve_root(profile, data_root or default_data_root())
    mixtures = SlakhMixtures(root, config.sources, split="train", cache_tracks=4096)
    validation = SlakhMixtures(root, config.sources, split="validation")
    return train_against_flows(profile, config, "slakh", mixtures, validation=validation, **kwargs)


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
    from sepcore.paths import training_tables

    curve_path = training_tables(args.profile) / f"variational_{out.stem}.csv"
    common = {"seed": args.seed, "device": args.device, "overrides": overrides, "train_overrides": train_overrides,
              "state_path": state_path, "curve_path": curve_path, "prior": args.prior}
    if args.dataset == "toy":
        separator, history, priors, wall = train_toy(args.profile, **common)
    else:
        separator, history, priors, wall = train_slakh(args.profile, data_root=args.data_root, **common)
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
