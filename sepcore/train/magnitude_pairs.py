"""The magnitude likelihood's pair features, fitted on training audio (our extension).

    python -m sepcore.train.magnitude_pairs --codec checkpoints/latents/spectral.pt \
        --out checkpoints/lass/magnitude_pairs_spectral_drums_bass.pt

Why. :class:`sepcore.separation.magnitude_likelihood.MagnitudeLikelihood` predicts the mixture's
mel-band features at a frame from a code pair ``(i, j)`` as ``f(w (A_i + A_j))``, with ``A_k`` the
decoder's output for code ``k`` alone. Three things make that prediction biased: the decoder sees
no neighbouring frames, one code stands for frames of either class, and magnitudes of sources add
only up to the phases of their sum (``|X1 + X2| <= |X1| + |X2|``). Here each piece is replaced by a
mean over training frames, where the codes, the stems and the mixture are all known (no mixture is
separated: the sources' own codes and their sum, as the count likelihood of paper 004 uses them):

* ``A^c_k``: the mean band magnitude ``|X_c| P`` of class ``c`` over the frames whose code is
  ``k``, shrunk towards the decoded atom with ``ATOM_PRIOR_FRAMES`` pseudo-frames;
* ``b``: the mean residual ``f(|M| P) - f(w (A^1_i + A^2_j))`` per band (the phase loss);
* ``r_ij``: the residual's sum over the training frames of pair ``(i, j)`` over ``n_ij + alpha``,
  a mean shrunk to 0 for rare pairs, ``alpha`` chosen on the validation split by the residual's
  mean square.

The fitted feature of pair ``(i, j)`` is ``f(w (A^1_i + A^2_j)) + b + r_ij``, so the pair table is
ordered: ``i`` is a code of the first class. :func:`fit_pair_features` does the arithmetic on
tensors; :func:`training_frames` reads the frames of a split. The file also holds the validation
evidence: the residual's mean square and the rank of the true pair among all ``K^2`` pairs, for the
decoded atoms and for the fitted table. Written by hand: no library fits these tables.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from sepcore.checkpoints import load_model
from sepcore.separation.magnitude_likelihood import (
    MagnitudeLikelihood,
    code_atoms,
    fitted_pair_features,
    predicted_features,
)
from sepcore.train.prior_fit import file_digest
from sepcore.train.safe_paths import refuse_committed_path
from sepcore.utils import progress, save_atomic

#: Pseudo-frames of the decoded atom in each class mean (a code seen a few times stays near it).
ATOM_PRIOR_FRAMES = 5.0
#: The shrinkage of the pair residuals, chosen on validation.
SHRINKAGE_GRID = (10.0, 30.0, 100.0)


def fit_pair_features(likelihood, decoded: torch.Tensor, codes: torch.Tensor, magnitudes: torch.Tensor,
                      mixture_features: torch.Tensor, shrinkage: float) -> dict:
    """The fitted pieces from training frames (see the module docstring).

    Args:
        likelihood: gives the feature map ``features``.
        decoded: ``(K, B)`` the decoded atoms in bands (the shrinkage target of the class means).
        codes: ``(n, 2)`` long, the two sources' codes at each frame.
        magnitudes: ``(n, 2, B)`` the sources' band magnitudes; mixture_features: ``(n, B)``.
        shrinkage: ``alpha`` of the pair residuals.

    Returns ``{"atoms" (2, K, B), "bias" (B,), "pair_index" (m,), "pair_sums" (m, B),
    "pair_counts" (m,), "shrinkage"}`` over the ``m`` pairs seen.
    """
    K, B = decoded.shape
    sums = torch.zeros(2, K, B, dtype=torch.float64)
    counts = torch.zeros(2, K, dtype=torch.float64)
    for c in range(2):
        sums[c].index_add_(0, codes[:, c], magnitudes[:, c].double())
        counts[c].index_add_(0, codes[:, c], torch.ones(len(codes), dtype=torch.float64))
    atoms = ((sums + ATOM_PRIOR_FRAMES * decoded.double()[None]) / (counts[..., None] + ATOM_PRIOR_FRAMES)).float()
    pair = codes[:, 0] * K + codes[:, 1]
    residual = mixture_features - predicted_features(likelihood, atoms[0], atoms[1])[pair]
    bias = residual.mean(0)
    seen, inverse = torch.unique(pair, return_inverse=True)
    pair_sums = torch.zeros(len(seen), B, dtype=torch.float64).index_add_(0, inverse, (residual - bias).double())
    pair_counts = torch.bincount(inverse, minlength=len(seen)).double()
    return {"atoms": atoms, "bias": bias, "pair_index": seen, "pair_sums": pair_sums.float(),
            "pair_counts": pair_counts.float(), "shrinkage": float(shrinkage)}


def true_pair_ranks(table: torch.Tensor, codes: torch.Tensor, mixture_features: torch.Tensor) -> torch.Tensor:
    """``(n,)`` how many of the ``K^2`` pairs lie closer to each frame's features than its true pair."""
    K2 = table.shape[0]
    K = int(round(K2 ** 0.5))
    norms = table.pow(2).sum(1)
    ranks = []
    for start in range(0, len(codes), 4096):
        target = mixture_features[start:start + 4096]
        d2 = norms[None] - 2 * target @ table.T                       # ||target||^2 is the same for every pair
        true = (codes[start:start + 4096, 0] * K + codes[start:start + 4096, 1])[:, None]
        ranks.append((d2 < d2.gather(1, true)).sum(1))
    return torch.cat(ranks)


