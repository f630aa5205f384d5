"""Fast batched SDR vs museval on the same chunks: speed ratio and agreement.

    python -m benchmarks.sdr_speed --profile default   # 100 chunks of 3 s at 22.05 kHz, 2 sources

Target (foundation issue): the fast path is >= 20x faster than museval on 100 chunks of 3 s and
agrees within 0.01 dB. Writes ``tables/benchmarks/sdr_speed`` (scratch folder for ``quick``).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pandas as pd
import torch

from sepcore.book import table_root
from sepcore.metrics import sdr, sdr_museval
from sepcore.profiles import check_profile
from sepcore.tables import write_table

SAMPLE_RATE = 22050
CHUNK = 65536  # 2.97 s, the LQ-VAE evaluation chunk


def music_like_chunks(n_chunks: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Bass-like tones and drum-like bursts with imperfect estimates, ``(n_chunks, 2, CHUNK)``."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(CHUNK) / SAMPLE_RATE
    f0 = 40 + 80 * torch.rand(n_chunks, 1, generator=g)
    bass = 0.4 * torch.sin(2 * math.pi * f0 * t) * (1 + 0.3 * torch.sin(2 * math.pi * 0.5 * t))
    beat = torch.rand(n_chunks, 1, generator=g) + 1.5
    drums = 0.3 * torch.randn(n_chunks, CHUNK, generator=g) * torch.exp(-((t * beat) % 1.0) * 12)
    refs = torch.stack([drums, bass], dim=1)
    leak = torch.rand(n_chunks, 2, 1, generator=g) * 0.3
    ests = (1 - leak) * refs + leak * refs.flip(1) + 0.02 * torch.randn(refs.shape, generator=g)
    return refs, ests


def run(profile: str, seed: int = 0) -> pd.DataFrame:
    n_chunks = {"quick": 10, "default": 100, "full": 100}[check_profile(profile)]
    refs, ests = music_like_chunks(n_chunks, seed)
    started = time.time()

    t0 = time.perf_counter()
    slow = np.stack([sdr_museval(refs[i], ests[i], SAMPLE_RATE) for i in range(n_chunks)])
    museval_s = time.perf_counter() - t0

    sdr(refs[:2], ests[:2], SAMPLE_RATE)  # warm-up
    t0 = time.perf_counter()
    fast = sdr(refs, ests, SAMPLE_RATE).numpy()
    fast_s = time.perf_counter() - t0

    rows = [{
        "n_chunks": n_chunks, "chunk_seconds": CHUNK / SAMPLE_RATE, "n_sources": 2,
        "museval_s": museval_s, "fast_s": fast_s, "speedup": museval_s / fast_s,
        "max_abs_diff_db": float(np.nanmax(np.abs(fast - slow))),
        "target_speedup": 20.0, "meets_target": bool(museval_s / fast_s >= 20 and np.nanmax(np.abs(fast - slow)) <= 0.01),
        "device": "cpu", "threads": torch.get_num_threads(),
    }]
    frame = pd.DataFrame(rows)
    write_table(frame, table_root(profile) / "benchmarks" / "sdr_speed", profile=profile,
                parameters={"seed": seed, "window_s": 2.0, "hop_s": 2.0, "sample_rate": SAMPLE_RATE},
                started=started, n_mixtures=n_chunks,
                notes="museval.evaluate (BSS Eval v4 images) in a loop vs sepcore.metrics.sdr batched in torch")
    return frame


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(run(args.profile, args.seed).to_string(index=False))


if __name__ == "__main__":
    main()
