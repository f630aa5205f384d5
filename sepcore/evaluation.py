"""One evaluation for every method: a dataset, a separator, and a per-chunk DataFrame.

Every chapter scores its methods with :func:`evaluate`, so every table uses the same chunks,
the same SDR (:func:`sepcore.metrics.sdr`: museval v4 image SDR, 2 s windows, median over
frames) and the same aggregation (:func:`summarise`: mean and median over chunks; :func:`wide_table`:
methods by sources).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import pandas as pd
import torch

from sepcore.metrics import DEFAULT_HOP_S, DEFAULT_WINDOW_S, nan_summary, sdr, si_sdr
from sepcore.utils import progress

SeparateFn = Callable[[torch.Tensor], torch.Tensor]


def evaluate(
    dataset: Sequence[dict],
    separate: SeparateFn,
    *,
    method: str,
    indices: Sequence[int] | None = None,
    classes: Sequence[str] | None = None,
    sample_rate: int | None = None,
    window_s: float = DEFAULT_WINDOW_S,
    hop_s: float = DEFAULT_HOP_S,
) -> pd.DataFrame:
    """Separate every chunk and score it.

    Args:
        dataset: items ``{"id", "sources": (n_sources, T), "mixture": (T,)}``.
        separate: ``mixture (T,) -> estimates (n_sources, T)``, in the dataset's class order.

    Returns:
        One row per (chunk, source): ``method, id, source, sdr, si_sdr, seconds, audio_seconds``;
        ``seconds`` is the wall time of the chunk's separation (shared by its sources).
    """
    classes = list(classes or dataset.classes)
    sample_rate = sample_rate or dataset.sample_rate
    indices = range(len(dataset)) if indices is None else indices
    rows = []
    for index in progress(indices, desc=f"evaluate {method}", leave=False):
        item = dataset[index]
        mixture, references = item["mixture"], item["sources"]
        started = time.perf_counter()
        estimates = separate(mixture)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        estimates = torch.as_tensor(estimates).detach().cpu().float()
        if estimates.shape != references.shape:
            raise ValueError(f"{method} returned {tuple(estimates.shape)} for {item['id']}, expected {tuple(references.shape)}")
        chunk_sdr = sdr(references, estimates, sample_rate, window_s, hop_s)
        chunk_si_sdr = si_sdr(references, estimates)
        for k, name in enumerate(classes):
            rows.append({
                "method": method, "id": item["id"], "source": name,
                "sdr": float(chunk_sdr[k]), "si_sdr": float(chunk_si_sdr[k]),
                "seconds": seconds, "audio_seconds": mixture.shape[-1] / sample_rate,
            })
    return pd.DataFrame(rows)


def evaluate_batched(dataset: Sequence[dict], separate_batch: Callable[[torch.Tensor], torch.Tensor], *, method: str,
                     batch_size: int = 25) -> tuple[pd.DataFrame, float, torch.Tensor]:
    """Separate every item of ``dataset`` (equal-length mixtures) with ``separate_batch``
    (``(B, T) -> (B, K, T)``) in batches of ``batch_size``, then score the estimates with
    :func:`evaluate`, in the same order.

    Returns ``(scores, seconds per separated second of the batched separation alone, estimates (n, K, T))``.
    """
    mixtures = torch.stack([dataset[i]["mixture"] for i in range(len(dataset))])
    started = time.perf_counter()
    estimates = torch.cat([separate_batch(mixtures[i:i + batch_size]) for i in range(0, len(mixtures), batch_size)])
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    queue = iter(zip(mixtures, estimates))

    def precomputed(mixture):
        expected, estimate = next(queue)
        assert torch.equal(mixture, expected), "evaluation order differs from separation order"
        return estimate

    scores = evaluate(dataset, precomputed, method=method)
    return scores, seconds / (mixtures.numel() / dataset.sample_rate), estimates


def wide_table(scores: pd.DataFrame, classes) -> pd.DataFrame:
    """Mean SDR per method (rows, in order of appearance in ``scores``) and source (columns, in
    ``classes`` order), from :func:`evaluate` frames."""
    summary = summarise(scores, metrics=("sdr",))
    wide = summary.pivot(index="method", columns="source", values="sdr_mean")[list(classes)]
    return wide.loc[list(dict.fromkeys(summary["method"]))]


def summarise(frame: pd.DataFrame, by: Sequence[str] = ("method", "source"), metrics: Sequence[str] = ("sdr", "si_sdr")) -> pd.DataFrame:
    """Mean / median / std over chunks per group, NaN chunks excluded and counted."""
    rows = []
    for keys, group in frame.groupby(list(by), sort=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        row = dict(zip(by, keys))
        for metric in metrics:
            stats = nan_summary(group[metric])
            row.update({f"{metric}_mean": stats["mean"], f"{metric}_median": stats["median"], f"{metric}_std": stats["std"]})
        row["n_chunks"] = group["id"].nunique()
        row["n_nan"] = int(group[metrics[0]].isna().sum())
        if "seconds" in group:
            per_chunk = group.drop_duplicates("id")
            row["seconds_per_second"] = per_chunk["seconds"].sum() / per_chunk["audio_seconds"].sum()
        rows.append(row)
    return pd.DataFrame(rows)
