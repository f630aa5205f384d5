"""The LASS audio chapter's sizes and validation grids per profile (notebooks/11_lass_audio.md)."""

from __future__ import annotations

from dataclasses import dataclass

from sepcore.profiles import ProfileConfig


@dataclass
class LassAudioChapterConfig(ProfileConfig):
    """Chunks of ``chunk_length`` samples for the samplers' comparison (``n_sampler_chunks``), the
    paper-setting table (``n_main_chunks``) and three sources (``n_chunks3``); refinement steps; the
    variants' test chunks (the results chapter's drums/bass chunks, all when ``None``) and
    validation chunks; the validation grids of the likelihood weight lambda, the mask power, the
    magnitude likelihood's weight mu and beams, and the sampled variant's (sampler, rows, temperature)."""

    chunk_length: int = 65536
    n_sampler_chunks: int = 5
    n_main_chunks: int = 10
    refine_steps: int = 200
    n_chunks3: int = 2
    n_variant_chunks: int | None = 40
    n_validation_chunks: int = 48
    lambdas: tuple = (1.0, 3.0, 10.0, 30.0)
    mask_powers: tuple = (0.5, 1.0, 2.0)
    magnitude_weights: tuple = (1.0, 10.0, 100.0, 300.0, 1000.0)
    magnitude_beams: tuple = (10,)
    mean_samplers: tuple = (("ancestral", 32, 1.0), ("ancestral", 32, 1.3), ("top_p", 32, 1.0))

    @classmethod
    def quick(cls):
        return cls(chunk_length=16384, n_sampler_chunks=2, n_main_chunks=2, refine_steps=20, n_chunks3=1,
                   n_variant_chunks=1, n_validation_chunks=1, lambdas=(1.0, 3.0), mask_powers=(1.0, 2.0),
                   magnitude_weights=(1.0, 3.0), magnitude_beams=(2,), mean_samplers=(("ancestral", 2, 1.0),))

    @classmethod
    def full(cls):
        return cls(n_variant_chunks=None, n_validation_chunks=96)
