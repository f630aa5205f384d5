"""The contract every separator class follows, and the registry's way to build one.

A separator turns one mixture ``(time,)`` into its sources ``(n_sources, time)``, in the order of
``classes``, at ``sample_rate`` (``None``: any rate). A subclass writes **one** of

* ``separate(mixture (T,)) -> (N, T)``, or
* ``separate_batch(mixtures (B, T)) -> (B, N, T)``,

and gets the other from this class (a loop, or a batch of one). Calling a separator separates.
``last`` holds the diagnostics of the latest call; each class documents what they are (the
Langevin levels, the LASS beams, the latent Bayes candidates), ``None`` before the first call.

``from_pretrained(sources, *, checkpoint, sample_rate, device, seed, **knobs)`` loads the
committed models and is what :mod:`sepcore.api` registers: its keyword arguments with defaults
are the method's knobs (see "The factory contract" there). A class with more than one committed
set of models names a classmethod per set (``LangevinSeparator.from_score_priors``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class Separator:
    """Base class of the separators; see the module docstring for the contract."""

    #: The source classes, in the order of the output rows.
    classes: tuple[str, ...] = ()
    #: The rate the separator works at, or ``None`` for any rate.
    sample_rate: int | None = None
    #: Diagnostics of the latest call (``None`` before the first).
    last = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own = {name for klass in cls.__mro__ if klass is not Separator for name in vars(klass)}
        if not own & {"separate", "separate_batch"}:
            raise TypeError(f"{cls.__name__} must define separate(mixture) or separate_batch(mixtures)")

    def separate(self, mixture: torch.Tensor) -> torch.Tensor:
        """``(time,) -> (n_sources, time)``: a batch of one."""
        return self.separate_batch(torch.as_tensor(mixture).reshape(1, -1))[0]

    def separate_batch(self, mixtures: torch.Tensor) -> torch.Tensor:
        """``(batch, time) -> (batch, n_sources, time)``: one mixture at a time."""
        return torch.stack([self.separate(mixture) for mixture in mixtures])

    def __call__(self, mixture: torch.Tensor) -> torch.Tensor:
        return self.separate(mixture)

    def described(self, sources: Sequence[str], sample_rate: int | None) -> Separator:
        """Set ``classes`` and ``sample_rate`` (the loaders call this) and return ``self``."""
        self.classes, self.sample_rate = tuple(sources), sample_rate
        return self

    @classmethod
    def from_pretrained(cls, sources: Sequence[str], *, checkpoint=None, sample_rate: int | None = None,
                        device="auto", seed: int = 0) -> Separator:
        raise NotImplementedError(f"{cls.__name__} has no committed models to load; build it from its parts")


class MaskedOutput(Separator):
    """Another separator's estimates used as masks on the mixture
    (:func:`sepcore.separation.masking.mask_with_waveforms`); ``last`` is the inner separator's."""

    def __init__(self, inner: Separator):
        self.inner = inner
        self.described(inner.classes, inner.sample_rate)

    @property
    def last(self):
        return self.inner.last

    def separate(self, mixture: torch.Tensor) -> torch.Tensor:
        from sepcore.separation.masking import mask_with_waveforms

        return mask_with_waveforms(mixture, self.inner.separate(mixture))
