"""The ELBO chapter (notebooks/02_elbo.md): its sizes per profile and its list of numerical checks.

* :class:`ElboChapterConfig`: how many random posteriors, Monte Carlo samples and gradient batches
  test the identities of paper 000 (Eq. 8-16) and paper 002 (Eq. 18-21), per profile;
* :class:`NumericalChecks`: each identity recorded as ``value = reference`` within a tolerance (or
  ``value >= reference``), then one table with a ``holds`` column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from sepcore.profiles import ProfileConfig


@dataclass
class ElboChapterConfig(ProfileConfig):
    """``n_random_q`` random Gaussian posteriors test Eq. 12-13; ``n_mc`` samples estimate the ELBO;
    ``n_grad_batches`` batches of ``grad_batch`` samples test the reparameterised gradients;
    ``fit_steps`` steps fit the factorised posterior of the separation model of ``time`` samples."""

    n_random_q: int = 200
    n_mc: int = 200_000
    n_grad_batches: int = 50
    grad_batch: int = 4000
    fit_steps: int = 60
    time: int = 8

    @classmethod
    def quick(cls):
        return cls(n_random_q=20, n_mc=20_000, n_grad_batches=20, grad_batch=1000)

    @classmethod
    def full(cls):
        return cls(n_random_q=1000, n_mc=1_000_000, n_grad_batches=100, grad_batch=10000, fit_steps=100, time=16)


@dataclass
class NumericalChecks:
    """The chapter's checks, in the order they were recorded."""

    rows: list = field(default_factory=list)

    def record(self, name: str, value, reference, tolerance: float, relation: str = "=") -> None:
        """One check: ``value = reference`` within ``tolerance``, or ``value >= reference - tolerance``
        (``relation=">="``)."""
        if relation not in ("=", ">="):
            raise ValueError(f"relation must be '=' or '>=', got {relation!r}")
        value, reference = float(value), float(reference)
        difference = value - reference
        holds = abs(difference) <= tolerance if relation == "=" else difference >= -tolerance
        self.rows.append({"check": name, "value": value, "relation": relation, "reference": reference,
                          "difference": difference, "tolerance": tolerance, "holds": bool(holds)})

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)
