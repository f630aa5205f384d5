"""Latent Bayesian separation with exact per-step posteriors and rejection sampling (paper 003 Sec. 4).

For a mixture ``m`` with latent codes ``m_s = B_I(B_Q(E(m)))`` and two autoregressive priors,
each step ``s`` samples a code pair from the exact posterior (Eq. 5-6)

    log p(i, j | z_<s, m) = log p1(i | z1_<s) + log p2(j | z2_<s)
                            - || e(M[i, j]) - e(m_s) ||^2 / (2 sigma^2) - log Z_s,

with ``M[i, j] = B_Q(w e_i + w e_j)`` precomputed once per VQ-VAE (w from :mod:`sepcore.mixing`).
Because ``M[i, j]`` and ``m_s`` are both codes, the likelihood is a lookup in the ``(K, K)`` table
of squared code distances: ``L_s[i, j] = -D2[M[i, j], m_s] / (2 sigma^2)``, shared by all
``B`` candidates.

Memory. The full table is ``B x K x K``. Ancestral sampling never builds it: the posterior
factorises as ``a_i b_j P_ij`` (``a, b`` the priors' probabilities, ``P = exp L_s``), so
``i ~ a_i (P b)_i`` and then ``j | i ~ b_j P_ij`` are exact, with one ``(B, K) x (K, K)`` matrix
product (``O(B K^2)`` time, ``O(B K + K^2)`` memory). The other selectors (greedy, top-k, top-p)
go through the shared kernel :func:`sepcore.separation.sampling.select`, evaluating the table in
row blocks of at most ``max_elements`` numbers.

N > 2 sources is not implemented: the joint table has ``K^N`` entries per candidate and step
(K=256, N=3: 1.7e7), and ``M`` needs ``K^N`` nearest-neighbour searches (``K^N x K x D``
operations, 1.4e11 for K=256, D=32), so exact inference stops being cheap; it needs pruning to the
top-k codes of each prior (``k^N`` pairs) instead.

Rejection sampling (Sec. 4.3): the prior score of candidate ``b`` is
``(sum_s log p1 + sum_s log p2) / S`` normalised over the batch; the time-domain likelihood is
``-||m - w D(z1) - w D(z2)||^2 / (2 sigma_rej^2)`` with ``sigma_rej`` solved so that the batch
means of both terms are equal; ``alpha`` weights the likelihood (``alpha = 0``: priors only). The
paper writes ``sigma'^2 = alpha sigma_rej^2``, which would make ``alpha = 0`` all likelihood; we
follow its prose and the reference table (``alpha = 0`` = likelihood ignored), i.e. the score is
``log p_rej + alpha * log-likelihood``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sepcore.metrics import sdr
from sepcore.mixing import mixing_weight
from sepcore.models.vqvae import VQVAE, pair_code_table
from sepcore.profiles import ProfileConfig
from sepcore.separation.sampling import chunk_for_budget, select
from sepcore.utils import resolve_device


@dataclass
class LatentBayesConfig(ProfileConfig):
    sigma: float = 0.4                 # Eq. 6; the paper says 0.1, its code uses 0.4
    n_candidates: int = 16             # B
    alpha: float = 0.0                 # rejection: weight of the time-domain likelihood
    method: str = "ancestral"          # ancestral | greedy | top_k | top_p
    top_k: int = 16
    top_p: float = 0.9
    temperature: float = 1.0
    max_elements: int = 2**22          # largest score block for the non-ancestral selectors
    seed: int = 0

    @classmethod
    def quick(cls):
        return cls(n_candidates=8)

    @classmethod
    def full(cls):
        return cls(n_candidates=64)


@dataclass
class Candidates:
    codes: torch.Tensor          # (B, 2, S)
    prior_log_prob: torch.Tensor  # (B, 2) sum over steps of log p_k(z_k,s | z_k,<s)
    estimates: torch.Tensor      # (B, 2, T) decoded sources
    seconds: float               # wall time of sampling + decoding


def pair_log_likelihood_table(code_dist2: torch.Tensor, pairs: torch.Tensor, mix_code: int, sigma: float) -> torch.Tensor:
    """Eq. 6 for one step: ``L[i, j] = -||e(M[i, j]) - e(m_s)||^2 / (2 sigma^2)``, ``(K, K)``."""
    return -code_dist2[:, mix_code][pairs] / (2 * sigma**2)


def posterior_table(log_p1: torch.Tensor, log_p2: torch.Tensor, log_lik: torch.Tensor) -> torch.Tensor:
    """The normalised per-step log posterior ``(B, K, K)`` (Eq. 5); for tests and small K only."""
    scores = log_p1[:, :, None] + log_p2[:, None, :] + log_lik[None]
    return scores - scores.flatten(1).logsumexp(1)[:, None, None]


def sample_pairs_exact(log_p1, log_p2, log_lik, generator=None, temperature: float = 1.0):
    """Exact ancestral draw of one pair per row from ``p1(i) p2(j) exp(L[i, j])`` (tempered).

    Args: ``log_p1, log_p2: (B, K)`` normalised log-probabilities, ``log_lik: (K, K)``.
    Returns: ``(i, j)``, each ``(B,)`` long. Uses ``i ~ a_i (P b)_i``, ``j | i ~ b_j P_ij``.
    """
    a = (log_p1.double() / temperature).softmax(-1)
    b = (log_p2.double() / temperature).softmax(-1)
    lik = log_lik.double() / temperature
    P = (lik - lik.max()).exp()                                       # (K, K), max entry 1
    marginal = a * (b @ P.T)                                          # (B, K): a_i sum_j b_j P_ij
    i = torch.multinomial((marginal / marginal.sum(-1, keepdim=True)).float().cpu(), 1, generator=generator)[:, 0]
    i = i.to(log_p1.device)
    conditional = b * P[i]                                            # (B, K)
    j = torch.multinomial((conditional / conditional.sum(-1, keepdim=True)).float().cpu(), 1, generator=generator)[:, 0]
    return i, j.to(log_p1.device)


def sample_pairs_kernel(log_p1, log_p2, log_lik, config: LatentBayesConfig, generator=None):
    """Any selector of :func:`select` on the flattened ``(B, K*K)`` table, built in row blocks."""
    B, K = log_p1.shape
    rows = max(1, chunk_for_budget(B, K * K, config.max_elements) // K)

    def scores(start, stop):
        r0, r1 = start // K, (stop + K - 1) // K
        block = log_p1[:, r0:r1, None] + log_p2[:, None, :] + log_lik[None, r0:r1]
        return block.flatten(1)[:, start - r0 * K: stop - r0 * K]

    chosen = select(scores, K * K, method=config.method, n=1, top_k=config.top_k, top_p=config.top_p,
                    temperature=config.temperature, chunk_size=rows * K, generator=generator)
    flat = chosen.indices[:, 0]
    return flat // K, flat % K


class LatentBayesSeparator:
    """``separate(mixture (T,)) -> (2, T)``: B candidates from the exact latent posterior, one kept by rejection."""

    def __init__(self, vqvae: VQVAE, priors, config: LatentBayesConfig | None = None, device: str = "auto"):
        if len(priors) != 2:
            raise ValueError(f"LatentBayesSeparator takes two priors, got {len(priors)}; N > 2 is not implemented "
                             "(the joint table has K^N entries per step; see the module docstring)")
        self.device = resolve_device(device)
        self.vqvae = vqvae.to(self.device).eval()
        self.priors = [p.to(self.device).eval() for p in priors]
        K = vqvae.config.codebook_size
        for p in self.priors:
            if p.config.vocab_size != K:
                raise ValueError(f"prior vocab_size {p.config.vocab_size} != VQ-VAE codebook_size {K}; "
                                 "train the prior on codes of this VQ-VAE")
        self.config = config or LatentBayesConfig()
        self.pairs = pair_code_table(self.vqvae)                              # (K, K), Sec. 4.1
        e = self.vqvae.codebook
        self.code_dist2 = (e.pow(2).sum(1)[:, None] - 2 * e @ e.T + e.pow(2).sum(1)[None]).clamp_min(0)  # (K, K)
        self.last: Candidates | None = None

    @torch.no_grad()
    def sample(self, mixture: torch.Tensor, n_candidates: int | None = None, generator: torch.Generator | None = None) -> Candidates:
        """Draw B candidate pairs of code sequences for ``mixture: (T,)``; decode them to ``(B, 2, T)``."""
        c = self.config
        B = n_candidates or c.n_candidates
        generator = generator or torch.Generator().manual_seed(c.seed)
        started = time.perf_counter()
        hop = self.vqvae.config.hop
        T = mixture.shape[-1]
        padded = F.pad(mixture.reshape(1, -1).float(), (0, (-T) % hop)).to(self.device)
        mix_codes = self.vqvae.encode(padded)[0]                               # (S,)
        S = mix_codes.shape[0]
        start = self.priors[0].config.start_token
        tokens = [torch.full((B, 1), start, dtype=torch.long, device=self.device) for _ in range(2)]
        caches = [None, None]
        codes = torch.empty(B, 2, S, dtype=torch.long, device=self.device)
        prior_lp = torch.zeros(B, 2, dtype=torch.float64, device=self.device)
        rows = torch.arange(B, device=self.device)
        for s in range(S):
            log_p = []
            for k in range(2):
                logits, caches[k] = self.priors[k](tokens[k], caches[k])
                log_p.append(logits[:, -1].float().log_softmax(-1))              # (B, K)
            log_lik = pair_log_likelihood_table(self.code_dist2, self.pairs, int(mix_codes[s]), c.sigma)
            if c.method == "ancestral":
                i, j = sample_pairs_exact(log_p[0], log_p[1], log_lik, generator, c.temperature)
            else:
                i, j = sample_pairs_kernel(log_p[0], log_p[1], log_lik, c, generator)
            prior_lp[:, 0] += log_p[0][rows, i].double()
            prior_lp[:, 1] += log_p[1][rows, j].double()
            codes[:, 0, s], codes[:, 1, s] = i, j
            tokens = [i[:, None], j[:, None]]
        estimates = self.vqvae.decode(codes.reshape(2 * B, S)).reshape(B, 2, -1)[..., :T]
        seconds = time.perf_counter() - started
        self.last = Candidates(codes.cpu(), prior_lp.cpu(), estimates.float().cpu(), seconds)
        return self.last

    def separate(self, mixture: torch.Tensor) -> torch.Tensor:
        """``(T,) -> (2, T)``: the rejection-selected candidate with ``config.alpha``."""
        candidates = self.sample(mixture)
        return candidates.estimates[int(rejection_scores(candidates, mixture, self.config.alpha).argmax())]


def rejection_scores(candidates: Candidates, mixture: torch.Tensor, alpha: float = 0.0) -> torch.Tensor:
    """Sec. 4.3: ``log p_rej(z^b) + alpha * log N(m | w D(z1) + w D(z2), sigma_rej^2)``, ``(B,)``.

    ``log p_rej`` is the length-normalised prior score, normalised over the batch; ``sigma_rej``
    makes the batch means of the two terms equal (see :func:`solve_sigma_rej`).
    """
    prior, residual = prior_and_residual(candidates, mixture)
    if alpha == 0:
        return prior
    sigma2 = solve_sigma_rej(prior, residual) ** 2
    return prior + alpha * (-residual / (2 * sigma2))


def prior_and_residual(candidates: Candidates, mixture: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log p_rej (B,), ||m - w (D(z1) + D(z2))||^2 (B,))``."""
    S = candidates.codes.shape[-1]
    score = candidates.prior_log_prob.sum(1) / S
    prior = score - score.logsumexp(0)
    w = mixing_weight(2)
    residual = (mixture.double().cpu()[None] - w * candidates.estimates.double().sum(1)).pow(2).sum(-1)
    return prior, residual


def solve_sigma_rej(prior: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """sigma_rej with ``mean_b log p_rej = -mean_b residual / (2 sigma_rej^2)`` (paper 003, Sec. 4.3)."""
    return (residual.mean() / (-2 * prior.mean())).sqrt()


def oracle_best(candidates: Candidates, references: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """ORACLE upper bound (uses the true sources): per source, the candidate with the best SDR, ``(2, T)``."""
    scores = sdr(references[None].expand_as(candidates.estimates), candidates.estimates, sample_rate)  # (B, 2)
    scores = torch.nan_to_num(scores, nan=-1e9)
    best = scores.argmax(0)
    return torch.stack([candidates.estimates[best[k], k] for k in range(2)])
