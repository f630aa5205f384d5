"""The files that hold count likelihoods (:class:`~sepcore.separation.lass.CountLikelihood`).

Two formats, both plain ``torch.save`` dicts with a ``metadata`` dict beside the counts:

* **state files** (``{"likelihood": state_dict, "metadata"}``, :func:`save_counts` /
  :func:`load_counts`): the paper recipe's tables over random training crops
  (``checkpoints/lass/audio_counts_*.pt``, ``digits_counts.pt``; written by
  :mod:`sepcore.train.lass`);
* **compact files** (``{"counts": compact, "metadata"}``, :func:`compact_counts` /
  :func:`load_counts_file`): the counts of every training track with re-pairings
  (``checkpoints/lass/counts_*.pt``; written by :mod:`sepcore.train.counts`). Only the symmetric
  counts are stored, about 2 bytes per entry; ``log p`` is recomputed at load.

A file's metadata names the codec it was counted over by its sha256 (``vqvae_sha256``); loading
with ``expect_vqvae`` refuses a table counted over another codec, whose code indices would mean
other things. Written by hand: a storage format of this package, no library involved.
"""

from __future__ import annotations

from pathlib import Path

import torch

from sepcore.separation.lass import CountLikelihood
from sepcore.utils import file_sha256


def audio_counts_name(vqvae_path, classes=("drums", "bass")) -> str:
    """``audio_counts_<vqvae>.pt`` for drums + bass, ``audio_counts_<vqvae>_<c1>_<c2>_...pt`` otherwise."""
    suffix = "" if tuple(classes) == ("drums", "bass") else "_" + "_".join(classes)
    return f"audio_counts_{Path(vqvae_path).stem}{suffix}.pt"


def save_counts(path, likelihood: CountLikelihood, metadata: dict) -> None:
    """Write a state file atomically (a temporary file, then a rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"likelihood": likelihood.state_dict(), "metadata": metadata}, tmp)
    tmp.replace(path)


def _check_codec(path, metadata: dict, expect_vqvae) -> None:
    expected = metadata.get("vqvae_sha256")
    if expect_vqvae is None or expected is None:
        return
    if file_sha256(expect_vqvae) != expected:
        raise ValueError(f"{path} was counted over another codec than {expect_vqvae} (sha256 differs); recount it "
                         "(checkpoints/lass/README.md gives the commands)")


def load_counts(path, expect_vqvae=None) -> CountLikelihood:
    """Load a state file; with ``expect_vqvae`` (a checkpoint path), check it was counted over that file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"count likelihood {path} does not exist; train it with `python -m sepcore.train.lass "
                                "...` (see checkpoints/lass/README.md) or pass retrain=True to the chapter")
    saved = torch.load(path, weights_only=True)
    _check_codec(path, saved.get("metadata", {}), expect_vqvae)
    return CountLikelihood.from_state_dict(saved["likelihood"])


def _pack_small(values: torch.Tensor) -> dict:
    """Non-negative int64 values as uint8 plus the (index, value) pairs of those above 254."""
    big = torch.nonzero(values > 254).flatten()
    return {"u8": values.clamp(max=255).to(torch.uint8), "big_index": big.to(torch.int64), "big_value": values[big]}


def _unpack_small(packed: dict) -> torch.Tensor:
    values = packed["u8"].to(torch.int64)
    values[packed["big_index"]] = packed["big_value"]
    return values


def compact_counts(likelihood: CountLikelihood) -> dict:
    """The symmetric counts only (``log p`` is recomputed at load), about 2 bytes per entry: the sorted
    keys ``(tuple) K + k`` as gaps and the counts, each as uint8 with the rare large values kept
    beside them, so millions of entries stay within a checkpoint's size budget."""
    keys = likelihood.mixture_codes() + likelihood.K * likelihood.tuples
    order = torch.argsort(keys)
    keys = keys[order]
    gaps = torch.diff(keys, prepend=keys.new_zeros(1))
    return {"K": likelihood.K, "n_sources": likelihood.n_sources, "n_positions": likelihood.n_positions,
            "key_gaps": _pack_small(gaps), "counts": _pack_small(likelihood.counts[order])}


def load_compact_counts(saved: dict) -> CountLikelihood:
    """The :class:`CountLikelihood` of a :func:`compact_counts` dict."""
    keys = torch.cumsum(_unpack_small(saved["key_gaps"]), 0)
    return CountLikelihood.from_counts(keys, _unpack_small(saved["counts"]), saved["K"], saved["n_positions"],
                                       saved["n_sources"])


def load_counts_file(path, expect_vqvae=None) -> tuple[CountLikelihood, dict]:
    """``(CountLikelihood, metadata)`` of a compact file; ``expect_vqvae`` as in :func:`load_counts`."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    _check_codec(path, saved["metadata"], expect_vqvae)
    return load_compact_counts(saved["counts"]), saved["metadata"]
