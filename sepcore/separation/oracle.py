"""Oracle masks and the codec ceiling. UPPER BOUNDS, not methods.

Both masks are computed from the true sources, so they bound what any mask-based method can
reach with the same STFT (:mod:`sepcore.separation.blind.stft`: Hann, 2048 / 512). With
``S_k = STFT(w s_k)`` the sources' contributions to the mixture ``X = sum_k S_k``:

- ideal ratio mask (IRM):  ``M_k = |S_k|^p / sum_j |S_j|^p``   (``p = 1`` magnitude ratio by
  default; ``p = 2`` is the ideal Wiener-like mask);
- ideal binary mask (IBM): ``M_k = 1[k = argmax_j |S_j|]``;

and the estimate is ``istft(M_k X) / w`` (:func:`apply_masks`).

Every separator in the package has the call ``separate(mixture) -> (n_sources, time)``; an
oracle needs the references as well, so :func:`oracle_separator` returns a separator that
looks the references up by the mixture's content (a dataset's mixtures are distinct). It
must only ever be labelled an oracle.

The codec ceiling (:func:`codec_oracle_separator`): ``D(Q(E(s_k)))``, each true source passed
through a VQ-VAE. A latent method (latent Bayes, LASS without refinement) returns decodes of code
sequences, and the codes of the true sources are the natural best such sequence, so this bounds
what the codec lets those methods reach (not strictly: another code sequence may score a higher
SDR, which is why it is labelled an oracle and not a proof).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import torch

from sepcore.mixing import mixing_weight
from sepcore.separation.blind.stft import DEFAULT_STFT, STFTConfig, apply_masks, ratio_masks, stft

ORACLES = ("irm", "ibm")


def ideal_masks(sources: torch.Tensor, kind: str = "irm", power: float = 1.0,
                config: STFTConfig = DEFAULT_STFT, mixing: str | None = None) -> torch.Tensor:
    """Oracle masks ``(n_sources, freq, frames)`` from the true ``sources (n_sources, time)``."""
    if kind not in ORACLES:
        raise ValueError(f"kind must be one of {ORACLES}, got {kind!r}")
    sources = torch.as_tensor(sources)
    magnitudes = (stft(sources, config) * mixing_weight(sources.shape[0], mixing)).abs().numpy()
    if kind == "irm":
        return torch.from_numpy(ratio_masks(magnitudes, power=power))
    winner = magnitudes.argmax(0)
    return torch.from_numpy((np.arange(sources.shape[0])[:, None, None] == winner[None]).astype(np.float64))


def ideal_mask_separate(mixture: torch.Tensor, sources: torch.Tensor, kind: str = "irm", power: float = 1.0,
                        config: STFTConfig = DEFAULT_STFT, mixing: str | None = None) -> torch.Tensor:
    """ORACLE estimate ``(n_sources, time)`` of ``sources`` from ``mixture (time,)``."""
    masks = ideal_masks(sources, kind, power, config, mixing)
    return apply_masks(mixture, masks, config, mixing)


def _key(mixture: torch.Tensor) -> str:
    array = torch.as_tensor(mixture).detach().cpu().to(torch.float32).contiguous().numpy()
    return hashlib.sha1(array.tobytes()).hexdigest()


def _reference_lookup(dataset: Sequence[dict], indices: Sequence[int] | None):
    """``mixture -> its true sources`` over ``dataset[indices]``, keyed by the mixture's content."""
    indices = range(len(dataset)) if indices is None else indices
    references = {}
    for index in indices:
        item = dataset[index]
        references[_key(item["mixture"])] = item["sources"]

    def lookup(mixture: torch.Tensor) -> torch.Tensor:
        key = _key(mixture)
        if key not in references:
            raise KeyError("an oracle separator got a mixture that is not in its dataset; build it on the dataset you evaluate.")
        return references[key]

    return lookup


def oracle_separator(dataset: Sequence[dict], kind: str = "irm", power: float = 1.0,
                     indices: Sequence[int] | None = None, **options):
    """ORACLE separator for ``dataset``: ``mixture (time,) -> (n_sources, time)`` using its references.

    Raises ``KeyError`` naming the fix when asked for a mixture that is not in ``dataset``.
    """
    lookup = _reference_lookup(dataset, indices)

    def separate(mixture: torch.Tensor) -> torch.Tensor:
        return ideal_mask_separate(mixture, lookup(mixture), kind, power, **options)

    separate.oracle = True
    return separate


def codec_oracle_separator(dataset: Sequence[dict], vqvae, indices: Sequence[int] | None = None):
    """ORACLE codec ceiling: ``mixture (time,) -> D(Q(E(s_k))) (n_sources, time)`` from the true sources.

    ``vqvae``: a 1-D :class:`sepcore.models.vqvae.VQVAE`; each source is zero-padded to a multiple
    of its hop, encoded, decoded and cropped back.
    """
    lookup = _reference_lookup(dataset, indices)

    @torch.no_grad()
    def separate(mixture: torch.Tensor) -> torch.Tensor:
        sources = torch.as_tensor(lookup(mixture)).float()
        return vqvae.decode_cropped(vqvae.encode_padded(sources), sources.shape[-1]).float().cpu()

    separate.oracle = True
    return separate
