"""Amortised variational separation (paper 002, "Modeling the posteriors", Eq. 18-23).

One non-causal WaveNet encoder per source maps the mixture ``m`` to the parameters of an
approximate posterior ``q_phi_k(s_k | m)`` at every time step; the priors ``p(s_k)`` are fixed
(noise-conditioned flows, :mod:`sepcore.models.flow`, or any module with
``log_prob(x (batch, time), sigma) -> (batch,)``; or score priors, :mod:`sepcore.models.score_prior`,
whose score is all the reparameterised gradient needs, :func:`prior_log_density`). Training maximises the bound derived in the
ELBO chapter (notebooks/02_elbo.md, Eq. 21 with the corrected Eq. 23)::

    ELBO(m) = sum_k E_q[log p(s_k | sigma_p) - log q_k(s_k | m)]         (Eq. 21, prior and entropy)
              - E_q ||m - mix(s)||^2 / (2 sigma^2) - T/2 log(2 pi sigma^2)  (Eq. 23, corrected)

estimated from one reparameterised sample ``s ~ prod_k q_k`` (paper 000, Eq. 17). ``mix`` is
:func:`sepcore.mixing.mix`, the convention the data uses; ``sigma`` relaxes the deterministic
mixing to a Gaussian likelihood; ``sigma_p`` is the noise level the prior is evaluated at. The
KL term can be warmed up (``beta_kl`` from 0 to 1). **No term sees the true sources**: the
objective is a function of the mixture, the encoders and the priors only (unlike the reference
code, which mixed in a supervised loss 5% of the time; ../shared/REFERENCE.md).

Shapes: mixtures ``(batch, time)``; per-source posterior parameters ``(batch, time)``; samples and
estimates ``(batch, n_sources, time)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from sepcore.mixing import mix
from sepcore.models.wavenet import WaveNet
from sepcore.profiles import ProfileConfig
from sepcore.separation.base import Separator
from sepcore.separation.posteriors import ScaledBeta, TruncatedNormal
from sepcore.utils import resolve_device

TOY_SOURCES = ("sine", "square", "sawtooth", "triangle")


@dataclass
class VariationalConfig(ProfileConfig):
    """The encoders and the objective.

    Attributes:
        posterior: ``"beta"`` (toy data in paper 002) or ``"truncnormal"`` (music).
        width, n_layers: of each encoder's WaveNet (kernel 3, dilations ``1, 2, ..., 2**(n_layers-1)``).
        likelihood_sigma: ``sigma`` of the relaxed mixing likelihood (corrected Eq. 23).
        prior_sigma: the noise level ``sigma_p`` at which the noise-conditioned prior scores samples.
        init_concentration: ``alpha = beta`` (Beta) at initialisation; ``init_scale`` likewise
            for the truncated normal.
    """

    sources: tuple[str, ...] = TOY_SOURCES
    sample_rate: int = 14700
    posterior: str = "beta"
    width: int = 16
    n_layers: int = 10
    likelihood_sigma: float = 0.05
    prior_sigma: float = 0.05
    init_concentration: float = 2.0
    init_scale: float = 0.3
    min_concentration: float = 1e-2
    min_scale: float = 1e-3

    @classmethod
    def quick(cls):
        return cls(width=12, n_layers=6)

    @classmethod
    def default(cls):
        return cls()

    @classmethod
    def full(cls):
        return cls(width=64, n_layers=12)   # the paper's scale; not trained here

    @classmethod
    def music(cls, profile: str, sources: tuple[str, ...] = ("drums", "bass"), **overrides):
        """Slakh-format classes at 22.05 kHz: truncated-normal posteriors (paper 002 uses them for
        music) and ``sigma`` scaled to stems whose RMS is about 0.05 (the toy waves' is about 0.6)."""
        settings = {"sources": tuple(sources), "sample_rate": 22050, "posterior": "truncnormal",
                    "likelihood_sigma": 0.01, "prior_sigma": 0.01, "init_scale": 0.1}
        return cls.for_profile(profile, **(settings | overrides))

    def __post_init__(self):
        if self.posterior not in ("beta", "truncnormal"):
            raise ValueError(f"posterior must be 'beta' or 'truncnormal', got {self.posterior!r}")
        if self.likelihood_sigma <= 0:
            raise ValueError(f"likelihood_sigma must be positive, got {self.likelihood_sigma}")


def _softplus_inverse(y: float) -> float:
    return y + math.log(-math.expm1(-y))


class PosteriorEncoder(nn.Module):
    """``m (batch, time) -> q(s_k | m)``, a distribution with parameters of shape ``(batch, time)``.

    A non-causal WaveNet (:class:`sepcore.models.wavenet.WaveNet`: gated layers of kernel 3 with
    dilations ``2**i``, a skip sum and two 1x1 output convolutions, the last one zero at
    initialisation) gives two channels per time step:

    * Beta: ``alpha = softplus(h_0 + c) + min``, ``beta = softplus(h_1 + c) + min``;
    * truncated normal: ``loc = h_0`` and ``log scale = h_1 + log init_scale``.

    The constant ``c`` makes every posterior start as ``Beta(init_concentration, init_concentration)``
    (resp. ``N(0, init_scale^2)`` on [-1, 1]).
    """

    def __init__(self, config: VariationalConfig):
        super().__init__()
        self.config = config
        self.net = WaveNet(1, 2, config.width, config.n_layers)
        if config.posterior == "beta":
            self.offset = _softplus_inverse(config.init_concentration - config.min_concentration)
        else:
            self.offset = math.log(config.init_scale)

    def parameters_of(self, mixture: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(batch, time) -> (first, second)``: ``(alpha, beta)`` or ``(loc, scale)``, each ``(batch, time)``."""
        h = self.net(mixture.unsqueeze(1))                       # (B, 2, T)
        if self.config.posterior == "beta":
            positive = F.softplus(h + self.offset) + self.config.min_concentration
            return positive[:, 0], positive[:, 1]
        log_scale = (h[:, 1] + self.offset).clamp(math.log(self.config.min_scale), math.log(10.0))
        return h[:, 0], log_scale.exp()

    def forward(self, mixture: torch.Tensor) -> ScaledBeta | TruncatedNormal:
        first, second = self.parameters_of(mixture)
        return ScaledBeta(first, second) if self.config.posterior == "beta" else TruncatedNormal(first, second)


class VariationalSeparator(nn.Module, Separator):
    """One :class:`PosteriorEncoder` per source; ``separate`` returns the **posterior means**.

    The mean (rather than the median or a sample) is the estimate that minimises the expected
    squared error under ``q``; both posterior families give it in closed form. Calling the module
    separates (``forward`` is :meth:`separate`).
    """

    def __init__(self, config: VariationalConfig | None = None):
        super().__init__()
        self.config = config or VariationalConfig()
        self.encoders = nn.ModuleList(PosteriorEncoder(self.config) for _ in self.config.sources)

    @property
    def n_sources(self) -> int:
        return len(self.config.sources)

    def posteriors(self, mixture: torch.Tensor) -> list[ScaledBeta | TruncatedNormal]:
        """``mixture (batch, time)`` -> one ``q(s_k | m)`` per source, parameters ``(batch, time)``."""
        if mixture.ndim != 2:
            raise ValueError(f"expected mixtures (batch, time), got shape {tuple(mixture.shape)}")
        return [encoder(mixture) for encoder in self.encoders]

    @torch.no_grad()
    def separate_batch(self, mixtures: torch.Tensor) -> torch.Tensor:
        """``(batch, time) -> (batch, n_sources, time)`` posterior means, on the CPU."""
        device = next(self.parameters()).device
        posteriors = self.posteriors(mixtures.to(device, torch.float32))
        return torch.stack([q.mean for q in posteriors], dim=1).float().cpu()

    def separate(self, mixture: torch.Tensor) -> torch.Tensor:
        """``(time,) -> (n_sources, time)``: the posterior means of ``q_k(s_k | m)``."""
        return self.separate_batch(mixture[None])[0]

    def forward(self, mixture: torch.Tensor) -> torch.Tensor:
        return self.separate(mixture)

    @classmethod
    def from_pretrained(cls, sources: Sequence[str], *, checkpoint="checkpoints/variational/toy_beta.pt",
                        device="auto", output: str = "raw", **_unused) -> Separator:
        """The encoders of ``checkpoint`` (toy Beta by default;
        ``checkpoints/variational/slakh_truncnormal[_score].pt`` for drums and bass).
        ``output="masked"`` masks the mixture with the posterior means' spectrograms
        (:func:`sepcore.separation.masking.mask_with_waveforms`)."""
        from sepcore.checkpoints import load_model
        from sepcore.separation.masking import with_output

        model = load_model(checkpoint, expect={"sources": tuple(sources)}, expect_class=cls, device=device)
        model.described(sources, model.config.sample_rate)
        return with_output(model, output)

    def to_device(self, device: str = "auto") -> VariationalSeparator:
        return self.to(resolve_device(device)).eval()


def elbo_terms(
    separator: VariationalSeparator,
    priors: Sequence[nn.Module],
    mixture: torch.Tensor,
    *,
    beta_kl: float = 1.0,
    mixing: str | None = None,
) -> dict[str, torch.Tensor]:
    """One-sample estimate of the negative ELBO and its terms, for ``mixture (batch, time)``.

    Returns (every value a scalar, in nats per sample of the mixture, mean over the batch):

    * ``loss``: ``reconstruction + beta_kl * kl`` (what training minimises);
    * ``reconstruction``: ``||m - mix(s)||^2 / (2 sigma^2)``, the corrected Eq. 23 without its constant;
    * ``entropy``: ``-sum_k log q_k(s_k | m)``, the one-sample entropy of the posteriors;
    * ``kl``: ``sum_k [log q_k(s_k | m) - log p_k(s_k | sigma_p)]``, the one-sample KL of Eq. 21;
    * ``kl_per_source``: ``(n_sources,)``;
    * ``elbo``: ``-reconstruction - kl - 1/2 log(2 pi sigma^2)``, a bound on ``log p(m) / T``
      under the sigma-relaxed likelihood.

    Score priors have no density: ``loss`` then carries the same gradient through
    :func:`prior_log_density`'s surrogate, and ``kl``, ``kl_per_source`` and ``elbo`` are NaN.

    Only ``mixture``, the encoders and the priors enter: the true sources are not an argument.
    """
    config = separator.config
    if len(priors) != separator.n_sources:
        raise ValueError(f"got {len(priors)} priors for {separator.n_sources} sources {config.sources}")
    multiple = math.lcm(*(int(getattr(prior, "multiple", 1)) for prior in priors))
    if any(getattr(prior, "is_joint", False) for prior in priors):
        raise ValueError("elbo_terms takes one prior per source; a joint score prior is not supported here")
    if mixture.shape[-1] % multiple:
        raise ValueError(f"mixture length {mixture.shape[-1]} must be a multiple of {multiple} for these priors; "
                         "crop the training segments (segment_length) to a multiple of it")
    posteriors = separator.posteriors(mixture)
    samples = torch.stack([q.rsample() for q in posteriors], dim=1)                  # (B, K, T)
    log_q = torch.stack([q.log_prob(samples[:, k]).sum(-1) for k, q in enumerate(posteriors)], 1)   # (B, K)
    log_p, exact = zip(*(prior_log_density(prior, samples[:, k], config.prior_sigma) for k, prior in enumerate(priors)))
    log_p = torch.stack(log_p, 1)                                                     # (B, K)
    sigma = config.likelihood_sigma
    time = mixture.shape[-1]
    reconstruction = (mixture - mix(samples, mixing)).pow(2).sum(-1) / (2 * sigma**2)  # (B,)
    kl = (log_q - log_p) / time                                                       # (B, K)
    reconstruction = reconstruction / time
    unknown = torch.tensor(math.nan)
    known = all(exact)
    return {
        "loss": (reconstruction + beta_kl * kl.sum(1)).mean(),
        "reconstruction": reconstruction.mean().detach(),
        "entropy": (-log_q.sum(1) / time).mean().detach(),
        "kl": kl.sum(1).mean().detach() if known else unknown,
        "kl_per_source": kl.mean(0).detach() if known else torch.full((len(priors),), math.nan),
        "elbo": (-reconstruction - kl.sum(1)).mean().detach() - 0.5 * math.log(2 * math.pi * sigma**2) if known else unknown,
    }


def prior_log_density(prior: nn.Module, x: torch.Tensor, sigma: float) -> tuple[torch.Tensor, bool]:
    """``(log p(x | sigma) (B,), True)`` for a prior with a density (a flow), or, for a score prior
    (:class:`sepcore.models.score_prior.ScorePrior`, no density), the surrogate
    ``(<stop_grad(score(x)), x>, False)``: its value means nothing, but its gradient with respect to
    ``x``, and through the reparameterised sample to the encoders, is exactly the score, which is
    all the reparameterised ELBO gradient needs of the prior (paper 000, Eq. 17)."""
    if hasattr(prior, "log_prob"):
        return prior.log_prob(x, sigma), True
    with torch.no_grad():
        score = prior.score(x.detach(), sigma)
    return (score * x).sum(-1), False
