"""Frank's toy waveforms (paper 002, Section "Toy data"; settings of its reference code).

Each item has one source per waveform class: sine, square, sawtooth and triangle. Each source
draws its own piano key ``k ~ U[0.1, 64.9]`` (so ``f = 440 * 2**((k - 49) / 12)`` spans
about 26 Hz to 1.1 kHz), a phase uniform within one period and an amplitude ``~ U[0.8, 1.0]``.
Items are 48000 samples at 14700 Hz (3.27 s). The mixture follows the package's mixing
convention (the paper's is the mean).

Every item is a pure function of ``(seed, split, index)``, so datasets of any size are
reproducible without storing audio, and the manifest lists every drawn parameter.
:func:`similarity_table` measures how alike the classes are (how much of one another explains).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy import signal

from sepcore.mixing import get_mixing, mix
from sepcore.profiles import ProfileConfig
from sepcore.utils import stable_hash

WAVEFORMS = ("sine", "square", "sawtooth", "triangle")
SPLITS = {"train": 0, "validation": 1, "test": 2}


def key_to_frequency(key: np.ndarray | float) -> np.ndarray | float:
    """Piano key number to frequency in Hz; key 49 is A4 = 440 Hz."""
    return 440.0 * 2.0 ** ((np.asarray(key) - 49.0) / 12.0)


def waveform(kind: str, frequency: float, phase: float, amplitude: float, length: int, sample_rate: int) -> np.ndarray:
    """One periodic waveform, ``(length,)`` float32.

    Args:
        phase: in cycles, in ``[0, 1)``.
    """
    angle = 2 * np.pi * (frequency * np.arange(length) / sample_rate + phase)
    if kind == "sine":
        wave = np.sin(angle)
    elif kind == "square":
        wave = signal.square(angle)
    elif kind == "sawtooth":
        wave = signal.sawtooth(angle, width=1.0)
    elif kind == "triangle":
        wave = signal.sawtooth(angle, width=0.5)
    else:
        raise ValueError(f"unknown waveform {kind!r}; choose from {WAVEFORMS}")
    return (amplitude * wave).astype(np.float32)


def class_similarity(a: str, b: str, *, frequency: float = 220.0, length: int = 4096, sample_rate: int = 14700,
                     phases: int = 200) -> float:
    """The largest normalised correlation between waveform class ``a`` and class ``b`` at the same
    frequency over ``phases`` relative phases: how much of ``b`` one ``a`` can explain. For whole
    periods it tends to the share of the fundamental, e.g. ``2 sqrt(2) / pi`` for sine vs square."""
    x = waveform(a, frequency, 0.0, 1.0, length, sample_rate)
    return float(max(np.dot(x, y) / np.linalg.norm(x) / np.linalg.norm(y)
                     for y in (waveform(b, frequency, p / phases, 1.0, length, sample_rate) for p in range(phases))))


def similarity_table(classes=None, **kwargs) -> pd.DataFrame:
    """:func:`class_similarity` of every pair of ``classes`` (default: :data:`WAVEFORMS`), rows ``a``, columns ``b``."""
    classes = list(classes or WAVEFORMS)
    return pd.DataFrame([[class_similarity(a, b, **kwargs) for b in classes] for a in classes], index=classes,
                        columns=classes)


@dataclass
class ToyConfig(ProfileConfig):
    """Settings of the toy generator; defaults are the reference code's."""

    waveforms: tuple[str, ...] = WAVEFORMS
    sample_rate: int = 14700
    length: int = 48000
    key_range: tuple[float, float] = (0.1, 64.9)
    amplitude_range: tuple[float, float] = (0.8, 1.0)
    n_train: int = 5000
    n_test: int = 1500
    n_validation: int = 200
    seed: int = 0

    @classmethod
    def quick(cls):
        return cls(length=16384, n_train=256, n_test=8, n_validation=8)

    @classmethod
    def default(cls):
        return cls(n_train=5000, n_test=100, n_validation=50)

    @classmethod
    def full(cls):
        return cls()

    def __post_init__(self):
        unknown = set(self.waveforms) - set(WAVEFORMS)
        if unknown:
            raise ValueError(f"unknown waveforms {sorted(unknown)}; choose from {WAVEFORMS}")
        if not 0 < self.key_range[0] < self.key_range[1]:
            raise ValueError(f"key_range must be increasing and positive, got {self.key_range}")
        if self.sample_rate <= 2 * key_to_frequency(self.key_range[1]):
            raise ValueError(f"sample_rate {self.sample_rate} Hz is below Nyquist for key {self.key_range[1]}")


