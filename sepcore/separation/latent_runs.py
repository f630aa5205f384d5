"""Experiment plumbing for the latent chapters: sample candidates once per mixture, score many selectors.

:class:`CandidateBank` draws the ``B`` candidates of a :class:`LatentBayesSeparator` once per
mixture (keyed by the mixture's content) and exposes separators for every selection rule, so
Table 1 (rejection), Table 2 (alpha) and the oracle best-of-B are scored on the *same*
candidates through :func:`sepcore.evaluation.evaluate`. The oracle needs the references and is
labelled as such wherever it is reported.
"""

from __future__ import annotations

import hashlib

import pandas as pd
import torch

from sepcore.evaluation import evaluate
from sepcore.separation.latent_bayes import (
    Candidates,
    LatentBayesSeparator,
    oracle_best,
    rejection_scores,
)


def _key(mixture: torch.Tensor) -> str:
    return hashlib.sha1(mixture.detach().cpu().float().numpy().tobytes()).hexdigest()


class CandidateBank:
    """Candidates per mixture for one separator; ``separator_for(alpha)`` / ``oracle_separator()``."""

    def __init__(self, separator: LatentBayesSeparator, dataset, sample_rate: int):
        self.separator, self.dataset, self.sample_rate = separator, dataset, sample_rate
        self.candidates: dict[str, Candidates] = {}
        self.references: dict[str, torch.Tensor] = {}

    def fill(self, indices) -> None:
        """Sample the candidates of every chunk in ``indices`` (and remember the references for the oracle)."""
        from sepcore.utils import progress

        for index in progress(list(indices), desc="sample candidates", leave=False):
            item = self.dataset[index]
            key = _key(item["mixture"])
            self.references[key] = item["sources"]
            if key not in self.candidates:
                self.candidates[key] = self.separator.sample(item["mixture"])

    def get(self, mixture: torch.Tensor) -> Candidates:
        key = _key(mixture)
        if key not in self.candidates:
            self.candidates[key] = self.separator.sample(mixture)
        return self.candidates[key]

    def separator_for(self, alpha: float):
        def separate(mixture):
            cands = self.get(mixture)
            return cands.estimates[int(rejection_scores(cands, mixture, alpha).argmax())]
        return separate

    def oracle_separator(self):
        """ORACLE: best candidate per source by SDR against the true sources."""
        def separate(mixture):
            return oracle_best(self.get(mixture), self.references[_key(mixture)], self.sample_rate)
        return separate

    def sampling_seconds(self) -> float:
        """Total wall time spent sampling and decoding the stored candidates."""
        return sum(c.seconds for c in self.candidates.values())

    def evaluate(self, method: str, indices, *, alphas=(0.0,), oracle: bool = True) -> pd.DataFrame:
        """Scores of ``method (rej alpha=a)`` for each alpha and ``method (oracle best-of-B)``.

        The ``seconds`` column is replaced by each chunk's sampling time (the selection itself
        is instantaneous), so seconds per separated second are those of the sampler.
        """
        self.fill(indices)
        frames = []
        for alpha in alphas:
            frames.append(evaluate(self.dataset, self.separator_for(alpha), method=f"{method} (rej α={alpha:g})",
                                   indices=indices))
        if oracle:
            frames.append(evaluate(self.dataset, self.oracle_separator(), method=f"{method} (ORACLE best-of-B)",
                                   indices=indices))
        frame = pd.concat(frames, ignore_index=True)
        seconds = {}
        for index in indices:
            item = self.dataset[index]
            seconds[item["id"]] = self.candidates[_key(item["mixture"])].seconds
        frame["seconds"] = frame["id"].map(seconds)
        return frame
