"""Benchmark: LASS beam search (paper 004 Algorithm 1) on 3 s of 22.05 kHz audio.

    python -m benchmarks.lass_speed --profile default [--beams 10] [--repeats 3] [--threads 1,2]

Loads the default models (``checkpoints/latents`` VQ-VAE and drums/bass priors, the counts of
``checkpoints/lass``), separates one mixture of 66150 samples (3.0 s; the first drums+bass test
chunk, cropped or zero-padded) and writes ``tables/benchmarks/lass_speed`` with the wall time of
``separate`` (encode + search + decode; best and median of ``repeats``), the real-time factor and
the target verdict (<= 3 s for 3 s on 2 CPU cores), one row per torch thread count in ``--threads``
and per path, measured side by side in one run (repeats interleaved across paths): ``one-by-one`` (the two priors called one after
the other) and ``batched`` (one :class:`sepcore.models.stacked_prior.StackedPriors` call per step,
the default). ``identical_codes`` says whether the batched search returned the same codes as the
one-by-one search; ``seconds_vs_one_by_one`` is the ratio of best times at the same thread count.
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
from sepcore.paths import CHECKPOINTS
from sepcore.pretrained import get_prior, get_vqvae
from sepcore.separation.count_files import load_counts
from sepcore.separation.lass_search import LASSConfig, LASSSeparator
from sepcore.tables import write_table
from sepcore.train.lass import AudioCountsConfig, fit_audio_counts

SAMPLES = 66150                      # 3.0 s at 22050 Hz


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--beams", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--autoencoder", default="vqvae")
    parser.add_argument("--work-dir", default="_build/benchmarks")
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts to measure")
    parser.add_argument("--paths", default="one-by-one,batched", help="comma-separated: one-by-one, batched")
    args = parser.parse_args(argv)
    started = time.time()
    kw = dict(profile=args.profile, work_dir=args.work_dir, device="cpu")
    vqvae = get_vqvae(args.autoencoder, **kw)
    priors = [get_prior(args.autoencoder, c, vqvae, **kw) for c in ("drums", "bass")]
    if args.profile == "default":
        likelihood = load_counts(CHECKPOINTS / "lass" / f"audio_counts_{args.autoencoder}.pt",
                                 expect_vqvae=CHECKPOINTS / "latents" / f"{args.autoencoder}.pt")
    else:
        likelihood, _ = fit_audio_counts(vqvae, AudioCountsConfig.for_profile(args.profile), profile=args.profile)
    test = SlakhMixtures(resolve_root(args.profile, default_data_root()), ("drums", "bass"), chunk_length=65536, max_chunks=1)
    mixture = torch.nn.functional.pad(test[0]["mixture"], (0, SAMPLES))[:SAMPLES]
    separators = {name: LASSSeparator(vqvae, priors, likelihood,
                                      LASSConfig(method="beam", n_rows=args.beams, batched_priors=name == "batched"),
                                      device="cpu") for name in ("one-by-one", "batched")}
    for separator in separators.values():
        separator.separate(mixture[:4096])                                 # warm-up
    seconds = SAMPLES / 22050
    rows, reference = [], {}
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        names = args.paths.split(",")
        times, loads = {n: [] for n in names}, {n: [] for n in names}
        for _ in range(args.repeats):                     # paths interleaved: a load spike hits both
            for name in names:
                t0 = time.perf_counter()
                separators[name].separate(mixture)
                times[name].append(time.perf_counter() - t0)
                loads[name].append(os.getloadavg()[0])
        for name in names:
            reference.setdefault(threads, {})[name] = (separators[name].last.codes, min(times[name]))
            rows.append(_row(args, vqvae, separators[name], name, threads, seconds, times[name], loads[name]))
    for row in rows:
        base = reference[row["threads"]].get("one-by-one")
        mine = reference[row["threads"]][row["path"]]
        row["identical_codes"] = None if base is None else bool(torch.equal(base[0], mine[0]))
        row["seconds_vs_one_by_one"] = None if base is None else mine[1] / base[1]
    frame = pd.DataFrame(rows)
    write_table(frame, table_root(args.profile) / "benchmarks" / "lass_speed", profile=args.profile,
                parameters=vars(args), started=started, manifest_hash=test.manifest_hash, n_mixtures=1,
                notes="Wall time of separate(): encode + Algorithm 1 (beam search) + decode, per torch thread count; "
                      "the machine may be shared (load_average_1min: the highest seen during the row's repeats), so the best of the "
                      "repeats is the headline; compare paths within one run.")
    print(frame.to_string(index=False))
    return frame


def _row(args, vqvae, separator, name, threads, seconds, times, loads) -> dict:
    best = min(times)
    return {
        "method": f"LASS beam ({args.beams} beams)", "path": name, "K": vqvae.config.codebook_size,
        "latent_steps": separator.last.codes.shape[-1], "audio_seconds": seconds, "threads": threads,
        "seconds_best": best, "seconds_median": statistics.median(times),
        "seconds_all": ", ".join(f"{t:.2f}" for t in times), "real_time_factor": best / seconds,
        "target_met (<= 3 s)": best <= 3.0, "load_average_1min": max(loads),
        "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


if __name__ == "__main__":
    main()
