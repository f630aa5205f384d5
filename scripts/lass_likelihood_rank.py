"""Where the likelihood ranks the true pair of codes: is the pruned slice or the likelihood the limit?

    OMP_NUM_THREADS=1 python scripts/lass_likelihood_rank.py [--chunks 16] [--no-write]

LASS on the spectral codec scores, at every frame, each pair ``(i, j)`` of the two sources' codes
by its likelihood (counts x magnitudes, with the weights chosen on validation) and keeps the best
``top_pairs`` for the search. On every third of the chapter's 48 drums + bass **validation**
chunks this encodes the true sources (an oracle diagnostic: it reads the answer) and reports the
share of frames where the true pair is among the likelihood's best 1, 10, 100, 1000 and
``top_pairs`` pairs, and the median rank (the chunks and settings of ``lass_posterior_checks.py``). If the true pair falls outside the kept slice, the
pruning is the limit; if it is inside but far from the top, the priors must pick it out of the
pairs ranked above it, and an estimate that scores above the truth is the model's error.
Writes ``tables/lass/likelihood_rank``.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch
from lass_posterior_checks import validation_setup  # this folder: the same chunks and separator

from sepcore.paths import tables_root
from sepcore.separation.lass_search import LASSSeparator
from sepcore.tables import write_table


def true_pair_ranks(separator: LASSSeparator, mixture: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
    """``(S,)`` rank of the true pair among all ``K^2`` pairs of each frame (0: the likelihood's best)."""
    likelihood, codec = separator.likelihood, separator.vqvae
    likelihood.bind(codec.pad_to_hop(mixture.reshape(1, -1)))
    with torch.no_grad():
        true = codec.encode(codec.pad_to_hop(sources))                               # (2, S)
    table = likelihood.bound
    S = min(true.shape[1], table.shape[0])
    pair = true[0, :S] * likelihood.K + true[1, :S]
    score = table[torch.arange(S), pair]
    return (table[:S] > score[:, None]).sum(1)


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=16, help="every third of the 48 validation chunks")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    started = time.time()
    validation, indices, separator = validation_setup(args.chunks)
    kept = separator.likelihood.top_pairs
    ranks = torch.cat([true_pair_ranks(separator, validation[i]["mixture"], validation[i]["sources"])
                       for i in indices]).float()
    table = pd.DataFrame([{"among the best": n, "frames_percent": 100 * float((ranks < n).float().mean())}
                          for n in sorted({1, 10, 100, 1000, kept})])
    table["kept_by_the_search"] = table["among the best"] == kept
    print(table.round(1).to_string(index=False))
    print(f"median rank {float(ranks.median()):.0f} of {separator.likelihood.K ** 2} pairs, {len(ranks)} frames")
    if not args.no_write:
        write_table(table, tables_root("default") / "lass" / "likelihood_rank", profile="default",
                    parameters={**vars(args), "top_pairs": kept, "frames": len(ranks),
                                "median_rank": float(ranks.median()), "pairs": separator.likelihood.K ** 2},
                    started=started, manifest_hash=validation.manifest_hash, n_mixtures=len(indices),
                    notes="ORACLE diagnostic on validation chunks: the rank of the true (drums, bass) code pair under "
                          "LASS's likelihood (spectral codec, counts x magnitudes), per frame")
    return table


if __name__ == "__main__":
    main()