class ToyDataset(torch.utils.data.Dataset):
    """Toy mixtures: ``item["sources"]`` is ``(n_sources, length)``, ``item["mixture"]`` is ``(length,)``."""

    def __init__(self, config: ToyConfig | None = None, split: str = "train", n_items: int | None = None, mixing: str | None = None):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {tuple(SPLITS)}, got {split!r}")
        self.config = config or ToyConfig()
        self.split = split
        self.mixing = get_mixing(mixing)
        default_sizes = {"train": self.config.n_train, "validation": self.config.n_validation, "test": self.config.n_test}
        self.n_items = default_sizes[split] if n_items is None else n_items
        self.classes = tuple(self.config.waveforms)
        self.sample_rate = self.config.sample_rate

    def __len__(self) -> int:
        return self.n_items

    def parameters(self, index: int) -> dict:
        """The drawn parameters of item ``index``: per-source key, frequency, phase, amplitude."""
        if not 0 <= index < self.n_items:
            raise IndexError(f"index {index} out of range for {self.n_items} items")
        rng = np.random.default_rng([self.config.seed, SPLITS[self.split], index])
        n = len(self.classes)
        keys = rng.uniform(*self.config.key_range, size=n)
        return {
            "key": keys,
            "frequency": key_to_frequency(keys),
            "phase": rng.uniform(0.0, 1.0, size=n),
            "amplitude": rng.uniform(*self.config.amplitude_range, size=n),
        }

    def __getitem__(self, index: int) -> dict:
        params = self.parameters(index)
        sources = np.stack([
            waveform(kind, params["frequency"][k], params["phase"][k], params["amplitude"][k],
                     self.config.length, self.config.sample_rate)
            for k, kind in enumerate(self.classes)
        ])
        sources = torch.from_numpy(sources)
        return {"id": f"toy-{self.split}-{index:05d}", "sources": sources, "mixture": mix(sources, self.mixing)}

    def batch(self, indices) -> torch.Tensor:
        """Sources of several items, ``(batch, n_sources, length)``."""
        return torch.stack([self[i]["sources"] for i in indices])

    @property
    def manifest(self) -> pd.DataFrame:
        rows = []
        for index in range(self.n_items):
            params = self.parameters(index)
            for k, kind in enumerate(self.classes):
                rows.append({
                    "id": f"toy-{self.split}-{index:05d}", "index": index, "class": kind,
                    **{name: float(values[k]) for name, values in params.items()},
                })
        return pd.DataFrame(rows)

    @property
    def manifest_hash(self) -> str:
        return stable_hash({"config": self.config.to_dict(), "split": self.split, "n_items": self.n_items, "mixing": self.mixing})


def class_statistics(dataset: ToyDataset, n_items: int = 50) -> pd.DataFrame:
    """One row per class: amplitude statistics over the first ``n_items`` items (mean, std, min,
    max, rms) and the generator's frequencies over the whole split (min, median, max in Hz)."""
    batch = dataset.batch(range(min(len(dataset), n_items)))              # (batch, n_sources, time)
    manifest = dataset.manifest
    rows = []
    for k, name in enumerate(dataset.classes):
        values, frequencies = batch[:, k], manifest[manifest["class"] == name].frequency
        rows.append({"class": name, "mean": float(values.mean()), "std": float(values.std()),
                     "min": float(values.min()), "max": float(values.max()), "rms": float(values.pow(2).mean().sqrt()),
                     "f_min_hz": float(frequencies.min()), "f_median_hz": float(frequencies.median()),
                     "f_max_hz": float(frequencies.max())})
    return pd.DataFrame(rows)