def evidence(table: torch.Tensor, codes, mixture_features) -> dict:
    """Validation numbers of one pair table: residual mean square and the true pair's rank."""
    K = int(round(table.shape[0] ** 0.5))
    ranks = true_pair_ranks(table, codes, mixture_features).float()
    residual = mixture_features - table[codes[:, 0] * K + codes[:, 1]]
    return {"residual_mse": float(residual.pow(2).mean()), "true_pair_first_percent": float((ranks == 0).float().mean() * 100),
            "true_pair_top10_percent": float((ranks < 10).float().mean() * 100),
            "true_pair_median_rank": float(ranks.median())}


@torch.no_grad()
def training_frames(codec, likelihood, classes, split: str, *, profile="default", data_root=None) -> tuple:
    """``(codes (n, 2), magnitudes (n, 2, B), mixture_features (n, B))`` of every chunk of ``split``
    (the same-track stems of the two classes and their mixture)."""
    from sepcore.data.render import ensure_dataset
    from sepcore.data.slakh import SlakhMixtures
    from sepcore.paths import data_root as default_data_root

    root = ensure_dataset(profile, data_root or default_data_root())
    dataset = SlakhMixtures(root, classes=tuple(classes), split=split, chunk_length=65536)
    codes, magnitudes, features = [], [], []
    for index in progress(range(len(dataset)), desc=f"{split} frames"):
        item = dataset[index]
        z = codec.encode(item["sources"])                                            # (2, S)
        S = z.shape[1]
        codes.append(z.T)
        magnitudes.append((codec.stft(item["sources"]).abs().float().transpose(1, 2) @ likelihood.bands)[:, :S].transpose(0, 1))
        mixture = codec.stft(item["mixture"].reshape(1, -1)).abs().float()[0].T @ likelihood.bands
        features.append(likelihood.features(mixture[:S]))
    return torch.cat(codes), torch.cat(magnitudes), torch.cat(features)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codec", required=True)
    parser.add_argument("--classes", nargs=2, default=["drums", "bass"])
    parser.add_argument("--out", required=True)
    parser.add_argument("--profile", default="default", choices=("quick", "default", "full"))
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args(argv)
    refuse_committed_path(args.out, args.profile)
    torch.manual_seed(0)
    started, cpu = time.time(), time.process_time()
    codec = load_model(args.codec).eval()
    likelihood = MagnitudeLikelihood(codec)
    decoded = code_atoms(codec) @ likelihood.bands
    train = training_frames(codec, likelihood, args.classes, "train", profile=args.profile, data_root=args.data_root)
    val = training_frames(codec, likelihood, args.classes, "validation", profile=args.profile, data_root=args.data_root)
    grid, fits = [], {}
    for alpha in SHRINKAGE_GRID:
        fits[alpha] = fit_pair_features(likelihood, decoded, *train, shrinkage=alpha)
        grid.append({"shrinkage": alpha, **evidence(fitted_pair_features(fits[alpha], likelihood), val[0], val[2])})
        print(grid[-1], flush=True)
    best = min(grid, key=lambda row: row["residual_mse"])
    metadata = {"codec": Path(args.codec).name, "codec_sha256": file_digest(args.codec), "classes": list(args.classes),
                "n_bands": likelihood.n_bands, "n_pairs": likelihood.K ** 2, "train_frames": int(len(train[0])), "validation_frames": int(len(val[0])),
                "shrinkage_grid": grid, "validation_decoded_atoms": evidence(likelihood.pair_features, val[0], val[2]),
                "validation_fitted": best, "wall_s": round(time.time() - started, 1),
                "cpu_s": round(time.process_time() - cpu, 1),
                "command": "python -m sepcore.train.magnitude_pairs " + " ".join(argv or __import__("sys").argv[1:])}
    out = save_atomic({**fits[best["shrinkage"]], "metadata": metadata}, args.out)
    print(f"{out}: {metadata['train_frames']} training frames, shrinkage {best['shrinkage']:g}; validation "
          f"decoded atoms {metadata['validation_decoded_atoms']}, fitted {best}; {metadata['cpu_s']} CPU-s")


if __name__ == "__main__":
    main()
