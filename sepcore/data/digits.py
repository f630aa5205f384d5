"""Digit images for image separation (BASIS, LASS on MNIST): offline by default, real MNIST when given.

- **Default, offline**: scikit-learn's bundled ``load_digits`` (1797 images of 8x8, grey levels
  0-16), scaled to [0, 1] and upsampled to ``size`` x ``size`` (28 by default, MNIST's size) by
  **bilinear interpolation** (``torch.nn.functional.interpolate(mode="bilinear",
  align_corners=False, antialias=False)``), which keeps values in [0, 1]. The split is a seeded
  permutation (``numpy.random.default_rng(0)``): 20% test (359 images), 80% train (1438), disjoint.
- **Real MNIST**: :func:`read_idx` reads the IDX files (``train-images-idx3-ubyte[.gz]`` etc.)
  from a folder given as ``root``; values are scaled to [0, 1]; ``size`` other than 28 is reached
  with the same bilinear interpolation.

:class:`DigitMixtures` pairs two images of a split: ``item = {"id", "sources": Tensor(2, 1, H, W),
"mixture": Tensor(1, H, W)}`` with ``mixture = sepcore.mixing.mix(sources, dim=0)``. The papers on
images (BASIS; LASS, paper 004) use the **sum** ``m = x1 + x2``: a chapter reproducing them sets
``sepcore.mixing.set_mixing("sum")``; the package default is the mean.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from sepcore.mixing import get_mixing, mix
from sepcore.utils import stable_hash

SPLITS = ("train", "test")
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (MNIST's format; gzip-compressed when the name ends in .gz)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise OSError(f"cannot read IDX file {path}: {error}") from error
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {data[:4].hex()}); expected MNIST's "
                         "train-images-idx3-ubyte / t10k-labels-idx1-ubyte files, optionally .gz")
    n_dims = data[3]
    shape = struct.unpack(f">{n_dims}I", data[4: 4 + 4 * n_dims])
    array = np.frombuffer(data, dtype=_IDX_TYPES[data[2]], offset=4 + 4 * n_dims)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape} but holds {array.size} values (truncated file?)")
    return array.reshape(shape)


def _find(root: Path, name: str) -> Path:
    for candidate in (root / name, root / f"{name}.gz", root / name.replace("-idx", ".idx")):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{root / name}[.gz] not found. Pass root= the folder holding MNIST's four IDX files "
                            f"({', '.join(n for pair in MNIST_FILES.values() for n in pair)}), or root=None "
                            "for the bundled scikit-learn digits.")


def upsample(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize ``(N, H, W) -> (N, size, size)``, ``align_corners=False``."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images[:, None], size=(size, size), mode="bilinear", align_corners=False)[:, 0]


def load_digits_images(split: str = "train", size: int = 28, root: str | Path | None = None,
                       seed: int = 0, test_fraction: float = 0.2) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``(N, size, size)`` float32 in [0, 1] and labels ``(N,)`` int64 of ``split``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if root is not None:
        root = Path(root)
        images_file, labels_file = MNIST_FILES[split]
        images = torch.from_numpy(read_idx(_find(root, images_file)).astype(np.float32) / 255.0)
        labels = torch.from_numpy(read_idx(_find(root, labels_file)).astype(np.int64))
    else:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        order = np.random.default_rng(seed).permutation(len(bunch.target))
        n_test = int(round(test_fraction * len(order)))
        chosen = np.sort(order[:n_test] if split == "test" else order[n_test:])
        images = torch.from_numpy(bunch.images[chosen].astype(np.float32) / 16.0)
        labels = torch.from_numpy(bunch.target[chosen].astype(np.int64))
    return upsample(images, size).clamp(0.0, 1.0).contiguous(), labels


class Digits(torch.utils.data.Dataset):
    """Single digits for training image priors: ``item = Tensor(1, size, size)`` in [0, 1].

    ``.images`` is ``(N, 1, size, size)``, ``.labels`` ``(N,)``.
    """

    def __init__(self, split: str = "train", size: int = 28, root: str | Path | None = None, seed: int = 0):
        images, self.labels = load_digits_images(split, size, root, seed)
        self.images = images[:, None]
        self.split, self.size, self.root, self.seed = split, size, root, seed
        self.source = "mnist-idx" if root is not None else "sklearn-digits-8x8-bilinear"

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index]


class DigitMixtures(torch.utils.data.Dataset):
    """Mixtures of two digits of one split.

    ``item = {"id", "sources": Tensor(2, 1, H, W), "mixture": Tensor(1, H, W)}``, the mixture from
    :func:`sepcore.mixing.mix` over the source axis (sum for BASIS/LASS, set by the caller).
    Pairs ``(a, b)``, ``a != b``, are drawn with ``numpy.random.default_rng(seed)``.
    """

    def __init__(self, split: str = "test", n_mixtures: int = 1000, size: int = 28,
                 root: str | Path | None = None, seed: int = 0, mixing: str | None = None,
                 distinct_labels: bool = False):
        self.digits = Digits(split, size, root, seed=0)
        self.classes = ("digit_a", "digit_b")
        self.mixing, self.seed, self.split = get_mixing(mixing), seed, split
        n = len(self.digits)
        rng = np.random.default_rng([seed, SPLITS.index(split)])
        pairs = []
        while len(pairs) < n_mixtures:
            a, b = (int(i) for i in rng.integers(n, size=2))
            labels = self.digits.labels
            if a == b or (distinct_labels and labels[a] == labels[b]):
                continue
            pairs.append((a, b))
        self.pairs = pairs
        labels = self.digits.labels.tolist()
        self.manifest = pd.DataFrame(
            [{"id": f"digits-{split}-{i:05d}", "index_a": a, "index_b": b, "label_a": labels[a], "label_b": labels[b]}
             for i, (a, b) in enumerate(pairs)])

    @property
    def manifest_hash(self) -> str:
        return stable_hash({"pairs": self.pairs, "source": self.digits.source, "size": self.digits.size,
                            "split": self.split, "mixing": self.mixing})

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        a, b = self.pairs[index]
        sources = torch.stack([self.digits.images[a], self.digits.images[b]])   # (2, 1, H, W)
        return {"id": self.manifest.id[index], "sources": sources, "mixture": mix(sources, self.mixing, dim=0)}
