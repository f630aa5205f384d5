"""A linear-Gaussian latent model in which every quantity of the ELBO is closed form.

    z ~ N(mu0, Sigma0),   x | z ~ N(W z + b, sigma^2 I)

It serves the ELBO chapter twice. With a generic ``W`` it is the latent-variable model of
paper 000 (Eq. 8-16). With ``z`` the stacked sources ``s = (s_1, ..., s_N)`` and
``W = w [I, ..., I]`` (``w = 1/N`` for mean mixing, paper 002) it is the separation model of
paper 002 (Eq. 18-23) with Gaussian source priors, where the deterministic mixing constraint
is relaxed to a Gaussian likelihood of width sigma.

Everything is float64 and batched over nothing: ``x`` is ``(n,)``, ``z`` is ``(d,)``.
Written by hand because it is a teaching model; torch.distributions supplies the densities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.distributions import MultivariateNormal

from sepcore.mixing import mixing_weight


@dataclass
class Gaussian:
    """``N(mean, scale_tril @ scale_tril.T)`` in ``d`` dimensions."""

    mean: torch.Tensor        # (d,)
    scale_tril: torch.Tensor  # (d, d), lower triangular with positive diagonal

    @property
    def covariance(self) -> torch.Tensor:
        return self.scale_tril @ self.scale_tril.T

    def distribution(self) -> MultivariateNormal:
        return MultivariateNormal(self.mean, scale_tril=self.scale_tril)

    def rsample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reparameterised samples ``z = mean + L eps`` (paper 000, Eq. 17), ``(n, d)``."""
        eps = torch.randn(n, self.mean.shape[0], generator=generator, dtype=self.mean.dtype)
        return self.mean + eps @ self.scale_tril.T


def kl_divergence(q: Gaussian, p: Gaussian) -> torch.Tensor:
    """``KL[q || p]`` between two multivariate normals, closed form."""
    return torch.distributions.kl_divergence(q.distribution(), p.distribution())


class LinearGaussianModel:
    """``p(z) = N(mu0, Sigma0)``, ``p(x | z) = N(W z + b, sigma^2 I)``."""

    def __init__(self, prior: Gaussian, weight: torch.Tensor, bias: torch.Tensor, sigma: float):
        self.prior, self.weight, self.bias, self.sigma = prior, weight, bias, float(sigma)
        self.n, self.d = weight.shape

    @classmethod
    def separation(cls, means: torch.Tensor, covariances: torch.Tensor, sigma: float, mixing: str | None = None):
        """Paper 002's model with independent Gaussian source priors ``s_k ~ N(means[k], covariances[k])``.

        Args:
            means: ``(n_sources, time)``; covariances: ``(n_sources, time, time)``.
        Returns:
            the model whose latent is ``s`` flattened to ``(n_sources * time,)`` and whose
            observation is the mixture ``(time,)``, ``m = w sum_k s_k + sigma eps``.
        """
        n_sources, time = means.shape
        w = mixing_weight(n_sources, mixing)
        weight = w * torch.eye(time, dtype=means.dtype).repeat(1, n_sources)  # (time, n_sources*time)
        scale = torch.block_diag(*[torch.linalg.cholesky(c) for c in covariances])
        return cls(Gaussian(means.reshape(-1), scale), weight, torch.zeros(time, dtype=means.dtype), sigma)

    def best_factorised(self, x: torch.Tensor, block_sizes: list[int]) -> Gaussian:
        """The optimal ``q = prod_k q_k`` with Gaussian blocks (the mean-field fixed point).

        For a Gaussian posterior with precision ``Lambda``, the best block-factorised
        approximation keeps the exact posterior mean and uses the diagonal blocks of
        ``Lambda`` as its precisions (Bishop 2006, Sec. 10.1.2).
        """
        exact = self.posterior(x)
        precision = torch.cholesky_inverse(exact.scale_tril)
        scales, start = [], 0
        for size in block_sizes:
            block = precision[start:start + size, start:start + size]
            scales.append(torch.linalg.cholesky(torch.linalg.inv(block)))
            start += size
        return Gaussian(exact.mean, torch.block_diag(*scales))

    def sample(self, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One draw ``(z, x)`` from the joint."""
        z = self.prior.rsample(1, generator)[0]
        noise = torch.randn(self.n, generator=generator, dtype=z.dtype) * self.sigma
        return z, self.weight @ z + self.bias + noise

    # ----- exact quantities
    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        """``log p(x) = log N(x; W mu0 + b, W Sigma0 W^T + sigma^2 I)`` (paper 000, Eq. 7)."""
        mean = self.weight @ self.prior.mean + self.bias
        cov = self.weight @ self.prior.covariance @ self.weight.T + self.sigma**2 * torch.eye(self.n, dtype=x.dtype)
        return MultivariateNormal(mean, covariance_matrix=cov).log_prob(x)

    def posterior(self, x: torch.Tensor) -> Gaussian:
        """The exact posterior ``p(z | x)``: precision ``Sigma0^-1 + W^T W / sigma^2``."""
        prior_precision = torch.cholesky_inverse(self.prior.scale_tril)
        precision = prior_precision + self.weight.T @ self.weight / self.sigma**2
        covariance = torch.linalg.inv(precision)
        covariance = 0.5 * (covariance + covariance.T)
        mean = covariance @ (prior_precision @ self.prior.mean + self.weight.T @ (x - self.bias) / self.sigma**2)
        return Gaussian(mean, torch.linalg.cholesky(covariance))

    def expected_log_likelihood(self, x: torch.Tensor, q: Gaussian) -> torch.Tensor:
        """``E_q[log p(x | z)]`` in closed form: the reconstruction term of paper 000, Eq. 16."""
        residual = x - self.weight @ q.mean - self.bias
        trace = torch.trace(self.weight @ q.covariance @ self.weight.T)
        return -0.5 * self.n * math.log(2 * math.pi * self.sigma**2) - (residual @ residual + trace) / (2 * self.sigma**2)

    def elbo(self, x: torch.Tensor, q: Gaussian) -> torch.Tensor:
        """Closed-form ELBO, paper 000 Eq. 16: ``-KL[q || p(z)] + E_q[log p(x | z)]``."""
        return -kl_divergence(q, self.prior) + self.expected_log_likelihood(x, q)

    # ----- Monte Carlo, as a deep model would have to do it
    def log_joint(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``log p(x, z)`` for samples ``z`` of shape ``(S, d)`` → ``(S,)``."""
        likelihood = MultivariateNormal(
            z @ self.weight.T + self.bias, scale_tril=self.sigma * torch.eye(self.n, dtype=z.dtype)
        ).log_prob(x)
        return self.prior.distribution().log_prob(z) + likelihood

    def elbo_monte_carlo(self, x: torch.Tensor, q: Gaussian, n_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reparameterised estimate of paper 000 Eq. 13: ``mean_s [log p(x, z_s) - log q(z_s)]``."""
        z = q.rsample(n_samples, generator)
        return (self.log_joint(x, z) - q.distribution().log_prob(z)).mean()


def squared_exponential(time: int, length_scale: float, variance: float = 1.0, jitter: float = 1e-6) -> torch.Tensor:
    """A smooth Gaussian-process prior covariance over ``time`` steps, ``(time, time)``."""
    t = torch.arange(time, dtype=torch.float64)
    cov = variance * torch.exp(-0.5 * (t[:, None] - t[None, :]) ** 2 / length_scale**2)
    return cov + jitter * torch.eye(time, dtype=torch.float64)
