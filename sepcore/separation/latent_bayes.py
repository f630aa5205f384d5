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

N > 2 sources: the joint table has ``K^N`` entries per candidate and step (K=256, N=3: 1.7e7),
and ``M`` would need ``K^N`` nearest-neighbour searches, so exact inference stops being cheap.
:mod:`sepcore.separation.latent_bayes_pruned` restricts each step to the ``prune_k^N`` tuples of
the priors' top-``prune_k`` codes and quantises their means on the fly; the separator uses it when
given three or more priors (cost in that module's docstring).

Speed (2 sources). Per step the priors run as one batched call
(:class:`sepcore.models.stacked_prior.StackedPriors`) and the ``(K, K)`` likelihood factor of a
mixture code is computed once per distinct code of the mixture; ``batched_priors=False`` keeps
the one-prior-at-a-time path, which gives the same draws up to float rounding (tested).

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

from sepcore.metrics import sdr
from sepcore.mixing import mixing_weight
from sepcore.models.vqvae import VQVAE, pair_code_table
from sepcore.profiles import ProfileConfig
from sepcore.separation.base import Separator
from sepcore.separation.latent_bayes_pruned import gram, sample_tuples
from sepcore.separation.masking import (
    check_estimate,
    check_output,
    codes_to_sources,
    mask_with_waveforms,
    posterior_sources,
)
from sepcore.separation.prior_stepper import PriorStepper, stack_priors
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
    prune_k: int = 16                  # N >= 3: codes proposed per prior (k^N tuples per step)
    batched_priors: bool = True        # priors as one StackedPriors call + cached likelihood factors
    output: str = "raw"                # raw decodes, or "masked": the mixture masked by them (masking.py)
    mask_power: float = 2.0
    likelihood_weight: float = 1.0     # scales a likelihood of the mixture's frames (in place of Eq. 6)
    estimate: str = "map"              # the chosen candidate; "mean" / "wiener": all candidates' masks / powers

    @classmethod
    def quick(cls):
        return cls(n_candidates=8)

    @classmethod
    def full(cls):
        return cls(n_candidates=64)


@dataclass
class Candidates:
    codes: torch.Tensor          # (B, N, S)
    prior_log_prob: torch.Tensor  # (B, N) sum over steps of log p_k(z_k,s | z_k,<s)
    estimates: torch.Tensor | None  # (B, N, T) decoded sources (None when sampled with decode=False)
    seconds: float               # wall time of sampling + decoding
    sampling_seconds: float = 0.0  # wall time of sampling the codes alone


def pair_log_likelihood_table(code_dist2: torch.Tensor, pairs: torch.Tensor, mix_code: int, sigma: float) -> torch.Tensor:
    """Eq. 6 for one step: ``L[i, j] = -||e(M[i, j]) - e(m_s)||^2 / (2 sigma^2)``, ``(K, K)``."""
    return -code_dist2[:, mix_code][pairs] / (2 * sigma**2)


def posterior_table(log_p1: torch.Tensor, log_p2: torch.Tensor, log_lik: torch.Tensor) -> torch.Tensor:
    """The normalised per-step log posterior ``(B, K, K)`` (Eq. 5); for tests and small K only."""
    scores = log_p1[:, :, None] + log_p2[:, None, :] + log_lik[None]
    return scores - scores.flatten(1).logsumexp(1)[:, None, None]


def likelihood_factor(log_lik: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """``P = exp(L / T - max(L / T))``, ``(K, K)`` float64 (max entry 1): Eq. 6 as a factor of the posterior."""
    lik = log_lik.double() / temperature
    return (lik - lik.max()).exp()


def sample_pairs_exact(log_p1, log_p2, log_lik, generator=None, temperature: float = 1.0, factor=None):
    """Exact ancestral draw of one pair per row from ``p1(i) p2(j) exp(L[i, j])`` (tempered).

    Args: ``log_p1, log_p2: (B, K)`` normalised log-probabilities, ``log_lik: (K, K)``;
        ``factor``: :func:`likelihood_factor` of ``log_lik`` when already computed (it depends
        only on the mixture code, so the separator caches it per distinct code).
    Returns: ``(i, j)``, each ``(B,)`` long. Uses ``i ~ a_i (P b)_i``, ``j | i ~ b_j P_ij``.
    """
    a = (log_p1.double() / temperature).softmax(-1)
    b = (log_p2.double() / temperature).softmax(-1)
    P = likelihood_factor(log_lik, temperature) if factor is None else factor   # (K, K), max entry 1
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


class LatentBayesSeparator(Separator):
    """``separate(mixture (T,)) -> (N, T)``: B candidates from the latent posterior, one kept by rejection.

    Two priors: the exact per-step posterior (Eq. 5-6). Three or more priors: the posterior pruned
    to the top ``prune_k`` codes of each prior (:mod:`sepcore.separation.latent_bayes_pruned`).
    With ``config.batched_priors`` (default) priors of one architecture run as one
    :class:`StackedPriors` call per step, and the likelihood table / factor of each distinct
    mixture code is computed once per mixture (``U K^2`` float64 for ``U`` distinct codes); the
    mathematics is unchanged (equal to the one-by-one path up to float rounding).

    ``likelihood`` (two sources): a likelihood of the mixture's own frames with ``bind(mixture)``
    and ``log_prob`` (:class:`~sepcore.separation.magnitude_likelihood.MagnitudeLikelihood`)
    replaces Eq. 6, weighted by ``config.likelihood_weight``. ``last`` holds the latest call's
    :class:`Candidates`.
    """

    def __init__(self, vqvae: VQVAE, priors, config: LatentBayesConfig | None = None, device: str = "auto",
                 likelihood=None):
        if len(priors) < 2:
            raise ValueError(f"LatentBayesSeparator takes two or more priors, got {len(priors)}")
        self.device = resolve_device(device)
        self.vqvae = vqvae.to(self.device).eval()
        self.priors = [p.to(self.device).eval() for p in priors]
        self.n_sources = len(self.priors)
        K = vqvae.config.codebook_size
        for p in self.priors:
            if p.config.vocab_size != K:
                raise ValueError(f"prior vocab_size {p.config.vocab_size} != VQ-VAE codebook_size {K}; "
                                 "train the prior on codes of this VQ-VAE")
        self.config = config or LatentBayesConfig()
        check_output(self.config.output)
        if check_estimate(self.config.estimate, self.config.output) != "map" and self.config.alpha != 0:
            raise ValueError(f'estimate="{self.config.estimate}" uses every candidate: rejection (alpha != 0) does not apply')
        if likelihood is not None and (self.n_sources != 2 or not likelihood.binds_mixture):
            raise ValueError("a mixture-frame likelihood (bind, bound) replaces Eq. 6 for two sources only")
        self.likelihood = likelihood
        e = self.vqvae.codebook
        self.code_dist2 = (e.pow(2).sum(1)[:, None] - 2 * e @ e.T + e.pow(2).sum(1)[None]).clamp_min(0)  # (K, K)
        if self.n_sources == 2:
            self.pairs = pair_code_table(self.vqvae)                          # (K, K), Sec. 4.1
        else:
            self.gram, self.norms = gram(e)                                   # on-the-fly Q of tuple means
        self.stacked = stack_priors(self.priors)                              # None: one by one
        self.last: Candidates | None = None

    @torch.no_grad()
    def sample(self, mixture: torch.Tensor, n_candidates: int | None = None, generator: torch.Generator | None = None,
               decode: bool = True) -> Candidates:
        """Draw B candidate tuples of code sequences for ``mixture: (T,)``; decode them to ``(B, N, T)``.

        ``decode=False`` skips decoding (``estimates`` is then ``None``): decoding ``B N`` sequences
        costs more than sampling on a CPU, and rejection with ``alpha = 0`` needs only the codes.
        """
        c = self.config
        B = n_candidates or c.n_candidates
        N = self.n_sources
        generator = generator or torch.Generator().manual_seed(c.seed)
        started = time.perf_counter()
        T = mixture.shape[-1]
        padded = self.vqvae.pad_to_hop(mixture.reshape(1, -1)).to(self.device)
        if self.likelihood is not None:                # each frame its own table: a distinct "code" per frame
            mix_codes = self.likelihood.bind(padded)[0]                         # (S,) frame indices
            frame_tables = self.likelihood.bound.to(self.device) * c.likelihood_weight     # (S, K * K)
        else:
            mix_codes = self.vqvae.encode(padded)[0]                           # (S,)
        S = mix_codes.shape[0]
        K = self.vqvae.config.codebook_size
        stepper = PriorStepper(self.priors, B, self.device, batched=c.batched_priors, stacked=self.stacked)
        batched = stepper.batched
        codes = torch.empty(B, N, S, dtype=torch.long, device=self.device)
        prior_lp = torch.zeros(B, N, dtype=torch.float64, device=self.device)
        rows = torch.arange(B, device=self.device)
        weight = mixing_weight(N)
        cached: dict[int, torch.Tensor] = {}
        for s in range(S):
            log_p = stepper.log_probs(codes[:, :, :s])                        # (N, B, K)
            m = int(mix_codes[s])
            if self.likelihood is not None:
                log_lik = frame_tables[s].reshape(K, K)
                if c.method == "ancestral":
                    chosen = torch.stack(sample_pairs_exact(log_p[0], log_p[1], log_lik, generator, c.temperature))
                else:
                    chosen = torch.stack(sample_pairs_kernel(log_p[0], log_p[1], log_lik, c, generator))
            elif N > 2:
                chosen = sample_tuples(log_p, self.code_dist2[:, m], self.gram, self.norms, weight, c, generator)
            elif c.method == "ancestral":
                log_lik = factor = None
                if batched:
                    if m not in cached:
                        log_lik = pair_log_likelihood_table(self.code_dist2, self.pairs, m, c.sigma)
                        cached[m] = likelihood_factor(log_lik, c.temperature)
                    factor = cached[m]
                else:
                    log_lik = pair_log_likelihood_table(self.code_dist2, self.pairs, m, c.sigma)
                chosen = torch.stack(sample_pairs_exact(log_p[0], log_p[1], log_lik, generator, c.temperature, factor))
            else:
                if batched:
                    if m not in cached:
                        cached[m] = pair_log_likelihood_table(self.code_dist2, self.pairs, m, c.sigma)
                    log_lik = cached[m]
                else:
                    log_lik = pair_log_likelihood_table(self.code_dist2, self.pairs, m, c.sigma)
                chosen = torch.stack(sample_pairs_kernel(log_p[0], log_p[1], log_lik, c, generator))
            for k in range(N):                                                # chosen: (N, B)
                prior_lp[:, k] += log_p[k][rows, chosen[k]].double()
            codes[:, :, s] = chosen.T
            stepper.advance(chosen)
        sampled = time.perf_counter() - started
        estimates = None
        if decode:
            estimates = self.vqvae.decode(codes.reshape(N * B, S)).reshape(B, N, -1)[..., :T].float().cpu()
        self.last = Candidates(codes.cpu(), prior_lp.cpu(), estimates, time.perf_counter() - started, sampled)
        return self.last

    def separate(self, mixture: torch.Tensor) -> torch.Tensor:
        """``(T,) -> (N, T)``: the rejection-selected candidate with ``config.alpha``.

        With ``alpha = 0`` the choice needs only the prior scores, so only the chosen candidate is
        decoded (the same output as decoding all B and picking it). ``estimate="mean"`` or ``"wiener"``:
        no choice, all B candidates' masks averaged or their powers' Wiener filter
        (:func:`~sepcore.separation.masking.posterior_sources`).
        """
        flat = mixture.reshape(-1)
        if self.config.estimate != "map":
            candidates = self.sample(mixture, decode=False)
            return posterior_sources(self.vqvae, candidates.codes.to(self.device), flat, self.config.estimate,
                                     self.config.mask_power)
        if self.config.alpha != 0:
            candidates = self.sample(mixture)
            chosen = candidates.estimates[int(rejection_scores(candidates, mixture, self.config.alpha).argmax())]
            if self.config.output == "masked":
                return mask_with_waveforms(flat, chosen, power=self.config.mask_power)
            return chosen
        candidates = self.sample(mixture, decode=False)
        best = int(prior_scores(candidates.prior_log_prob, candidates.codes.shape[-1]).argmax())
        return codes_to_sources(self.vqvae, candidates.codes[best].to(self.device), flat, self.config.output,
                                self.config.mask_power)

    @classmethod
    def from_pretrained(cls, sources, *, checkpoint="checkpoints/latents", device="auto", seed: int = 0,
                        sigma: float = 0.4, n_candidates: int = 16, alpha: float = 0.0,
                        **_unused) -> LatentBayesSeparator:
        """LQ-VAE latent posterior sampling + rejection (paper 003): ``<checkpoint>/lqvae.pt`` and its priors."""
        from sepcore.separation.latent_models import load_latent_models

        vqvae, priors = load_latent_models("lqvae", sources, checkpoint, device)
        config = LatentBayesConfig.default().replace(sigma=sigma, n_candidates=n_candidates, alpha=alpha, seed=seed)
        return cls(vqvae, priors, config, device=device).described(sources, vqvae.config.sample_rate)


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
    prior = prior_scores(candidates.prior_log_prob, candidates.codes.shape[-1])
    w = mixing_weight(candidates.estimates.shape[1])
    residual = (mixture.double().cpu()[None] - w * candidates.estimates.double().sum(1)).pow(2).sum(-1)
    return prior, residual


def prior_scores(prior_log_prob: torch.Tensor, n_steps: int) -> torch.Tensor:
    """``log p_rej (B,)``: the length-normalised prior score ``sum_k log p_k / S``, normalised over the batch."""
    score = prior_log_prob.sum(1) / n_steps
    return score - score.logsumexp(0)


def solve_sigma_rej(prior: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """sigma_rej with ``mean_b log p_rej = -mean_b residual / (2 sigma_rej^2)`` (paper 003, Sec. 4.3)."""
    return (residual.mean() / (-2 * prior.mean())).sqrt()


def oracle_best(candidates: Candidates, references: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """ORACLE upper bound (uses the true sources): per source, the candidate with the best SDR, ``(N, T)``."""
    scores = sdr(references[None].expand_as(candidates.estimates), candidates.estimates, sample_rate)  # (B, 2)
    scores = torch.nan_to_num(scores, nan=-1e9)
    best = scores.argmax(0)
    return torch.stack([candidates.estimates[best[k], k] for k in range(best.shape[0])])
