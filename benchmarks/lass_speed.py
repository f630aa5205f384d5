"""Benchmark: LASS beam search (paper 004 Algorithm 1) on 3 s of 22.05 kHz audio.

    python -m benchmarks.lass_speed --profile default [--beams 10] [--repeats 3] [--threads 1,2]

Loads the default models (``checkpoints/latents`` VQ-VAE and drums/bass priors, the counts of
``checkpoints/lass``), separates one mixture of 66150 samples (3.0 s; the first drums+bass test
chunk, cropped or zero-padded) and writes ``tables/benchmarks/lass_speed`` with the wall time of
``separate`` (encode + search + decode; best and median of ``repeats``), the real-time factor and
the target verdict (<= 3 s for 3 s on 2 CPU cores), one row per torch thread count in ``--threads``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

import pandas as pd
import torch

from sepcore.book import default_data_root, table_root
from sepcore.data.slakh import SlakhMixtures, resolve_root
from sepcore.separation.lass_search import LASSConfig, LASSSeparator
from sepcore.tables import write_table
from sepcore.train.lass import CHECKPOINTS, AudioCountsConfig, fit_audio_counts, load_counts
from sepcore.train.latents import get_prior, get_vqvae

SAMPLES = 66150                      # 3.0 s at 22050 Hz


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--beams", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--autoencoder", default="vqvae")
    parser.add_argument("--work-dir", default="_build/benchmarks")
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts to measure")
    args = parser.parse_args(argv)
    started = time.time()
    kw = dict(profile=args.profile, work_dir=args.work_dir, device="cpu")
    vqvae = get_vqvae(args.autoencoder, **kw)
    priors = [get_prior(args.autoencoder, c, vqvae, **kw) for c in ("drums", "bass")]
    if args.profile == "default":
        likelihood = load_counts(CHECKPOINTS / f"audio_counts_{args.autoencoder}.pt",
                                 expect_vqvae=CHECKPOINTS.parent / "latents" / f"{args.autoencoder}.pt")
    else:
        likelihood, _ = fit_audio_counts(vqvae, AudioCountsConfig.for_profile(args.profile), profile=args.profile)
    test = SlakhMixtures(resolve_root(args.profile, default_data_root()), ("drums", "bass"), chunk_length=65536, max_chunks=1)
    mixture = torch.nn.functional.pad(test[0]["mixture"], (0, SAMPLES))[:SAMPLES]
    separator = LASSSeparator(vqvae, priors, likelihood, LASSConfig(method="beam", n_rows=args.beams), device="cpu")
    separator.separate(mixture[:4096])                                     # warm-up
    seconds = SAMPLES / 22050
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            separator.separate(mixture)
            times.append(time.perf_counter() - t0)
        best = min(times)
        rows.append({
            "method": f"LASS beam ({args.beams} beams)", "K": vqvae.config.codebook_size,
            "latent_steps": separator.last.codes.shape[-1], "audio_seconds": seconds, "threads": threads,
            "seconds_best": best, "seconds_median": statistics.median(times),
            "seconds_all": ", ".join(f"{t:.2f}" for t in times), "real_time_factor": best / seconds,
            "target_met (<= 3 s)": best <= 3.0, "load_average_1min": os.getloadavg()[0],
            "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        })
    frame = pd.DataFrame(rows)
    write_table(frame, table_root(args.profile) / "benchmarks" / "lass_speed", profile=args.profile,
                parameters=vars(args), started=started, manifest_hash=test.manifest_hash, n_mixtures=1,
                notes="Wall time of separate(): encode + Algorithm 1 (beam search) + decode, per torch thread count; "
                      "the machine may be shared (see load_average_1min), so the best of the repeats is the headline.")
    print(frame.to_string(index=False))
    return frame


if __name__ == "__main__":
    main()
