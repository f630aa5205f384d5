"""The flow priors chapter (notebooks/05_flows.md): its sizes per profile.

The chapter's measurements are :mod:`sepcore.models.priors` (cross-likelihood, discrimination,
score smoothness, leakage); the priors come from :func:`sepcore.pretrained.get_flow_priors`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sepcore.profiles import ProfileConfig


@dataclass
class FlowsChapterConfig(ProfileConfig):
    """``sample_length``: samples drawn from each toy prior; ``n_crops`` test crops of
    ``crop_length`` samples per class for the heat map and the score's smoothness;
    ``music_sample_length``: samples drawn from each Slakh-format prior (one second at 22050 Hz,
    a multiple of the flows' squeeze factor)."""

    sample_length: int = 4096
    n_crops: int = 32
    crop_length: int = 2048
    music_sample_length: int = 22016

    @classmethod
    def quick(cls):
        return cls(sample_length=1024, n_crops=8, crop_length=1024, music_sample_length=4096)
