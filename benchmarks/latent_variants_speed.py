"""Benchmark: the latent variants of the LASS audio chapter on 3 s of 22.05 kHz audio, side by side.

    python -m benchmarks.latent_variants_speed --profile default [--repeats 3] [--threads 1,2]

Builds every variant of :func:`sepcore.experiments.latent_variants.build_variants` from the committed
checkpoints (beam search with 10 beams, or the beams chosen on validation for the spectral codec's
"counts x magnitudes" row; latent Bayes with B = 16 candidates), separates one mixture
of 65536 samples (2.97 s; the first drums+bass test chunk) with the masked output, and writes
``tables/benchmarks/latent_variants_speed``: the best and median wall time of ``separate`` per
variant and torch thread count, repeats interleaved across variants, and the target verdict
(real-time factor <= 1 on 2 threads, i.e. <= 3 s per 3 s). Quick profile: two variants, small searches (a smoke test).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import pandas as pd
import torch

from sepcore.book import default_data_root, table_root
from sepcore.data.slakh import SlakhMixtures, resolve_root
from sepcore.experiments.latent_variants import VariantSettings, build_variants
from sepcore.tables import write_table
from sepcore.utils import REPO_ROOT

SAMPLES = 65536                      # 2.97 s: the chapters' chunk, within the 1024-code context of the VQ-VAE priors


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", default="1,2")
    args = parser.parse_args(argv)
    started = time.time()
    settings = VariantSettings.chosen_on_validation(args.profile, REPO_ROOT / "checkpoints")
    which = {"LASS spectral, smoothed counts", "latent Bayes spectral"} if args.profile == "quick" else None
    variants = build_variants(settings, checkpoints=REPO_ROOT / "checkpoints", device="cpu", which=which)
    for variant in variants:
        variant.separator.config = variant.separator.config.replace(output="masked")
    test = SlakhMixtures(resolve_root(args.profile, default_data_root()), ("drums", "bass"), chunk_length=65536, max_chunks=1)
    mixture = torch.nn.functional.pad(test[0]["mixture"], (0, SAMPLES))[:SAMPLES]
    for variant in variants:
        variant.separator.separate(mixture[:4096])                          # warm-up
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        times = {v.label: [] for v in variants}
        for _ in range(args.repeats):
            for variant in variants:
                t0 = time.perf_counter()
                variant.separator.separate(mixture)
                times[variant.label].append(time.perf_counter() - t0)
        for variant in variants:
            best = min(times[variant.label])
            rows.append({"variant": variant.label, "codec": variant.codec_label, "threads": threads,
                         "audio_seconds": SAMPLES / 22050, "seconds_best": best,
                         "seconds_median": statistics.median(times[variant.label]),
                         "real_time_factor": best / (SAMPLES / 22050), "target_met (real-time factor <= 1 on 2 threads)":
                         bool(best <= SAMPLES / 22050) if threads == 2 else None,
                         "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
    frame = pd.DataFrame(rows)
    write_table(frame, table_root(args.profile) / "benchmarks" / "latent_variants_speed", profile=args.profile,
                parameters={**vars(args), "settings": settings.__dict__}, started=started,
                manifest_hash=test.manifest_hash, n_mixtures=1,
                notes="Wall time of separate() with the masked output (encode + search + decode + mask), "
                      "per variant and torch thread count; best of the repeats is the headline.")
    print(frame.to_string(index=False))
    return frame


if __name__ == "__main__":
    main()
