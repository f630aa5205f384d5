"""A likelihood of the mixture's magnitude frames given a pair of spectral codes (our extension).

Why. LASS (paper 004) scores a code pair ``(i, j)`` by how often the mixture's *code* ``k``
followed it in training, ``p(k | i, j)``. On the phase-free codec
(:mod:`sepcore.models.spectral_codec`) the mixture's code equals the code of the sources' mean
embedding at only ~6 % of frames, so one 8-bit code per frame says little about the pair. The
mixture frame itself says much more: magnitudes of sources add up roughly linearly,
``|M_s| ~ w (|X1_s| + |X2_s|)`` (``w`` the mixing weight of :mod:`sepcore.mixing`), so each pair
predicts the frame and is scored by how well it does (a Gaussian on log features, in the spirit
of paper 003's decoder likelihood and of factorial VQ):

    log p(m_s | i, j) = - || f(w (A_i + A_j)) - f(|M_s| P) ||^2 / (2 sigma^2 n_bands)

where ``A_k = D(k) P`` is the decoded magnitude frame of code ``k`` alone (the centre frame of a
constant sequence of ``k``: the decoder's context of neighbouring frames is ignored),
``P`` a mel filterbank of ``n_bands`` bands (non-negative weights, so additivity is kept; from
``torchaudio``), and ``f(x) = log(1 + x / floor)`` the codec's feature map with its floor summed
per band. The normaliser does not depend on ``(i, j)`` and is left out.

Cost. ``f(w (A_i + A_j))`` for all ``K^2`` pairs is one ``(K^2, n_bands)`` table per codec;
per mixture the scores of all pairs at all ``S`` frames are one matrix product
``(K^2, n_bands) x (n_bands, S)`` (``||a - b||^2 = ||a||^2 - 2 a.b + ||b||^2``), about 1 GFLOP
for K = 256, 64 bands and 3 s of audio. The search keeps the best ``top_pairs`` pairs per frame
(the interface of :class:`sepcore.separation.lass.CountLikelihood`: ``gather_slices`` of a
frame's index). Written by hand: no library scores code pairs against a spectrogram.

Fitted pairs. ``f(w (A_i + A_j))`` ignores the decoder's context, the class of each source and
the phases of the sum. :mod:`sepcore.train.magnitude_pairs` fits the pair features on training
frames instead (class means of the band magnitudes per code, the mean residual per band and a
shrunk mean residual per pair); :func:`fitted_pair_features` builds the ``(K^2, n_bands)`` table
from that file and ``MagnitudeLikelihood(..., fitted=...)`` scores with it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from sepcore.mixing import mixing_weight


@torch.no_grad()
def code_atoms(codec, context: int = 17) -> torch.Tensor:
    """``(K, F)`` decoded magnitude frame of each code alone: the centre of a constant sequence of ``context`` codes."""
    K = codec.config.codebook_size
    device = codec.codebook.device
    codes = torch.arange(K, device=device)[:, None].expand(K, context)
    return codec.decode_magnitude(codes)[:, :, context // 2].float().cpu()


def mel_bands(codec, n_bands: int) -> torch.Tensor:
    """``(F, n_bands)`` mel filterbank (``torchaudio``) on the codec's STFT bins."""
    import torchaudio

    c = codec.config
    return torchaudio.functional.melscale_fbanks(c.n_bins, 0.0, c.sample_rate / 2, n_bands, c.sample_rate,
                                                 norm=None, mel_scale="htk")


