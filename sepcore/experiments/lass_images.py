"""The LASS images chapter (notebooks/10_lass_images.md): paper 004 on mixtures of two digits.

* :class:`LassImagesChapterConfig`: the chapter's sizes per profile;
* :func:`density_table`: the count tensors' sizes and densities (paper 004, Table 1), for the
  digits and every committed audio count file;
* :func:`best_order_psnr`: PSNR per source, best over the two orders (one class-agnostic prior);
* :func:`compare_samplers`: greedy, beam, ancestral, top-k and top-p on the same mixtures (Table 3);
* :func:`against_baselines`: LASS with and without refinement (Eq. 12-13) against the equal split
  and an NMF baseline (Table 2).

Shapes: mixtures ``(M, 28, 28)`` in ``[0, 2]`` (sum mixture); references and estimates
``(M, 2, 28, 28)`` in ``[0, 1]``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from sepcore.metrics import permutation_invariant, psnr
from sepcore.profiles import ProfileConfig
from sepcore.separation.count_files import load_counts, load_counts_file
from sepcore.separation.image_baselines import NMFSeparator, average_separation
from sepcore.separation.lass_search import LASSConfig, LASSSeparator


@dataclass
class LassImagesChapterConfig(ProfileConfig):
    """Test mixtures, candidates per sampler, refinement steps (paper 004's 500) and NMF components."""

    n_mixtures: int = 100
    n_candidates: int = 32
    refine_steps: int = 500
    nmf_components: int = 40

    @classmethod
    def quick(cls):
        return cls(n_mixtures=8, n_candidates=8, refine_steps=40, nmf_components=16)


SAMPLER_LABELS = {"top_k": "top-k (k=16)", "top_p": "top-p (p=0.9)"}


def density_row(name: str, counts) -> dict:
    """One count tensor: its cells, non-zero entries, positions counted and density (%)."""
    return {"dataset": name, "n_sources": counts.n_sources, "K": counts.K, "tensor_cells": counts.K ** (counts.n_sources + 1),
            "nonzero": counts.nnz, "positions_counted": counts.n_positions, "density_percent": counts.density,
            "mean_tuples_per_mixture_code": counts.nnz / max(1, int((counts.k_ptr.diff() > 0).sum()))}


def density_table(likelihood, counts_folder: Path | None = None) -> pd.DataFrame:
    """The digits' counts, then (with ``counts_folder``) every ``audio_counts_*.pt`` (the paper's
    recipe) and ``counts_*.pt`` (every training track plus re-pairings) in it."""
    rows = [density_row("digits (28x28 -> 7x7)", likelihood)]
    if counts_folder is not None:
        for path in sorted(Path(counts_folder).glob("audio_counts_*.pt")):
            metadata = torch.load(path, weights_only=True).get("metadata", {})
            classes_counted = metadata.get("classes", ["drums", "bass"])          # files before N > 2 hold drums + bass
            rows.append(density_row(f"Slakh-format {' + '.join(classes_counted)} ({metadata.get('vqvae', path.stem)})",
                                    load_counts(path)))
        for path in sorted(Path(counts_folder).glob("counts_*.pt")):
            counts, metadata = load_counts_file(path)
            rows.append(density_row(f"Slakh-format {' + '.join(metadata['classes'])} ({metadata['codec']}, "
                                    f"{metadata['pairings']} pairings)", counts))
    return pd.DataFrame(rows)


def best_order_psnr(references: torch.Tensor, estimates: torch.Tensor) -> torch.Tensor:
    """PSNR per source ``(M, 2)``, best over the two orders (one class-agnostic prior)."""
    scores, _ = permutation_invariant(psnr, references.flatten(2), estimates.clamp(0, 1).flatten(2))
    return scores


def compare_samplers(vqvae, prior, likelihood, mixtures, references, *, n_candidates: int, seed: int = 0,
                     device="cpu") -> tuple[pd.DataFrame, dict]:
    """Every sampler with ``n_candidates`` rows and no refinement: ``(table, {sampler: estimates})``."""
    samplers = {"greedy": {}, "beam": {}, "ancestral": {}, "top_k": {"top_k": 16}, "top_p": {"top_p": 0.9}}
    rows, outputs = [], {}
    for method, extra in samplers.items():
        config = LASSConfig.images(method=method, n_rows=n_candidates, seed=seed, **extra)
        separator = LASSSeparator(vqvae, [prior, prior], likelihood, config, device=device)
        started = time.perf_counter()
        estimates = separator.separate_images(mixtures, refine_steps=0)
        seconds = time.perf_counter() - started
        outputs[method] = estimates
        s = best_order_psnr(references, estimates).mean(1)
        rows.append({"sampler": SAMPLER_LABELS.get(method, method), "kind": "MAP" if method in ("greedy", "beam") else "stochastic",
                     "psnr_mean": float(s.mean()), "psnr_std": float(s.std()), "seconds_per_mixture": seconds / len(mixtures)})
    return pd.DataFrame(rows), outputs


def against_baselines(vqvae, prior, likelihood, mixtures, references, train_images, samplers: pd.DataFrame,
                      top_k_estimates, *, n_candidates: int, refine_steps: int, nmf_components: int, seed: int = 0,
                      device="cpu") -> tuple[pd.DataFrame, torch.Tensor]:
    """The equal split, NMF on a dictionary of ``train_images``, LASS top-k (from
    :func:`compare_samplers`) and LASS top-k refined: ``(table, refined estimates)``."""
    started = time.perf_counter()
    nmf_estimates = NMFSeparator(train_images, n_components=nmf_components, seed=seed).separate(mixtures)
    nmf_seconds = time.perf_counter() - started
    config = LASSConfig.images(method="top_k", top_k=16, n_rows=n_candidates, seed=seed)
    separator = LASSSeparator(vqvae, [prior, prior], likelihood, config, device=device)
    started = time.perf_counter()
    refined = separator.separate_images(mixtures, refine_steps=refine_steps)
    refine_seconds = time.perf_counter() - started
    top_k_seconds = float(samplers.set_index("sampler").loc[SAMPLER_LABELS["top_k"], "seconds_per_mixture"]) * len(mixtures)
    methods = {"Average (m / 2)": (average_separation(mixtures), 0.0),
               "NMF (shared dictionary, 2-means split)": (nmf_estimates, nmf_seconds),
               "LASS (top-k)": (top_k_estimates, top_k_seconds),
               "LASS (top-k) + refinement": (refined, refine_seconds)}
    rows = []
    for name, (estimates, seconds) in methods.items():
        s = best_order_psnr(references, estimates).mean(1)
        rows.append({"method": name, "psnr_mean": float(s.mean()), "psnr_std": float(s.std()),
                     "seconds_per_mixture": seconds / len(mixtures)})
    return pd.DataFrame(rows), refined
