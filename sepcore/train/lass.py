"""LASS models: the digits VQ-VAE + class-agnostic prior, and the count likelihoods (paper 004).

    python -m sepcore.train.lass digits --profile default          # VQ-VAE, prior, counts (images)
    python -m sepcore.train.lass audio-counts --profile default     # counts over the latents' VQ-VAE

Digits (paper 004, MNIST set-up from the reference code): a 2-D VQ-VAE, 28x28 -> 7x7 codes
(K=256 in ``default``), then one GPT prior (3 layers, 2 heads, width 128) shared by both sources
over the raster-ordered 49 codes, then the counts over random pairs of training digits. Images
use the **sum** mixture (BASIS and LASS); training data are the training split of
:class:`sepcore.data.digits.Digits` with random shifts of up to ``max_shift`` pixels (the
embedded digits set has only 1438 training images; every tenth is held out, unshifted, for the
validation loss). Both models train through :func:`sepcore.train.fit.fit`.

Audio: the counts over the codes of drums, bass and their mixture (:mod:`sepcore.mixing`, the
package's mean) on random training crops, with the shared VQ-VAE of :func:`sepcore.pretrained.get_vqvae`;
``--classes drums bass guitar`` counts three-source mixtures (the N-source table of
:class:`sepcore.separation.lass.CountLikelihood`).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from sepcore.checkpoints import load_model, save_checkpoint
from sepcore.data.digits import Digits
from sepcore.mixing import set_mixing
from sepcore.models.transformer import PriorConfig, TransformerPrior
from sepcore.models.vqvae import VQVAE, VQVAEConfig
from sepcore.paths import CHECKPOINTS
from sepcore.profiles import ProfileConfig
from sepcore.separation.count_files import audio_counts_name, save_counts
from sepcore.separation.lass import CountLikelihood, fit_count_likelihood
from sepcore.train.fit import FitPlan, fit
from sepcore.utils import file_sha256, seed_everything

IMAGE_MIXING = "sum"


@dataclass
class DigitsLASSConfig(ProfileConfig):
    profile: str = "default"
    codebook_size: int = 256
    width: int = 24
    code_dim: int = 32
    vq_steps: int = 600
    vq_batch: int = 32
    vq_lr: float = 1e-3
    prior_layers: int = 3
    prior_heads: int = 2
    prior_width: int = 128
    prior_steps: int = 800
    prior_batch: int = 32
    n_shifted_copies: int = 8          # augmented copies of the training set for prior and counts
    max_shift: int = 2
    n_count_pairs: int = 20000
    seed: int = 0

    @classmethod
    def quick(cls):
        return cls(profile="quick", codebook_size=64, width=16, code_dim=16, vq_steps=150, vq_batch=32,
                   prior_layers=2, prior_width=64, prior_steps=150, prior_batch=32, n_shifted_copies=2,
                   n_count_pairs=3000)


def shifted_copies(images: torch.Tensor, n_copies: int, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """``(N, H, W)`` -> ``(N * n_copies, H, W)``: the originals, then copies shifted by up to ``max_shift`` px (zero fill)."""
    out = [images]
    N, H, W = images.shape
    padded = torch.nn.functional.pad(images, (max_shift,) * 4)
    for _ in range(n_copies - 1):
        dy, dx = torch.randint(0, 2 * max_shift + 1, (2, N), generator=generator)
        rows = (torch.arange(H)[None] + dy[:, None])[:, :, None].expand(N, H, W)
        cols = (torch.arange(W)[None] + dx[:, None])[:, None, :].expand(N, H, W)
        out.append(padded[torch.arange(N)[:, None, None], rows, cols])
    return torch.cat(out)


def digits_plan(steps: int, lr: float) -> FitPlan:
    """A step budget with a short warm-up and a cosine, validation about 12 times per run."""
    every = max(1, steps // 12)
    return FitPlan(steps=steps, lr=lr, warmup_steps=max(1, steps // 20), weight_decay=0.0, eval_every=every,
                   checkpoint_every=every, patience=8, min_delta=1e-4)


def train_digits_vqvae(config: DigitsLASSConfig, images: torch.Tensor, validation: torch.Tensor, folder: Path,
                       device="cpu") -> VQVAE:
    """2-D VQ-VAE on ``images (N, 28, 28)`` (mixtures of batch halves are reconstructed too, sum
    mixing) through :func:`sepcore.train.fit.fit`, the objective of ``validation`` images at
    intervals; returns the best-validation model."""
    from sepcore.paths import training_tables

    seed_everything(config.seed)
    vq_config = VQVAEConfig.digits().replace(codebook_size=config.codebook_size, width=config.width,
                                             code_dim=config.code_dim)
    model = VQVAE(vq_config).to(device)
    generator = torch.Generator().manual_seed(config.seed)

    def loss_fn(step):
        batch = images[torch.randint(0, images.shape[0], (config.vq_batch,), generator=generator)].to(device)
        with set_mixing(IMAGE_MIXING):
            return model.losses(batch)["total"]

    def val_fn():
        with set_mixing(IMAGE_MIXING):
            return sum(float(model.losses(part.to(device))["total"]) * len(part)
                       for part in validation.split(256)) / len(validation)

    fit(model, loss_fn, val_fn, digits_plan(config.vq_steps, config.vq_lr), state_path=folder / "digits_vqvae.pt.state.pt",
        config={"train": config.to_dict(), "vqvae": vq_config.to_dict()},
        curve_path=training_tables(config.profile) / "digits_vqvae.csv",
        name="digits VQ-VAE")
    return model.eval()


def train_digits_prior(config: DigitsLASSConfig, codes: torch.Tensor, validation: torch.Tensor, folder: Path,
                       device="cpu") -> TransformerPrior:
    """The class-agnostic GPT prior over the raster-ordered codes ``(N, 49)`` through
    :func:`sepcore.train.fit.fit`, the NLL of the ``validation`` codes at intervals."""
    from sepcore.paths import training_tables
    from sepcore.train.prior_fit import prior_nll

    seed_everything(config.seed)
    prior_config = PriorConfig(vocab_size=config.codebook_size, block_size=codes.shape[1], n_layer=config.prior_layers,
                               n_head=config.prior_heads, n_embd=config.prior_width, source_class="digit")
    model = TransformerPrior(prior_config).to(device)
    generator = torch.Generator().manual_seed(config.seed)

    def loss_fn(step):
        batch = codes[torch.randint(0, codes.shape[0], (config.prior_batch,), generator=generator)].to(device)
        logits, _ = model(model.with_start(batch), use_cache=False)
        return torch.nn.functional.cross_entropy(logits.reshape(-1, config.codebook_size), batch.reshape(-1))

    fit(model, loss_fn, lambda: prior_nll(model, validation), digits_plan(config.prior_steps, 1e-3),
        state_path=folder / "digits_prior.pt.state.pt", config={"train": config.to_dict(), "prior": prior_config.to_dict()},
        curve_path=training_tables(config.profile) / "digits_prior.csv", name="digits prior")
    return model.eval()


def digit_training_images(config: DigitsLASSConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """``(training images with shifted copies, validation images)``: the training split of
    :class:`Digits` less every tenth image, which is held out (unshifted) for validation."""
    digits = Digits("train").images[:, 0]
    held_out = torch.arange(len(digits)) % 10 == 9
    generator = torch.Generator().manual_seed(config.seed + 1)
    return shifted_copies(digits[~held_out], config.n_shifted_copies, config.max_shift, generator), digits[held_out]


def train_digits(config: DigitsLASSConfig, folder: Path, device="cpu") -> dict:
    """Train and save ``digits_vqvae.pt``, ``digits_prior.pt``, ``digits_counts.pt`` in ``folder``
    (learning curves in ``tables/training/digits_*.csv``, a scratch folder outside ``default``);
    returns wall times."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    images, validation = digit_training_images(config)
    times = {}
    started = time.time()
    vq = train_digits_vqvae(config, images, validation, folder, device)
    times["vqvae_s"] = round(time.time() - started, 1)
    data = (f"sklearn digits 8x8 -> 28x28 bilinear, train split less every tenth image (validation), "
            f"{config.n_shifted_copies} shifted copies")
    save_checkpoint(folder / "digits_vqvae.pt", vq, metadata={"train_config": config.to_dict(), "data": data,
                                                               "wall_time_s": times["vqvae_s"]})
    started = time.time()
    with torch.no_grad():
        codes, val_codes = ([vq.encode(x[s:s + 512].to(device)).flatten(1).cpu() for s in range(0, len(x), 512)]
                            for x in (images, validation))
    prior = train_digits_prior(config, torch.cat(codes), torch.cat(val_codes), folder, device)
    times["prior_s"] = round(time.time() - started, 1)
    save_checkpoint(folder / "digits_prior.pt", prior, metadata={"train_config": config.to_dict(), "data": data,
                                                                 "wall_time_s": times["prior_s"]})
    started = time.time()
    generator = torch.Generator().manual_seed(config.seed + 2)
    a = torch.randint(0, len(images), (config.n_count_pairs,), generator=generator)
    b = torch.randint(0, len(images), (config.n_count_pairs,), generator=generator)
    with set_mixing(IMAGE_MIXING):
        likelihood = fit_count_likelihood(vq, images[a], images[b])
    save_counts(folder / "digits_counts.pt", likelihood, {"data": data, "pairs": config.n_count_pairs,
                                                          "mixing": IMAGE_MIXING})
    times["counts_s"] = round(time.time() - started, 1)
    return times


