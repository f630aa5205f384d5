"""Approximate posteriors on [-1, 1] for variational separation (paper 002, "Modeling the posteriors").

Audio samples live in ``[-1, 1]``, so paper 002 gives each source a posterior with that support:

* :class:`ScaledBeta` (toy data): ``x = 2 u - 1`` with ``u ~ Beta(alpha, beta)``. Sampling is
  reparameterised with the *implicit* gradients of ``torch.distributions.Beta.rsample``
  (Figurnov et al. 2018); the density carries the Jacobian of the affine map,
  ``log q(x) = log Beta((x + 1) / 2; alpha, beta) - log 2``.
* :class:`TruncatedNormal` (music): ``N(loc, scale^2)`` restricted to ``[-1, 1]``, sampled by the
  inverse CDF ``x = loc + scale * Phi^-1(Phi(a) + u (Phi(b) - Phi(a)))`` with
  ``a = (-1 - loc) / scale``, ``b = (1 - loc) / scale`` and ``u ~ U(0, 1)``. The computation runs in
  float64 in log space (``log Phi``) on the side of the interval nearer the lower tail (the normal
  is symmetric), so intervals far in either tail neither underflow nor cancel; the inverse of
  ``log Phi`` is refined by Newton steps where ``Phi^-1(exp(.))`` would underflow, and its gradient
  is the implicit one (one Newton step kept on the graph).

Both work elementwise on parameters of any shape ``(...)``, e.g. ``(batch, time)``, and return
samples of shape ``sample_shape + (...)``.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Beta

LOG_2 = math.log(2.0)
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
#: samples of the Beta are kept this far (in u) from 0 and 1 so that log q stays finite in float32
BETA_EPS = 1e-6


class ScaledBeta:
    """``x = 2 u - 1``, ``u ~ Beta(alpha, beta)``: a Beta on ``[-1, 1]``; ``alpha, beta`` of shape ``(...)``."""

    def __init__(self, alpha: torch.Tensor, beta: torch.Tensor):
        self.alpha, self.beta = torch.broadcast_tensors(torch.as_tensor(alpha), torch.as_tensor(beta))
        self.base = Beta(self.alpha, self.beta, validate_args=False)

    def rsample(self, sample_shape: torch.Size | tuple = ()) -> torch.Tensor:
        """Reparameterised samples (implicit gradients w.r.t. alpha, beta), ``sample_shape + (...)``."""
        u = self.base.rsample(torch.Size(sample_shape))
        return 2 * u.clamp(BETA_EPS, 1 - BETA_EPS) - 1

    def sample(self, sample_shape: torch.Size | tuple = ()) -> torch.Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log q(x) = log Beta((x + 1)/2) - log 2`` (change of variables); ``-inf`` outside ``[-1, 1]``."""
        u = (x + 1) / 2
        inside = (u >= 0) & (u <= 1)
        value = self.base.log_prob(u.clamp(BETA_EPS, 1 - BETA_EPS)) - LOG_2
        return torch.where(inside, value, torch.full_like(value, -math.inf))

    @property
    def mean(self) -> torch.Tensor:
        """``2 alpha / (alpha + beta) - 1``."""
        return 2 * self.alpha / (self.alpha + self.beta) - 1

    @property
    def variance(self) -> torch.Tensor:
        """``4 alpha beta / ((alpha + beta)^2 (alpha + beta + 1))``."""
        total = self.alpha + self.beta
        return 4 * self.alpha * self.beta / (total**2 * (total + 1))

    def entropy(self) -> torch.Tensor:
        return self.base.entropy() + LOG_2


