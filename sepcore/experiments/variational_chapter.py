"""The variational chapter's sizes per profile (notebooks/07_variational.md)."""

from __future__ import annotations

from dataclasses import dataclass

from sepcore.profiles import ProfileConfig


@dataclass
class VariationalChapterConfig(ProfileConfig):
    """Toy test: ``n_mixtures`` mixtures of ``segment`` samples, the first ``n_langevin`` also through
    Langevin. Drums + bass test: chunks of ``music_chunk_length`` samples, at most ``music_n`` of
    them, the first ``music_n_langevin`` also through Langevin."""

    n_mixtures: int = 100
    segment: int = 1024
    n_langevin: int = 20
    music_chunk_length: int = 65536
    music_n: int = 24
    music_n_langevin: int = 2

    @classmethod
    def quick(cls):
        return cls(n_mixtures=4, n_langevin=4, music_chunk_length=8192, music_n=2, music_n_langevin=1)