def predicted_features(likelihood, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Band magnitudes per code of the two sources, ``first, second (K, n_bands)`` -> ``(K^2, n_bands)``
    features ``f(w (first_i + second_j))`` of pair ``i K + j``."""
    K = first.shape[0]
    return likelihood.features((mixing_weight(2) * (first[:, None] + second[None])).float()).reshape(K * K, -1)


def fitted_pair_features(fitted: dict, likelihood) -> torch.Tensor:
    """``(K^2, n_bands)`` pair features from a :mod:`sepcore.train.magnitude_pairs` fit:
    ``f(w (A^1_i + A^2_j)) + b + sum_ij / (n_ij + alpha)`` (the last term only for pairs seen in training)."""
    table = predicted_features(likelihood, fitted["atoms"][0], fitted["atoms"][1]) + fitted["bias"]
    correction = fitted["pair_sums"] / (fitted["pair_counts"][:, None] + fitted["shrinkage"])
    return table.index_add(0, fitted["pair_index"], correction.to(table.dtype))


def fitted_pairs_path(lass_folder, classes) -> Path:
    """Where :mod:`sepcore.train.magnitude_pairs` writes the fit of ``classes`` (two names)."""
    return Path(lass_folder) / f"magnitude_pairs_spectral_{'_'.join(classes)}.pt"


def load_fitted_pairs(lass_folder, codec_path, classes) -> dict:
    """The :mod:`sepcore.train.magnitude_pairs` fit of ``classes`` in ``lass_folder``
    (:func:`fitted_pairs_path`), checked to be fitted over ``codec_path`` for ``classes``."""
    from sepcore.utils import file_sha256

    path = fitted_pairs_path(lass_folder, classes)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; fit it with `python -m sepcore.train.magnitude_pairs "
                                f"--codec {codec_path} --classes {' '.join(classes)} --out {path}` (a few CPU-minutes)")
    fitted = torch.load(path, map_location="cpu", weights_only=True)
    metadata = fitted["metadata"]
    if list(metadata["classes"]) != list(classes):
        raise ValueError(f"{path} was fitted for {metadata['classes']}, not {list(classes)}")
    if file_sha256(codec_path) != metadata["codec_sha256"]:
        raise ValueError(f"{path} was fitted over another codec than {codec_path} (sha256 differs); refit it")
    return fitted


def relative_counts_weight(counts_lambda: float, magnitude_weight: float) -> float:
    """The ``counts_weight`` of :class:`MagnitudeLikelihood` that keeps the counts at weight
    ``counts_lambda`` (their own lambda, as LASS uses them alone) in a search that multiplies the
    whole likelihood by ``magnitude_weight``: the search scores ``mu * (log p_mag + w log p_counts)``,
    so ``w = lambda / mu``."""
    return float(counts_lambda) / float(magnitude_weight)


class MagnitudeLikelihood:
    """Pair scores of one codec, not yet bound to a mixture; :meth:`bind` gives the per-frame tables.

    With ``counts`` (a :class:`sepcore.separation.lass_smoothed.SmoothedCountLikelihood` of the same
    codec) the two pieces of evidence multiply: ``log p = log p_mag(m_s | i, j) + counts_weight *
    log p(k_s | i, j)``, ``k_s`` the mixture's code at frame ``s``.

    Args:
        codec: a :class:`sepcore.models.spectral_codec.SpectralCodec`.
        sigma: the Gaussian's width in log-feature units (the likelihood weight of the search
            plays the same role; both are chosen on validation).
        n_bands: mel bands of the comparison; top_pairs: pairs kept per frame for the search.
        counts, counts_weight: the count likelihood multiplied in, and its weight relative to this one.
        fitted: a :mod:`sepcore.train.magnitude_pairs` file's contents; its pair features replace the
            decoded atoms' (``i`` then indexes the first class).
    """

    binds_mixture = True        # bind(mixture) scores its frames; the search passes frame indices as codes

    n_sources = 2

    def __init__(self, codec, sigma: float = 1.0, n_bands: int = 64, top_pairs: int = 8192, counts=None,
                 counts_weight: float = 1.0, fitted: dict | None = None):
        if not hasattr(codec, "decode_magnitude"):
            raise TypeError("MagnitudeLikelihood needs a codec with decode_magnitude (the spectral codec)")
        self.codec, self.sigma, self.n_bands = codec, float(sigma), int(n_bands)
        self.K = codec.config.codebook_size
        self.top_pairs = min(int(top_pairs), self.K * self.K)
        self.bands = mel_bands(codec, n_bands)                                    # (F, n_bands)
        self.floor = codec.config.floor * self.bands.sum(0).clamp_min(1e-6)      # (n_bands,)
        if fitted is None:
            atoms = code_atoms(codec) @ self.bands                                # (K, n_bands)
            self.pair_features = predicted_features(self, atoms, atoms)           # (K^2, n_bands)
        elif fitted["atoms"].shape != (2, self.K, n_bands):
            raise ValueError(f"fitted pair features of shape {tuple(fitted['atoms'].shape)} do not match this codec "
                             f"and band count (2, {self.K}, {n_bands})")
        else:
            self.pair_features = fitted_pair_features(fitted, self)               # (K^2, n_bands)
        self.pair_norms = self.pair_features.pow(2).sum(1)                        # (K^2,)
        self.counts, self.counts_weight = counts, float(counts_weight)
        self.device = torch.device("cpu")
        self.bound: torch.Tensor | None = None

    def features(self, band_magnitude: torch.Tensor) -> torch.Tensor:
        return torch.log1p(band_magnitude / self.floor)

    def scores(self, target: torch.Tensor) -> torch.Tensor:
        """``target (S, n_bands)`` band features of the mixture -> ``(S, K * K)`` log-likelihood of pair
        ``i K + j`` at every frame (one matrix product: ``||a - b||^2 = ||a||^2 - 2 a.b + ||b||^2``)."""
        d2 = self.pair_norms[None, :] - 2 * target @ self.pair_features.T + target.pow(2).sum(1, keepdim=True)
        return -d2.clamp_min(0) / (2 * self.sigma ** 2 * self.n_bands)

    @torch.no_grad()
    def frame_log_likelihood(self, mixture: torch.Tensor) -> torch.Tensor:
        """``mixture (1, T)`` (``T`` a multiple of the hop) -> ``(S, K * K)`` log-likelihood of every pair at every frame."""
        magnitude = self.codec.stft(mixture.to(self.codec.codebook.device)).abs()[0].float().cpu()   # (F, S)
        return self.scores(self.features(magnitude.T @ self.bands))

    def bind(self, mixture: torch.Tensor) -> torch.Tensor:
        """Score every pair against ``mixture (1, T)``; returns the frame indices ``(1, S)`` the search
        passes as "mixture codes" to :meth:`gather_slices` and :meth:`log_prob`."""
        table = self.frame_log_likelihood(mixture)
        if self.counts is not None:
            with torch.no_grad():
                mix_codes = self.codec.encode(mixture.to(self.codec.codebook.device))[0].cpu()[: table.shape[0]]
            count_table = self.counts.table[:, :, mix_codes].permute(2, 0, 1).reshape(-1, self.K * self.K)   # (S, K^2)
            table = table + self.counts_weight * count_table
        self.bound = table
        slice_log_p, pairs = table.topk(self.top_pairs, dim=1)                                     # (S, L)
        self.slice_log_p = slice_log_p.to(self.device)
        self.slice_i, self.slice_j = (pairs // self.K).to(self.device), (pairs % self.K).to(self.device)
        return torch.arange(table.shape[0], device=self.device)[None]

    def _check_bound(self):
        if self.bound is None:
            raise RuntimeError("bind(mixture) first: this likelihood scores the frames of one mixture")

    def gather_slices(self, frames: torch.Tensor):
        """``frames (R,)`` -> ``(i (R, L), j (R, L), log p (R, L))``: the best pairs of each frame."""
        self._check_bound()
        return self.slice_i[frames], self.slice_j[frames], self.slice_log_p[frames]

    def log_prob(self, i: torch.Tensor, j: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Log-likelihood of pairs ``(i, j)`` at ``frames`` of the bound mixture (every pair, kept or not)."""
        self._check_bound()
        return self.bound[frames.long().cpu(), (i.long() * self.K + j.long()).cpu()].to(i.device)

    def remap_unseen(self, codebook: torch.Tensor) -> torch.Tensor:
        return torch.arange(self.K)

    def to(self, device) -> MagnitudeLikelihood:
        self.device = torch.device(device)
        return self
