"""Benchmark: B candidates of latent Bayesian separation (paper 003) for one 3 s mixture.

    python -m benchmarks.latent_bayes_speed --profile default [--candidates 16] [--repeats 2] [--threads 1,2]

Loads the committed LQ-VAE and drums/bass priors (``checkpoints/latents``), separates the first
drums+bass test chunk, and writes ``tables/benchmarks/latent_bayes_speed``: per torch thread count
and per path (``one-by-one``: the priors called one after the other, the likelihood table rebuilt
every step; ``batched``: :class:`sepcore.models.stacked_prior.StackedPriors` and cached likelihood
factors, the default), measured side by side in one run (repeats interleaved across paths):

* ``seconds_best``: ``sample()`` = sampling the B candidates + decoding all ``2 B`` sources;
* ``sampling_seconds_best``: the sampling of the codes alone (issue 6 target: <= 3 s);
* ``separate_seconds_best``: ``separate()`` with ``alpha = 0`` (samples, then decodes only the chosen
  candidate), measured on the batched path;
* ``identical_codes``: the sampled codes equal those of the one-by-one path at the same seed.

The machine may be shared: the 1-minute load average is recorded with every row, and the ratios
``*_vs_one_by_one`` compare paths measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import pandas as pd
import torch

from sepcore.book import default_data_root, table_root
from sepcore.data.slakh import SlakhMixtures, resolve_root
from sepcore.pretrained import get_prior, get_vqvae
from sepcore.separation.latent_bayes import LatentBayesConfig, LatentBayesSeparator
from sepcore.tables import write_table

PATHS = {"one-by-one": False, "batched": True}


def _rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--candidates", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts to measure")
    parser.add_argument("--paths", default="one-by-one,batched", help=f"comma-separated, from {list(PATHS)}")
    parser.add_argument("--work-dir", default="_build/benchmarks")
    args = parser.parse_args(argv)
    started = time.time()
    rss_start = _rss()
    kw = dict(profile=args.profile, work_dir=args.work_dir, device="cpu")
    vqvae = get_vqvae("lqvae", **kw)
    priors = [get_prior("lqvae", c, vqvae, **kw) for c in ("drums", "bass")]
    chunk = 16384 if args.profile == "quick" else 65536
    test = SlakhMixtures(resolve_root(args.profile, default_data_root()), ("drums", "bass"), chunk_length=chunk, max_chunks=1)
    mixture = test[0]["mixture"]
    audio_seconds = chunk / test.sample_rate
    separators = {name: LatentBayesSeparator(vqvae, priors, LatentBayesConfig(n_candidates=args.candidates, batched_priors=flag),
                                             device="cpu") for name, flag in PATHS.items()}
    rss_models = _rss()
    rows, reference = [], {}
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        names = args.paths.split(",")
        runs = {n: {"times": [], "sampling": [], "separating": [], "loads": [], "codes": None} for n in names}
        for _ in range(args.repeats):                     # paths interleaved: a load spike hits both
            for name in names:
                run = runs[name]
                candidates = separators[name].sample(mixture)
                run["codes"] = candidates.codes
                run["times"].append(candidates.seconds)
                run["sampling"].append(candidates.sampling_seconds)
                if name == "batched":                   # separate() differs from sample() only in decoding
                    t0 = time.perf_counter()
                    separators[name].separate(mixture)
                    run["separating"].append(time.perf_counter() - t0)
                run["loads"].append(os.getloadavg()[0])
        for name in names:
            times, sampling, separating, loads = (runs[name][k] for k in ("times", "sampling", "separating", "loads"))
            reference.setdefault(threads, {})[name] = (runs[name]["codes"], min(times), min(sampling))
            rows.append({
                "path": name, "B": args.candidates, "K": vqvae.config.codebook_size, "audio_seconds": audio_seconds,
                "seconds_best": min(times), "seconds_all": ", ".join(f"{t:.2f}" for t in times),
                "seconds_per_separated_second": min(times) / audio_seconds,
                "sampling_seconds_best": min(sampling), "sampling_seconds_all": ", ".join(f"{t:.2f}" for t in sampling),
                "separate_seconds_best": min(separating) if separating else None,
                "target_met (sampling <= 3 s)": min(sampling) <= 3.0,
                "threads": threads, "load_average_1min": max(loads),
                "peak_rss_MB": _rss(), "rss_before_models_MB": rss_start, "rss_after_setup_MB": rss_models,
            })
    for row in rows:
        base = reference[row["threads"]].get("one-by-one")
        mine = reference[row["threads"]][row["path"]]
        row["identical_codes"] = None if base is None else bool(torch.equal(base[0], mine[0]))
        row["seconds_vs_one_by_one"] = None if base is None else mine[1] / base[1]
        row["sampling_vs_one_by_one"] = None if base is None else mine[2] / base[2]
    frame = pd.DataFrame(rows)
    write_table(frame, table_root(args.profile) / "benchmarks" / "latent_bayes_speed", profile=args.profile,
                parameters=vars(args), started=started, manifest_hash=test.manifest_hash, n_mixtures=1,
                notes="seconds = sample() (sampling + decoding all B candidates); sampling_seconds = the codes alone; "
                      "separate_seconds = separate() at alpha=0 (decodes the chosen candidate only). CPU, torch "
                      "threads as in the threads column; load_average_1min is the highest seen during the row's "
                      "repeats (the machine may be shared).")
    print(frame.to_string(index=False))
    return frame


if __name__ == "__main__":
    main()
