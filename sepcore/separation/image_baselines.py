"""Image separation baselines of paper 004 Table 2: "Average" and NMF.

* **Average**: both estimates are the mixture divided by the mixing gain, ``x_k = m / (N w)``
  (``m / 2`` for the sum convention of BASIS/LASS): the separation a method that knows nothing
  would return.
* **NMF** (scikit-learn): a non-negative dictionary ``W`` (``n_components`` atoms) is learnt on
  training digits; a mixture gets non-negative activations ``h`` (``m ~ h W``, since sums of
  non-negative images stay in the cone) and the atom contributions ``h_c W_c`` are split into two
  groups by 2-means on their unit-normalised images. One shared dictionary knows no classes, so
  the split is the only separating step; PSNR is then taken over the better permutation.
"""

from __future__ import annotations

import numpy as np
import torch

from sepcore.mixing import mixing_weight


def average_separation(mixtures: torch.Tensor, n_sources: int = 2) -> torch.Tensor:
    """``(M, *dims) -> (M, n_sources, *dims)`` with every estimate ``m / (n_sources w)``."""
    estimate = mixtures / (n_sources * mixing_weight(n_sources))
    return estimate.unsqueeze(1).expand(-1, n_sources, *mixtures.shape[1:]).clone()


class NMFSeparator:
    """NMF dictionary on training images ``(N, H, W)``; ``separate(m (M, H, W)) -> (M, 2, H, W)``."""

    def __init__(self, train_images: torch.Tensor, n_components: int = 40, seed: int = 0, max_iter: int = 300):
        from sklearn.decomposition import NMF

        self.shape = train_images.shape[1:]
        self.model = NMF(n_components=n_components, init="nndsvda", max_iter=max_iter, random_state=seed)
        self.model.fit(train_images.reshape(train_images.shape[0], -1).clamp_min(0).numpy())
        self.seed = seed

    def separate(self, mixtures: torch.Tensor) -> torch.Tensor:
        from sklearn.cluster import KMeans

        flat = mixtures.reshape(mixtures.shape[0], -1).clamp_min(0).numpy()
        activations = self.model.transform(flat)                                # (M, C)
        atoms = self.model.components_                                           # (C, P)
        out = np.zeros((flat.shape[0], 2, flat.shape[1]))
        for r, h in enumerate(activations):
            parts = h[:, None] * atoms                                           # (C, P)
            active = np.nonzero(h > 1e-8)[0]
            if len(active) < 2:
                out[r, 0] = out[r, 1] = parts.sum(0) / 2
                continue
            unit = parts[active] / (np.linalg.norm(parts[active], axis=1, keepdims=True) + 1e-12)
            labels = KMeans(2, n_init=3, random_state=self.seed).fit_predict(unit)
            for k in range(2):
                out[r, k] = parts[active[labels == k]].sum(0)
        return torch.from_numpy(out).float().reshape(-1, 2, *self.shape)