@dataclass
class AudioCountsConfig(ProfileConfig):
    n_crops: int = 512
    crop_length: int = 16384
    seed: int = 0

    @classmethod
    def quick(cls):
        return cls(n_crops=64, crop_length=8192)


def fit_audio_counts(vqvae: VQVAE, config: AudioCountsConfig, *, profile: str, data_root=None,
                     classes=("drums", "bass")) -> tuple[CountLikelihood, str]:
    """Counts over random training crops of the N ``classes`` and their mixture (package mixing).

    Crop ``r`` of every class forms mixture ``r`` (independent random crops, as the priors' data).
    """
    from sepcore.train.stems import stem_source

    sources = [stem_source(c, profile=profile, data_root=data_root) for c in classes]
    generator = torch.Generator().manual_seed(config.seed)
    length = config.crop_length - config.crop_length % vqvae.config.hop
    crops = [torch.cat([source.random_crops(min(64, config.n_crops - s), length, generator)
                        for s in range(0, config.n_crops, 64)]) for source in sources]
    return fit_count_likelihood(vqvae, *crops, batch=32), getattr(sources[0], "data", "")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("digits", "audio-counts"))
    parser.add_argument("--profile", default="default", choices=("quick", "default", "full"))
    parser.add_argument("--out-dir", default=str(CHECKPOINTS / "lass"))
    parser.add_argument("--vqvae", default=str(CHECKPOINTS / "latents" / "lqvae.pt"))
    parser.add_argument("--classes", nargs="+", default=["drums", "bass"], help="audio-counts: N >= 2 source classes")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    started = time.time()
    if args.what == "digits":
        print(train_digits(DigitsLASSConfig.for_profile(args.profile), Path(args.out_dir), args.device))
    else:
        vq = load_model(args.vqvae, expect_class=VQVAE, device=args.device).eval()
        likelihood, data = fit_audio_counts(vq, AudioCountsConfig.for_profile(args.profile), profile=args.profile,
                                            data_root=args.data_root, classes=tuple(args.classes))
        digest = file_sha256(args.vqvae)
        save_counts(Path(args.out_dir) / audio_counts_name(args.vqvae, args.classes), likelihood,
                    {"vqvae": Path(args.vqvae).name, "vqvae_sha256": digest, "data": data, "classes": list(args.classes),
                     "density_percent": likelihood.density, "config": AudioCountsConfig.for_profile(args.profile).to_dict()})
        print(f"density {likelihood.density:.4f}% nnz {likelihood.nnz}")
    print(f"wall time {time.time() - started:.1f} s")


if __name__ == "__main__":
    main()
