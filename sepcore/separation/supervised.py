"""A supervised separator: a Conv-TasNet trained on (mixture, sources) pairs. UPPER BOUND.

It sees the true sources during training, unlike every generative method of the book, so it
is reported as a *supervised* reference (paper 003 and 004 quote Demucs and Conv-TasNet the
same way). The model is trained on random mixtures of the same embedded stems the priors are
trained on (``SlakhStems``, train split), see :mod:`sepcore.train.supervised`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from sepcore.checkpoints import load_model
from sepcore.models.convtasnet import ConvTasNet
from sepcore.separation.base import Separator
from sepcore.utils import REPO_ROOT, resolve_device

DEFAULT_CHECKPOINT = REPO_ROOT / "checkpoints" / "supervised" / "convtasnet.pt"


class SupervisedSeparator(Separator):
    """``separate(mixture (time,)) -> (n_sources, time)``: the model's outputs for ``classes``, in that order."""

    def __init__(self, model: ConvTasNet, classes: Sequence[str] = ("drums", "bass"), device: str = "auto"):
        missing = [c for c in classes if c not in model.classes]
        if missing:
            raise ValueError(f"the model has outputs {model.classes}; it cannot separate {missing}")
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.classes = tuple(classes)
        self.index = [model.classes.index(c) for c in classes]

    @torch.no_grad()
    def separate(self, mixture: torch.Tensor) -> torch.Tensor:
        mixture = torch.as_tensor(mixture, dtype=torch.float32)
        if mixture.ndim != 1:
            raise ValueError(f"separate takes one mixture (time,), got shape {tuple(mixture.shape)}")
        estimates = self.model(mixture[None].to(self.device))[0]            # (n_classes, time)
        return estimates[self.index].cpu()

    @classmethod
    def from_pretrained(cls, sources: Sequence[str], *, checkpoint=None, sample_rate: int | None = None,
                        device="auto", **_unused) -> SupervisedSeparator:
        """The committed Conv-TasNet (its sample rate checked against ``sample_rate``)."""
        sample_rate = sample_rate or 22050
        return load_supervised(checkpoint or DEFAULT_CHECKPOINT, tuple(sources), sample_rate, device).described(
            sources, sample_rate)


def load_supervised(path: str | Path = DEFAULT_CHECKPOINT, classes: Sequence[str] = ("drums", "bass"),
                    sample_rate: int = 22050, device: str = "auto") -> SupervisedSeparator:
    """Load the committed checkpoint (errors name the file and the training command)."""
    model = load_model(path, expect={"sample_rate": sample_rate}, expect_class=ConvTasNet)
    return SupervisedSeparator(model, classes, device)
