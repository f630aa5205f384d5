"""Load (default profile) or train on the fly (quick profile, or ``retrain=True``) the latent models.

Names: ``lqvae`` (with L_lin) and ``vqvae`` (without), and one prior per (autoencoder, class):
``prior_<vq>_<class>``. Committed checkpoints live in ``checkpoints/latents/`` (see its README);
models trained on the fly go to ``work_dir`` and are reused by later chapters of the same run.
"""

from __future__ import annotations

from pathlib import Path

from sepcore.checkpoints import load_model
from sepcore.models.transformer import TransformerPrior
from sepcore.models.vqvae import VQVAE
from sepcore.train.fit import FitPlan
from sepcore.train.prior import PriorTrainConfig, extract_codes, train_prior
from sepcore.train.stems import stem_source
from sepcore.train.vqvae import VQVAETrainConfig, fit_vqvae
from sepcore.utils import REPO_ROOT

CHECKPOINTS = REPO_ROOT / "checkpoints" / "latents"
LIN_WEIGHT = {"lqvae": 1.0, "vqvae": 0.0}


def _folder(profile: str, retrain: bool, work_dir) -> Path:
    if profile == "default" and not retrain:
        return CHECKPOINTS
    folder = Path(work_dir) / f"latent-models-{profile}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def get_vqvae(kind: str, *, profile: str, retrain: bool = False, work_dir=".", data_root=None,
              device="cpu") -> VQVAE:
    """The ``lqvae`` or ``vqvae`` of ``profile``: loaded from ``checkpoints/latents`` or trained."""
    if kind not in LIN_WEIGHT:
        raise ValueError(f"kind must be 'lqvae' or 'vqvae', got {kind!r}")
    path = _folder(profile, retrain, work_dir) / f"{kind}.pt"
    if path.exists():
        return load_model(path, expect_class=VQVAE, device=device)
    if path.parent == CHECKPOINTS:
        return load_model(path, expect_class=VQVAE, device=device)          # raises with the fix
    config = VQVAETrainConfig.for_profile(profile, lin_weight=LIN_WEIGHT[kind])
    every = max(1, config.steps // 5)
    plan = FitPlan(steps=config.steps, lr=config.lr, warmup_steps=min(100, config.steps // 10), eval_every=every,
                   checkpoint_every=every, patience=10, min_delta=1e-5, weight_decay=0.0)
    model, _ = fit_vqvae(config, plan, path, data_root=data_root, device=device,
                         val_pairs=8 if profile == "quick" else 48, log=lambda *_: None)
    return model.to(device)


def get_prior(kind: str, source_class: str, vqvae: VQVAE, *, profile: str, retrain: bool = False, work_dir=".",
              data_root=None, device="cpu") -> TransformerPrior:
    """The prior of ``source_class`` over the codes of ``vqvae`` (named ``kind``)."""
    folder = _folder(profile, retrain, work_dir)
    path = folder / f"prior_{kind}_{source_class}.pt"
    if path.exists() or folder == CHECKPOINTS:
        return load_model(path, expect_class=TransformerPrior, device=device)
    config = PriorTrainConfig.for_profile(profile)
    source = stem_source(source_class, profile=profile, data_root=data_root)
    codes = extract_codes(vqvae, source, config.n_sequences, config.sequence_length, seed=config.seed,
                          out=folder / f"codes_{kind}_{source_class}.pt")
    return train_prior(config, codes, path, vocab_size=vqvae.config.codebook_size, source_class=source_class,
                       device=device, metadata={"data": source.data}).to(device)
