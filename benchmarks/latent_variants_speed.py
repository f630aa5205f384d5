"""Benchmark: the latent variants of the LASS audio chapter on 3 s of 22.05 kHz audio, side by side.

    python -m benchmarks.latent_variants_speed --profile default [--repeats 3] [--threads 1,2]

Builds every variant of :func:`sepcore.experiments.latent_variants.build_variants` from the committed
checkpoints (beam search with 10 beams, or the beams chosen on validation for the spectral codec's
"counts x magnitudes" row; latent Bayes with B = 16 candidates), separates one mixture
of 65536 samples (2.97 s; the first drums+bass test chunk) with the masked output (and, for the
variants whose rows are samples, the posterior mean of their masks and their posterior Wiener filter as rows of their own;
where validation chose several frame grids, those rows run on them and again on one grid), and writes
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
from sepcore.experiments.latent_variants import VariantSettings, build_variants, samples_rows
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
    timed = []                      # (label, codec, separator, estimate, shifts): sampled rows also as posterior estimates
    suffix = {"map": "", "mean": ", posterior mean", "wiener": ", posterior Wiener"}
    for variant in variants:
        chosen = getattr(variant.separator.config, "shifts", 1)
        for estimate in ("map", "mean", "wiener") if samples_rows(variant.separator) else ("map",):
            label = variant.label + suffix[estimate]
            # a posterior estimate on the chosen frame grids is timed beside one grid (a trade-off)
            grids = {chosen: f", {chosen} grids", 1: ", one grid"} if estimate != "map" and chosen > 1 else {1: ""}
            timed += [(label + tail, variant.codec_label, variant.separator, estimate, n) for n, tail in grids.items()]
    test = SlakhMixtures(resolve_root(args.profile, default_data_root()), ("drums", "bass"), chunk_length=65536, max_chunks=1)
    mixture = torch.nn.functional.pad(test[0]["mixture"], (0, SAMPLES))[:SAMPLES]

    def separate(separator, estimate, shifts, x):
        grids = {"shifts": shifts} if hasattr(separator.config, "shifts") else {}
        separator.config = separator.config.replace(output="masked", estimate=estimate, **grids)
        return separator.separate(x)

    for _, _, separator, estimate, shifts in timed:
        separate(separator, estimate, shifts, mixture[:4096])              # warm-up
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        times = {label: [] for label, *_ in timed}
        for _ in range(args.repeats):
            for label, _, separator, estimate, shifts in timed:
                t0 = time.perf_counter()
                separate(separator, estimate, shifts, mixture)
                times[label].append(time.perf_counter() - t0)
        for label, codec, *_ in timed:
            best = min(times[label])
            rows.append({"variant": label, "codec": codec, "threads": threads,
                         "audio_seconds": SAMPLES / 22050, "seconds_best": best,
                         "seconds_median": statistics.median(times[label]),
                         "real_time_factor": best / (SAMPLES / 22050), "target_met (real-time factor <= 1 on 2 threads)":
                         bool(best <= SAMPLES / 22050) if threads == 2 else None,
                         "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
    frame = pd.DataFrame(rows)
    write_table(frame, table_root(args.profile) / "benchmarks" / "latent_variants_speed", profile=args.profile,
                parameters={**vars(args), "settings": settings.__dict__}, started=started,
                manifest_hash=test.manifest_hash, n_mixtures=1,
                notes="Wall time of separate() with the masked output (encode + search + decode + mask; ', posterior "
                      "mean', ', posterior Wiener': every row decoded and masked; ', n grids': the mean over n searches on delayed "
                      "mixtures, as chosen on validation), per variant and torch thread count; "
                      "best of the repeats is the headline.")
    print(frame.to_string(index=False))
    return frame


if __name__ == "__main__":
    main()
