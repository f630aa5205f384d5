"""Where the latent models' training audio comes from: single-class crops of the embedded
Slakh-format training split (:class:`sepcore.data.slakh.SlakhStems`, see DATA_API.md).

``synthetic=True`` (or a missing data package) selects :class:`SyntheticStems`, a small
procedural stand-in (decaying noise bursts for drums, low harmonic notes for bass, plucked
mid-range notes for guitar) used by the tests and while no dataset is available; any
model trained on it says so in its checkpoint metadata (``data``).
"""

from __future__ import annotations

import math

import torch


class SyntheticStems:
    """Procedural single-class audio at ``sample_rate``: ``random_crops(n, length, generator) -> (n, length)``."""

    def __init__(self, source_class: str, sample_rate: int = 22050):
        if source_class not in ("drums", "bass", "guitar", "piano"):
            raise ValueError(f"unknown class {source_class!r}; expected drums, bass, guitar or piano")
        self.source_class, self.sample_rate = source_class, sample_rate

    def random_crops(self, n: int, length: int, generator: torch.Generator | None = None) -> torch.Tensor:
        sr = self.sample_rate
        t = torch.arange(length) / sr
        out = torch.zeros(n, length)
        note = int(0.25 * sr) if self.source_class == "drums" else int(0.5 * sr)
        n_notes = length // note + 1
        for b in range(n):
            offset = int(torch.randint(0, note, (1,), generator=generator))
            for k in range(n_notes):
                start = k * note - offset
                env_t = t - start / sr
                active = env_t >= 0
                if self.source_class == "drums":
                    kind = int(torch.randint(0, 3, (1,), generator=generator))
                    if kind == 0:      # kick: falling sine
                        sig = torch.sin(2 * math.pi * (50 * env_t + 60 * (1 - torch.exp(-env_t * 30)) / 30))
                        env = torch.exp(-env_t * 12)
                    else:              # snare / hat: noise
                        sig = torch.randn(length, generator=generator)
                        env = torch.exp(-env_t * (25 if kind == 1 else 60))
                    amp = 0.5
                else:
                    lo, hi = (28, 52) if self.source_class == "bass" else (52, 76)
                    key = float(torch.randint(lo, hi, (1,), generator=generator))
                    f0 = 440 * 2 ** ((key - 69) / 12)
                    harmonics = 4 if self.source_class == "bass" else 8
                    sig = sum(torch.sin(2 * math.pi * h * f0 * env_t) / h**1.5 for h in range(1, harmonics + 1))
                    env = torch.exp(-env_t * (2.5 if self.source_class == "bass" else 5.0))
                    amp = 0.3
                out[b] += torch.where(active, amp * env * sig, torch.zeros(()))
        return out.clamp(-1, 1)


def stem_source(source_class: str, *, split: str = "train", profile: str = "default", data_root=None,
                sample_rate: int = 22050, synthetic: bool = False):
    """An object with ``random_crops(n, length, generator) -> (n, length)`` and ``.data`` (a label)."""
    if not synthetic:
        try:
            from sepcore.data.render import ensure_dataset
            from sepcore.data.slakh import SlakhStems
        except ImportError:
            synthetic = True
    if synthetic:
        source = SyntheticStems(source_class, sample_rate)
        source.data = "synthetic stand-in (sepcore.train.stems.SyntheticStems)"
        return source
    from sepcore.book import default_data_root

    root = ensure_dataset(profile, data_root or default_data_root())
    source = SlakhStems(root, source_class, split=split, sample_rate=sample_rate)
    source.data = f"embedded Slakh-format {profile} ({root.name}), split {split}"
    return source
