"""Benchmark: annealed Langevin on 3 s of 22.05 kHz drums+bass, flow priors beside score priors.

    python -m benchmarks.langevin_speed --profile default [--repeats 2] [--threads 1,2]

Separates the first drums+bass test chunk (65536 samples, 2.97 s) with the API methods
``langevin-slakh`` (flow priors) and ``langevin-score`` (score priors, the validation-chosen sampler
and output), both at their default schedules (8 levels; flows 20 steps per level, score priors 5), and writes
``tables/benchmarks/langevin_speed``: best and median wall time per method and torch thread count,
repeats interleaved, and the target verdict (<= 10 s per separated second on 2 threads). Quick
profile: 2 levels x 3 steps on 8192 samples (a smoke test).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import pandas as pd
import torch

from sepcore.api import build_separator
from sepcore.book import default_data_root, table_root
from sepcore.data.slakh import SlakhMixtures, resolve_root
from sepcore.tables import write_table

METHODS = ("langevin-slakh", "langevin-score")


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", default="1,2")
    args = parser.parse_args(argv)
    started = time.time()
    quick = args.profile == "quick"
    samples = 8192 if quick else 65536
    knobs = {"n_levels": 2, "steps_per_level": 3} if quick else {}
    test = SlakhMixtures(resolve_root(args.profile, default_data_root()), ("drums", "bass"), chunk_length=65536, max_chunks=1)
    mixture = torch.nn.functional.pad(test[0]["mixture"], (0, samples))[:samples]
    separators = {m: build_separator(m, ("drums", "bass"), sample_rate=22050, device="cpu", **knobs) for m in METHODS}
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        times = {m: [] for m in METHODS}
        for _ in range(args.repeats):
            for method, separate in separators.items():
                t0 = time.perf_counter()
                separate(mixture)
                times[method].append(time.perf_counter() - t0)
        for method in METHODS:
            best, seconds = min(times[method]), samples / 22050
            rows.append({"method": method, "threads": threads, "audio_seconds": seconds, "seconds_best": best,
                         "seconds_median": statistics.median(times[method]), "seconds_per_second": best / seconds,
                         "target_met (<= 10 s/s on 2 threads)": bool(best / seconds <= 10) if threads == 2 else None,
                         "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
    frame = pd.DataFrame(rows)
    write_table(frame, table_root(args.profile) / "benchmarks" / "langevin_speed", profile=args.profile,
                parameters={**vars(args), "knobs": knobs, "samples": samples}, started=started,
                manifest_hash=test.manifest_hash, n_mixtures=1,
                notes="Wall time of one separation per method and torch thread count; best of the repeats is the headline.")
    print(frame.to_string(index=False))
    return frame


if __name__ == "__main__":
    main()
