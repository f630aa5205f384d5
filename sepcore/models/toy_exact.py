"""The exact noisy prior of one toy waveform class: the ideal-prior ceiling for Langevin.

A toy source (``sepcore.data.toy``) is ``a * w(f, phi)``: a waveform of its class with a
frequency ``f = f(key)``, ``key ~ U[0.1, 64.9]``, a phase ``phi ~ U[0, 1)`` and an amplitude
``a ~ U[0.8, 1.0]``. Its density at noise level sigma is therefore a finite-dimensional
integral that needs no network::

    p(y | sigma) = E_{f, phi} [ int_{a_lo}^{a_hi} N(y; a t_{f,phi}, sigma^2 I) da / (a_hi - a_lo) ].

:class:`ExactToyPrior` replaces ``E_{f, phi}`` by a fine grid of templates ``t_m`` (frequency
step chosen so that the phase drifts by at most ``max_drift`` cycles over the segment, ``n_phases``
phases, each frequency weighted by the key prior's density ``p(f) ~ 1/f``) and integrates the
amplitude in closed form. With ``c_m = <y, t_m>``, ``n_m = ||t_m||^2``, ``a_m = c_m / n_m`` and
``s_m = sigma / sqrt(n_m)``::

    log p(y | sigma) = logsumexp_m [ log pi_m - (||y||^2 - c_m^2 / n_m) / (2 sigma^2)
                                     + 1/2 log(2 pi s_m^2) + log(Phi(beta_m) - Phi(alpha_m)) ]
                       - log(a_hi - a_lo) - T/2 log(2 pi sigma^2),
    alpha_m = (a_lo - a_m) / s_m,   beta_m = (a_hi - a_m) / s_m,

and the posterior mean, hence by Tweedie the score, is ``E[x | y] = sum_m r_m E[a | m, y] t_m`` with
``r_m`` the softmax of the bracket and ``E[a | m, y]`` the truncated-normal mean. The cancellation
in ``||y||^2 - c_m^2 / n_m`` is catastrophic in float32 at small sigma, so the ``top_k`` best
templates (screened in float32) are recomputed in float64; the others enter with the amplitude's
profile likelihood (``a`` fixed at ``clamp(a_m, a_lo, a_hi)``, its interval's width as the only
volume term), which matters only at large sigma and keeps the score the exact gradient of
``log_prob``.

Shapes: ``y (batch, time)``; templates ``(n_templates, time)`` are built once per length.

Written by hand: this is the toy family's own integral; no library computes it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from sepcore.data.toy import ToyConfig, key_to_frequency, waveform


def _log_ndtr_diff(alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """``log(Phi(beta) - Phi(alpha))`` for ``alpha < beta``, stable in both tails."""
    flip = alpha > 0                                    # use Phi(-alpha) - Phi(-beta) in the upper tail
    lo = torch.where(flip, -beta, alpha)
    hi = torch.where(flip, -alpha, beta)
    log_hi, log_lo = torch.special.log_ndtr(hi), torch.special.log_ndtr(lo)
    return log_hi + torch.log1p(-torch.exp((log_lo - log_hi).clamp(max=-1e-12)))


def _log_normal_pdf(z: torch.Tensor) -> torch.Tensor:
    return -0.5 * z**2 - 0.5 * math.log(2 * math.pi)


class ExactToyPrior(nn.Module):
    """``log_prob(y, sigma)`` and ``score(y, sigma)`` of one toy class, from a template grid.

    Args:
        source: ``"sine"``, ``"square"``, ``"sawtooth"`` or ``"triangle"``.
        config: the toy generator's settings (key, amplitude ranges, sample rate).
        max_drift: the frequency step is ``max_drift * sample_rate / time`` Hz.
        n_phases: phases per frequency.
        top_k: templates recomputed exactly in float64.
    """

    multiple = 1

    def __init__(self, source: str, config: ToyConfig | None = None, *, max_drift: float = 0.02,
                 n_phases: int = 64, top_k: int = 256):
        super().__init__()
        self.source, self.config = source, config or ToyConfig()
        if source not in self.config.waveforms:
            raise ValueError(f"unknown toy source {source!r}; choose from {self.config.waveforms}")
        self.max_drift, self.n_phases, self.top_k = max_drift, n_phases, top_k
        self._grid: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def grid(self, length: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Templates ``(M, length)`` float32, their squared norms ``(M,)`` and log prior weights ``(M,)``."""
        if length not in self._grid:
            c = self.config
            f_lo, f_hi = (float(key_to_frequency(k)) for k in c.key_range)
            step = self.max_drift * c.sample_rate / length
            freqs = np.arange(f_lo + step / 2, f_hi, step)
            phases = (np.arange(self.n_phases) + 0.5) / self.n_phases
            templates = np.stack([waveform(self.source, f, p, 1.0, length, c.sample_rate) for f in freqs for p in phases])
            log_f = -np.log(freqs)                                    # key ~ U  =>  p(f) ~ 1/f
            log_f -= np.log(np.exp(log_f - log_f.max()).sum()) + log_f.max()
            log_w = np.repeat(log_f, len(phases)) - math.log(len(phases))
            t = torch.from_numpy(templates)
            self._grid[length] = (t, t.double().pow(2).sum(-1), torch.from_numpy(log_w))
        return self._grid[length]

    def _terms(self, y: torch.Tensor, c: torch.Tensor, norms: torch.Tensor, log_w: torch.Tensor, sigma: float):
        """Per-template log terms (bracket of the module docstring) and ``E[a | m, y]``; float64."""
        lo, hi = self.config.amplitude_range
        y2 = y.pow(2).sum(-1, keepdim=True)
        a_hat, s = c / norms, sigma / norms.sqrt()
        alpha, beta = (lo - a_hat) / s, (hi - a_hat) / s
        log_mass = _log_ndtr_diff(alpha, beta)
        log_terms = log_w - (y2 - c**2 / norms).clamp(min=0) / (2 * sigma**2) + 0.5 * torch.log(2 * math.pi * s**2) + log_mass
        mean_a = a_hat + s * (torch.exp(_log_normal_pdf(alpha) - log_mass) - torch.exp(_log_normal_pdf(beta) - log_mass))
        return log_terms, mean_a.clamp(lo, hi)

    @torch.no_grad()
    def posterior(self, y: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
        """``E[x | y]`` ``(batch, time)`` and ``log p(y | sigma)`` ``(batch,)`` in nats."""
        if sigma <= 0:
            raise ValueError("the exact prior needs sigma > 0")
        batch, length = y.shape
        templates, norms, log_w = self.grid(length)
        templates = templates.to(y.device)
        lo, hi = self.config.amplitude_range
        # screening in the input's precision (float32 in the sampler; float64 gives an exact log_prob)
        y32, y64 = y, y.double()
        templates = templates.to(y.dtype)
        n32 = norms.to(y.dtype).to(y.device)
        c32 = y32 @ templates.T                                                  # (B, M)
        a_star = (c32 / n32).clamp(lo, hi)                                       # the amplitude that fits best
        profile = (2 * a_star * c32 - a_star**2 * n32) / (2 * sigma**2)          # log-likelihood + ||y||^2/(2 sigma^2)
        offset = (log_w.to(y.device) + (0.5 * math.log(2 * math.pi) + math.log(sigma) - 0.5 * norms.to(y.device).log()
                                         - math.log(hi - lo)).clamp(max=0)).to(y.dtype)
        screen = profile + offset                                                # (B, M)
        k = min(self.top_k, len(templates))
        top = screen.topk(k, dim=-1).indices                                     # (B, k)
        chosen = templates[top].double()                                         # (B, k, T)
        c64 = torch.einsum("bt,bkt->bk", y64, chosen)
        log64, a64 = self._terms(y64, c64, norms.to(y.device)[top], log_w.to(y.device)[top], sigma)
        # the other templates: the amplitude's profile likelihood (its gradient is a* t / sigma^2, so the
        # score below stays the exact gradient of log_prob)
        rest = screen.scatter(-1, top, -math.inf)
        y2 = y64.pow(2).sum(-1, keepdim=True)
        log_rest = torch.logsumexp(rest, -1, keepdim=True).double() - y2 / (2 * sigma**2)
        log_z = torch.logaddexp(torch.logsumexp(log64, -1, keepdim=True), log_rest)
        mean = torch.einsum("bk,bkt->bt", (log64 - log_z).exp() * a64, chosen)
        if float((log_rest - log_z).max()) > -14:                                # the rest matters only at large sigma
            weights = (rest - (log_z + y2 / (2 * sigma**2)).to(y.dtype)).exp() * a_star
            mean = mean + (weights @ templates).double()
        log_p = log_z[:, 0] - math.log(hi - lo) - 0.5 * length * math.log(2 * math.pi * sigma**2)
        return mean.to(y.dtype), log_p.to(y.dtype)

    def denoise(self, y: torch.Tensor, sigma: float) -> torch.Tensor:
        return self.posterior(y, sigma)[0]

    def score(self, y: torch.Tensor, sigma: float) -> torch.Tensor:
        """``(E[x | y] - y) / sigma^2`` (Tweedie), ``(batch, time)``."""
        return (self.denoise(y, sigma) - y) / sigma**2

    def score_and_log_prob(self, y: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_p = self.posterior(y, sigma)
        return (mean - y) / sigma**2, log_p

    def log_prob(self, y: torch.Tensor, sigma: float) -> torch.Tensor:
        """``log p(y | sigma)`` ``(batch,)``; no gradient (use :meth:`score`)."""
        return self.posterior(y, sigma)[1]
