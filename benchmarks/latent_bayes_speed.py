"""Benchmark: B candidates of latent Bayesian separation (paper 003) for one 3 s mixture.

    python -m benchmarks.latent_bayes_speed --profile default [--candidates 16] [--repeats 2]

Loads the committed LQ-VAE and drums/bass priors (``checkpoints/latents``), separates the first
drums+bass test chunk, and writes ``tables/benchmarks/latent_bayes_speed`` with the wall time
(best of ``repeats``), the seconds per separated second, and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import time

import pandas as pd
import torch

from sepcore.book import default_data_root, table_root
from sepcore.data.slakh import SlakhMixtures, resolve_root
from sepcore.separation.latent_bayes import LatentBayesConfig, LatentBayesSeparator
from sepcore.tables import write_table
from sepcore.train.latents import get_prior, get_vqvae


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--candidates", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--work-dir", default="_build/benchmarks")
    args = parser.parse_args(argv)
    started = time.time()
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kw = dict(profile=args.profile, work_dir=args.work_dir, device="cpu")
    vqvae = get_vqvae("lqvae", **kw)
    priors = [get_prior("lqvae", c, vqvae, **kw) for c in ("drums", "bass")]
    chunk = 16384 if args.profile == "quick" else 65536
    test = SlakhMixtures(resolve_root(args.profile, default_data_root()), ("drums", "bass"), chunk_length=chunk, max_chunks=1)
    mixture = test[0]["mixture"]
    separator = LatentBayesSeparator(vqvae, priors, LatentBayesConfig(n_candidates=args.candidates), device="cpu")
    rss_models = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times = []
    for _ in range(args.repeats):
        separator.sample(mixture)
        times.append(separator.last.seconds)
    best = min(times)
    frame = pd.DataFrame([{
        "B": args.candidates, "K": vqvae.config.codebook_size, "audio_seconds": chunk / test.sample_rate,
        "seconds_best": best, "seconds_all": ", ".join(f"{t:.2f}" for t in times),
        "seconds_per_separated_second": best / (chunk / test.sample_rate),
        "threads": torch.get_num_threads(), "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_models_MB": rss_start, "rss_after_setup_MB": rss_models,
    }])
    write_table(frame, table_root(args.profile) / "benchmarks" / "latent_bayes_speed", profile=args.profile,
                parameters=vars(args), started=started, manifest_hash=test.manifest_hash, n_mixtures=1,
                notes="Sampling + decoding of B candidates; CPU threads as given by OMP_NUM_THREADS.")
    print(frame.to_string(index=False))
    return frame


if __name__ == "__main__":
    main()
