"""Blind (training-free) baselines behind the package's one separator call.

>>> separator = BlindSeparator("hpss", classes=("drums", "bass"), sample_rate=22050)
>>> estimates = separator(mixture)            # (time,) -> (n_sources=2, time)

Every method computes two time-frequency masks of the mixture's STFT
(:mod:`sepcore.separation.blind.stft`) in a fixed *role* order, (foreground-like,
background-like):

=========== ============================== ====================== =========================
method      first output                   second output          source
=========== ============================== ====================== =========================
rpca        sparse part                    low-rank part          Huang et al. 2012
ica         high-centroid components       low-centroid           FastICA on ``V^T``
hpss        percussive                     harmonic               Fitzgerald 2010 (librosa)
repet       non-repeating foreground       repeating background   Rafii & Pardo 2012/2013
repet_sim   non-repeating foreground       similar-frame bkgd.    Rafii & Pardo 2012 (librosa)
ft2d        foreground                     2-D DFT peaks          Seetharaman et al. 2017
nmf         high-centroid components       low-centroid           NMF (scikit-learn)
=========== ============================== ====================== =========================

**Class assignment rule (fixed, no access to the truth).** Classes are ranked by how
percussive / foreground / high they are, :data:`FOREGROUND_ORDER` = drums, guitar, piano,
bass. Of the two classes of a mixture, the one ranked first receives the first output, the
other the second: drums <- percussive/foreground/sparse/high, bass <- harmonic/background/
low-rank/low; for guitar/bass, guitar is the foreground. Choosing the order per chunk by SDR
against the references would be an *oracle* assignment (:func:`oracle_assignment`), and is
labelled so wherever it is reported.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from sepcore.metrics import permutation_invariant, sdr
from sepcore.separation.base import Separator
from sepcore.separation.blind.factorisation import ica_masks, nmf_masks
from sepcore.separation.blind.ft2d import ft2d_masks
from sepcore.separation.blind.repet import repet_masks, repet_sim_masks
from sepcore.separation.blind.rpca import rpca_masks
from sepcore.separation.blind.stft import DEFAULT_STFT, STFTConfig, apply_masks, stft

FOREGROUND_ORDER = ("drums", "guitar", "piano", "bass")

#: Method name -> (first role, second role), the order in which the method returns its masks.
ROLES = {
    "rpca": ("sparse", "low-rank"),
    "ica": ("high", "low"),
    "hpss": ("percussive", "harmonic"),
    "repet": ("foreground", "background"),
    "repet_sim": ("foreground", "background"),
    "ft2d": ("foreground", "background"),
    "nmf": ("high", "low"),
}
METHODS = tuple(ROLES)


def compute_masks(method: str, mixture, sample_rate: int, config: STFTConfig = DEFAULT_STFT, **options) -> np.ndarray:
    """The method's two masks ``(2, freq, frames)`` in its role order (see :data:`ROLES`)."""
    if method not in ROLES:
        raise ValueError(f"unknown blind method {method!r}; choose one of {METHODS}")
    magnitude = stft(mixture, config).abs().numpy()                      # (freq, frames)
    frequencies = np.linspace(0, sample_rate / 2, magnitude.shape[0])
    if method == "hpss":
        import librosa

        harmonic, percussive = librosa.decompose.hpss(magnitude, mask=True, **options)
        return np.stack([percussive, harmonic]).astype(np.float64)
    if method == "rpca":
        return rpca_masks(magnitude, **options)
    if method == "repet":
        return repet_masks(magnitude, sample_rate, config.hop_length, config.n_fft, **options)
    if method == "repet_sim":
        return repet_sim_masks(magnitude, sample_rate, config.hop_length, **options)
    if method == "ft2d":
        return ft2d_masks(magnitude, sample_rate, config.n_fft, **options)
    if method == "ica":
        return ica_masks(magnitude, frequencies, **options)
    return nmf_masks(magnitude, frequencies, **options)


def class_order(classes: Sequence[str]) -> list[int]:
    """For each class, which role output it receives under the fixed rule.

    >>> class_order(("bass", "drums"))
    [1, 0]
    """
    classes = list(classes)
    if len(classes) != 2:
        raise ValueError(f"blind baselines separate two sources, got classes {classes}")
    unknown = [c for c in classes if c not in FOREGROUND_ORDER]
    if unknown:
        raise ValueError(f"no assignment rule for classes {unknown}; known: {FOREGROUND_ORDER}")
    ranks = [FOREGROUND_ORDER.index(c) for c in classes]
    return [0, 1] if ranks[0] < ranks[1] else [1, 0]


class BlindSeparator(Separator):
    """A blind baseline as a separator: ``mixture (time,) -> (n_sources=2, time)``.

    The outputs are in the order of ``classes``, assigned by the fixed rule of the module
    docstring, and scaled by the mixing convention so that ``mix(estimates) == mixture``.
    """

    def __init__(self, method: str, classes: Sequence[str] = ("drums", "bass"), sample_rate: int = 22050,
                 stft_config: STFTConfig = DEFAULT_STFT, mixing: str | None = None, **options):
        if method not in ROLES:
            raise ValueError(f"unknown blind method {method!r}; choose one of {METHODS}")
        self.method, self.classes, self.sample_rate = method, tuple(classes), sample_rate
        self.stft_config, self.mixing, self.options = stft_config, mixing, options
        self.order = class_order(self.classes)
        self.roles = tuple(ROLES[method][k] for k in self.order)

    def separate(self, mixture: torch.Tensor) -> torch.Tensor:
        mixture = torch.as_tensor(mixture).detach().cpu()
        if mixture.ndim != 1:
            raise ValueError(f"separate takes one mixture (time,), got shape {tuple(mixture.shape)}")
        masks = compute_masks(self.method, mixture, self.sample_rate, self.stft_config, **self.options)
        return apply_masks(mixture, masks[self.order], self.stft_config, self.mixing)

    @classmethod
    def from_pretrained(cls, sources: Sequence[str], *, method: str, sample_rate: int | None = None,
                        **_unused) -> BlindSeparator:
        """The registry's loader: nothing is trained, ``method`` names the baseline."""
        return cls(method, tuple(sources), sample_rate or 22050)

    def __repr__(self) -> str:
        return f"BlindSeparator({self.method!r}, classes={self.classes}, roles={self.roles})"


def separate(mixture: torch.Tensor, method: str, classes: Sequence[str] = ("drums", "bass"),
             sample_rate: int = 22050, **options) -> torch.Tensor:
    """One-call form of :class:`BlindSeparator`: ``(time,) -> (2, time)``."""
    return BlindSeparator(method, classes, sample_rate, **options).separate(mixture)


def oracle_assignment(estimates: torch.Tensor, references: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """ORACLE: reorder ``estimates (2, time)`` by the permutation with the best SDR against the truth."""
    _, permutation = permutation_invariant(sdr, references, estimates, sample_rate=sample_rate)
    return estimates[permutation]


__all__ = ["BlindSeparator", "separate", "compute_masks", "class_order", "oracle_assignment",
           "METHODS", "ROLES", "FOREGROUND_ORDER", "STFTConfig"]