def _log1mexp(d: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(d))`` for ``d <= 0``, accurate near 0 and for large ``-d`` (Maechler 2012)."""
    return torch.where(d > -LOG_2, torch.log(-torch.expm1(d)), torch.log1p(-torch.exp(d)))


def _log_normal_pdf(z: torch.Tensor) -> torch.Tensor:
    return -0.5 * z * z - HALF_LOG_2PI


def ndtri_exp(y: torch.Tensor, newton_steps: int = 4) -> torch.Tensor:
    """The inverse of ``log Phi``: ``x`` with ``log Phi(x) = y``, for ``y <= 0`` (float64 advised).

    Uses ``Phi^-1(exp(y))`` where it is accurate and, for ``y < -700`` (where ``exp`` underflows),
    the asymptotic ``x ~ -sqrt(-2 y - log(-4 pi y))`` refined by Newton steps on ``log Phi``. The
    returned value carries the implicit gradient ``dx/dy = Phi(x) / phi(x)``.
    """
    with torch.no_grad():
        safe = torch.clamp(y, min=-700.0)
        x = torch.special.ndtri(torch.exp(safe).clamp(max=1 - 1e-16))
        deep = y < -700.0
        if deep.any():
            minus_2y = -2 * y.clamp(max=-1.0)
            asymptotic = -torch.sqrt(minus_2y - torch.log(2 * math.pi * minus_2y))
            x = torch.where(deep, asymptotic, x)
            for _ in range(newton_steps):
                log_cdf = torch.special.log_ndtr(x)
                slope = torch.exp(_log_normal_pdf(x) - log_cdf)       # d log Phi / dx
                x = torch.where(deep, x - (log_cdf - y) / slope, x)
        slope = torch.exp(_log_normal_pdf(x) - torch.special.log_ndtr(x))   # d log Phi / dx at x
    # value x; gradient w.r.t. y the implicit one, dx/dy = 1 / (d log Phi / dx)
    return x + (y - y.detach()) / slope


class TruncatedNormal:
    """``N(loc, scale^2)`` truncated to ``[low, high]`` (default ``[-1, 1]``); parameters of shape ``(...)``."""

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor, low: float = -1.0, high: float = 1.0):
        self.loc, self.scale = torch.broadcast_tensors(torch.as_tensor(loc), torch.as_tensor(scale))
        if not low < high:
            raise ValueError(f"TruncatedNormal needs low < high, got [{low}, {high}]")
        self.low, self.high = float(low), float(high)

    # ----- standardised bounds, in the frame where the interval lies nearer the lower tail
    def _frame(self):
        """``(sign, lo, hi, log_cdf_lo, log_cdf_hi, log_z)`` in float64.

        With ``a, b`` the standardised bounds, if ``a + b > 0`` the normal's symmetry maps the
        interval to ``[-b, -a]`` (``sign = -1``), so that ``log Phi`` is evaluated where it is
        precise; ``log Z = log(Phi(hi) - Phi(lo))`` by :func:`_log1mexp`.
        """
        loc, scale = self.loc.double(), self.scale.double()
        a, b = (self.low - loc) / scale, (self.high - loc) / scale
        flip = (a + b) > 0
        sign = torch.where(flip, -1.0, 1.0).to(loc)
        lo, hi = torch.where(flip, -b, a), torch.where(flip, -a, b)
        log_cdf_lo, log_cdf_hi = torch.special.log_ndtr(lo), torch.special.log_ndtr(hi)
        log_z = log_cdf_hi + _log1mexp(log_cdf_lo - log_cdf_hi)
        return sign, lo, hi, log_cdf_lo, log_cdf_hi, log_z

    def log_normaliser(self) -> torch.Tensor:
        """``log Z = log(Phi(b) - Phi(a))``, float64, shape ``(...)``."""
        return self._frame()[-1]

    def rsample(self, sample_shape: torch.Size | tuple = (), generator: torch.Generator | None = None) -> torch.Tensor:
        """Reparameterised inverse-CDF samples, ``sample_shape + (...)``, in the dtype of ``loc``."""
        shape = torch.Size(sample_shape) + self.loc.shape
        u = torch.rand(shape, generator=generator, dtype=torch.float64,
                       device=generator.device if generator is not None else self.loc.device).to(self.loc.device)
        u = u.clamp(1e-12, 1 - 1e-12)
        sign, lo, hi, log_cdf_lo, log_cdf_hi, log_z = self._frame()
        # log(Phi(lo) + u Z), a log-sum of two non-negative terms
        log_target = torch.logaddexp(log_cdf_lo.expand(shape), torch.log(u) + log_z)
        z = ndtri_exp(log_target).clamp(lo, hi)                 # standardised, in the frame
        x = self.loc.double() + self.scale.double() * sign * z
        return x.clamp(self.low, self.high).to(self.loc.dtype)

    def sample(self, sample_shape: torch.Size | tuple = (), generator: torch.Generator | None = None) -> torch.Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape, generator)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log phi((x - loc)/scale) - log scale - log Z`` inside ``[low, high]``, ``-inf`` outside."""
        loc, scale = self.loc.double(), self.scale.double()
        z = (x.double() - loc) / scale
        value = _log_normal_pdf(z) - torch.log(scale) - self.log_normaliser()
        inside = (x >= self.low) & (x <= self.high)
        return torch.where(inside, value, torch.full_like(value, -math.inf)).to(x.dtype)

    @property
    def mean(self) -> torch.Tensor:
        """``loc + scale (phi(a) - phi(b)) / Z``, computed in the tail-safe frame."""
        sign, lo, hi, _, _, log_z = self._frame()
        ratio = torch.exp(_log_normal_pdf(lo) - log_z) - torch.exp(_log_normal_pdf(hi) - log_z)
        mean = self.loc.double() + self.scale.double() * sign * ratio
        return mean.clamp(self.low, self.high).to(self.loc.dtype)

    @property
    def median(self) -> torch.Tensor:
        """The inverse CDF at 1/2."""
        sign, lo, hi, log_cdf_lo, _, log_z = self._frame()
        z = ndtri_exp(torch.logaddexp(log_cdf_lo, log_z - LOG_2)).clamp(lo, hi)
        return (self.loc.double() + self.scale.double() * sign * z).clamp(self.low, self.high).to(self.loc.dtype)


POSTERIORS = {"beta": ScaledBeta, "truncnormal": TruncatedNormal}
