"""Annealed Langevin separation (paper 002, Eq. 16-17 and Algorithm 1; BASIS, Jayaram & Thickstun 2020).

For noise levels ``sigma_1 > ... > sigma_L`` (geometric) and ``steps_per_level`` steps at each,
every source estimate ``x_k`` follows stochastic gradient Langevin dynamics::

    x_k <- x_k + eta_i * [ d/dx_k log p_k(x_k | sigma_i) + d/dx_k log p(m | x) ] + sqrt(2 eta_i) z,
    eta_i = epsilon * sigma_i^2 / sigma_L^2,
    log p(m | x) = -(lambda_i / 2) || m - mix(x) ||^2,   lambda_i = likelihood_weight / sigma_i^2,

so at a fixed level the chain samples the posterior ``p_sigma(x) p(m | x)`` (Welling & Teh 2011),
and annealing moves it from a smooth posterior to a sharp one. ``mix`` is
:func:`sepcore.mixing.mix`, the same mean/sum convention the data uses. Unlike the reference
code (../shared/REFERENCE.md) the likelihood weight is not zero, the residual compares like with
like (mean with mean), and the chain starts from the mixture plus noise (``init="mixture"``) or
from noise alone (``init="noise"``): it never sees the true sources.

Shapes: mixtures ``(batch, time)``; estimates ``(batch, n_sources, time)``. A prior is any module
with ``log_prob(x (batch, time), sigma) -> (batch,)`` (e.g. :class:`sepcore.models.flow.FlowPrior`
or :class:`GaussianPrior`) and optionally ``multiple`` (the time length must be a multiple of it;
the sampler pads and crops).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from sepcore.mixing import get_mixing, mix, mixing_weight
from sepcore.profiles import ProfileConfig
from sepcore.separation.base import Separator
from sepcore.utils import progress, resolve_device


@dataclass
class LangevinConfig(ProfileConfig):
    """The schedule: sigma levels, steps, step sizes, likelihood weight, init and clamping.

    BASIS (REFERENCE): 10 levels from 1.0 to 0.01, 100 steps each, epsilon 3e-5, lambda = 1/sigma^2.
    """

    sigma_max: float = 1.0
    sigma_min: float = 0.01
    n_levels: int = 10
    steps_per_level: int = 100
    epsilon: float = 3e-5
    likelihood_weight: float = 1.0
    init: str = "mixture"
    clamp: float | None = 1.0
    project: bool = False
    constraint: str = "soft"
    n_chains: int = 1

    @classmethod
    def quick(cls):
        return cls(n_levels=5, steps_per_level=20, epsilon=1e-4)

    @classmethod
    def default(cls):
        return cls(n_levels=8, steps_per_level=20, epsilon=5e-5)

    @classmethod
    def full(cls):
        return cls()

    @classmethod
    def music(cls, profile: str, **overrides):
        """The profile's schedule with the top level at 0.5: Slakh-format stems have an RMS near 0.05
        and peaks below 1 (the toy waves' amplitude is about 1), so sigma = 1 would only add noise."""
        return cls.for_profile(profile, **({"sigma_max": 0.5} | overrides))

    @classmethod
    def for_score_priors(cls, priors, n_levels: int = 8, steps_per_level: int = 20, step_ratio: float = 0.5, **overrides):
        """A schedule inside every prior's training range (``config.sigma_min``/``sigma_max`` of
        :class:`sepcore.models.score_prior.ScorePrior`) with ``eta_i = step_ratio * sigma_i^2``: the levels
        scale with the data, so the same rule serves toy waves (RMS ~0.6) and stems (RMS ~0.06)."""
        sigma_max = min(p.config.sigma_max for p in priors)
        sigma_min = max(p.config.sigma_min for p in priors)
        return cls(sigma_max=sigma_max, sigma_min=sigma_min, n_levels=n_levels, steps_per_level=steps_per_level,
                   epsilon=step_ratio * sigma_min**2, clamp=1.0).replace(**overrides)

    def sigmas(self) -> torch.Tensor:
        """The geometric levels ``sigma_1 = sigma_max > ... > sigma_L = sigma_min``, ``(n_levels,)``."""
        if self.n_levels == 1:
            return torch.tensor([self.sigma_min], dtype=torch.float64)
        return torch.logspace(math.log10(self.sigma_max), math.log10(self.sigma_min), self.n_levels, dtype=torch.float64)

    def step_sizes(self) -> torch.Tensor:
        """``eta_i = epsilon * sigma_i^2 / sigma_L^2``, ``(n_levels,)``."""
        sigmas = self.sigmas()
        return self.epsilon * sigmas**2 / sigmas[-1] ** 2

    def weights(self) -> torch.Tensor:
        """``lambda_i = likelihood_weight / sigma_i^2``, ``(n_levels,)``."""
        return self.likelihood_weight / self.sigmas() ** 2


class GaussianPrior(nn.Module):
    """``x_t ~ N(mean, std^2)`` i.i.d. over time; at noise level sigma, ``N(mean, std^2 + sigma^2)``."""

    multiple = 1

    def __init__(self, mean: float, std: float):
        super().__init__()
        self.mean, self.std = float(mean), float(std)

    def log_prob(self, x: torch.Tensor, sigma=0.0) -> torch.Tensor:
        variance = self.std**2 + torch.as_tensor(sigma, dtype=x.dtype, device=x.device) ** 2
        return (-0.5 * (x - self.mean) ** 2 / variance - 0.5 * torch.log(2 * math.pi * variance)).sum(-1)


def _score(x: torch.Tensor, priors: Sequence[nn.Module], sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Prior scores ``d/dx log p_k(x_k | sigma)`` ``(B, K, T)`` and the log-priors ``(B, K)``.

    A prior with ``score_and_log_prob`` (the exact toy prior) or ``score`` (a score prior, whose
    log-prior is unknown: NaN) gives its score directly; otherwise ``log_prob`` is differentiated.
    A joint score prior (``is_joint``, MSDM's route) is passed once per source, the same object
    ``K`` times, and scores all sources in one call.
    """
    if len(priors) > 1 and getattr(priors[0], "is_joint", False):
        if not all(p is priors[0] for p in priors) or priors[0].config.n_sources != len(priors):
            raise ValueError("a joint score prior must be passed once per source (the same module "
                             f"{priors[0].config.n_sources} times), alone")
        with torch.no_grad():
            grad = priors[0].score(x, sigma)
        return grad, torch.full(x.shape[:2], math.nan, dtype=x.dtype, device=x.device)
    if all(hasattr(p, "score_and_log_prob") or hasattr(p, "score") for p in priors):
        grads, logs = [], []
        for k, prior in enumerate(priors):
            if hasattr(prior, "score_and_log_prob"):
                grad, log_p = prior.score_and_log_prob(x[:, k], sigma)
            else:
                with torch.no_grad():
                    grad = prior.score(x[:, k], sigma)
                    log_p = (prior.log_prob(x[:, k], sigma) if hasattr(prior, "log_prob")
                             else torch.full(x.shape[:1], math.nan, dtype=x.dtype, device=x.device))
            grads.append(grad)
            logs.append(log_p)
        return torch.stack(grads, 1), torch.stack(logs, 1)
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        log_p = torch.stack([prior.log_prob(x[:, k], sigma) for k, prior in enumerate(priors)], dim=1)
        (grad,) = torch.autograd.grad(log_p.sum(), x)
    return grad, log_p.detach()


def _sgld(x, m, priors, sigma, eta, lam, steps, randn, mixing, clamp, bar=None, constraint="soft"):
    """``steps`` SGLD updates at one level (Eq. 16-17 of paper 002 with the BASIS likelihood).

    ``constraint="exact"`` keeps ``mix(x) = m`` exactly: the chain moves on that plane, so the
    prior scores and the noise are projected onto it (their mean over sources removed) and the
    likelihood term vanishes.
    """
    w = mixing_weight(x.shape[1], mixing)
    log_p = None
    for _ in range(steps):
        prior_score, log_p = _score(x, priors, sigma)
        noise = randn(*x.shape)
        if constraint == "exact":
            x = x + eta * (prior_score - prior_score.mean(1, keepdim=True)) \
                + math.sqrt(2 * eta) * (noise - noise.mean(1, keepdim=True))
        else:
            residual = m - mix(x, mixing)                                   # (B, T)
            likelihood_score = lam * w * residual[:, None]                  # d/dx_k of -(lam/2)||m - mix(x)||^2
            x = x + eta * (prior_score + likelihood_score) + math.sqrt(2 * eta) * noise
        if clamp is not None:
            x = x.clamp(-(clamp + 3 * sigma), clamp + 3 * sigma)
            if constraint == "exact":                   # back onto the plane after a clamp (rarely active)
                x = x + (m - mix(x, mixing))[:, None] / (w * x.shape[1])
        if bar is not None:
            bar.update()
    return x, log_p


def langevin_level(
    start: torch.Tensor,
    mixture: torch.Tensor,
    priors: Sequence[nn.Module],
    sigma: float,
    eta: float,
    likelihood_weight: float,
    steps: int,
    generator: torch.Generator,
    *,
    mixing: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``steps`` updates at one fixed level from an explicit ``start (batch, n_sources, time)``.

    For diagnostics only (e.g. starting at the true sources to see whether the posterior keeps
    them, an *oracle* experiment); separation goes through :func:`annealed_langevin`, whose only
    starting points are the mixture share or an estimate computed from the mixture.
    ``lambda = likelihood_weight / sigma^2``. Returns the final state and the log-priors
    ``(batch, n_sources)`` of the last step. No clamping, no padding.
    """
    mixing = get_mixing(mixing)

    def randn(*shape):
        return torch.randn(*shape, generator=generator).to(start.device)

    return _sgld(start.detach(), mixture, priors, sigma, eta, likelihood_weight / sigma**2, steps, randn, mixing, None)


def annealed_langevin(
    mixture: torch.Tensor,
    priors: Sequence[nn.Module],
    schedule: LangevinConfig,
    generator: torch.Generator,
    *,
    mixing: str | None = None,
    device: str | torch.device = "auto",
    show_progress: bool = False,
    start: torch.Tensor | None = None,
) -> tuple[torch.Tensor, list[dict]]:
    """Separate ``mixture`` by annealed SGLD; a pure function of its arguments.

    Args:
        mixture: ``(batch, time)`` or ``(time,)``.
        priors: one per source, in the order of the output's source axis.
        generator: a CPU generator; it seeds the noise (on the device) and is advanced.
        start: an estimate computed **from the mixture alone** (e.g. an amortised encoder's),
            ``(batch, n_sources, time)`` (or ``(n_sources, time)``): the chain begins at
            ``start + sigma_1 noise`` instead of the mixture share (a *refinement*; begin the
            schedule low). Under the exact constraint ``start`` is first moved onto its plane.

    Returns:
        ``estimates (batch, n_sources, time)`` (or ``(n_sources, time)`` for a 1-D mixture) and
        per-level diagnostics: ``{"level", "sigma", "eta", "lambda", "log_prior" (nats per sample,
        mean over batch and sources), "residual_rms" (RMS of m - mix(x))}``; the last level also
        counts ``diverged_chains``: chains whose state became non-finite (a prior's score overflowed),
        returned as the initial share of the mixture instead.

    With ``schedule.n_chains = C > 1`` every mixture runs ``C`` independent chains and the one with
    the best final posterior score (:func:`chain_scores`) is returned; this uses only the mixture.
    """
    if schedule.init not in ("mixture", "noise"):
        raise ValueError(f"init must be 'mixture' or 'noise', got {schedule.init!r}")
    if schedule.constraint not in ("soft", "exact"):
        raise ValueError(f"constraint must be 'soft' or 'exact', got {schedule.constraint!r}")
    if schedule.n_chains < 1:
        raise ValueError(f"n_chains must be at least 1, got {schedule.n_chains}")
    squeeze_batch = mixture.ndim == 1
    m = (mixture[None] if squeeze_batch else mixture).to(resolve_device(device), torch.float32)
    n_mixtures = m.shape[0]
    m = m.repeat_interleave(schedule.n_chains, 0)
    n_batch, length = m.shape
    n_sources = len(priors)
    multiple = math.lcm(*(int(getattr(p, "multiple", 1)) for p in priors))
    padded = math.ceil(length / multiple) * multiple
    m = nn.functional.pad(m, (0, padded - length))
    mixing = get_mixing(mixing)
    w = mixing_weight(n_sources, mixing)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    noise = torch.Generator(device=m.device).manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=noise, device=m.device)

    sigmas, etas, lambdas = schedule.sigmas(), schedule.step_sizes(), schedule.weights()
    # x is the estimate of the sources *at noise level sigma_i*; start from the first level's noise
    # (the exact constraint starts on its plane: the mixture share, noise with zero mean over sources)
    on_plane = schedule.constraint == "exact"
    base = m[:, None].expand(n_batch, n_sources, padded) / (w * n_sources) if schedule.init == "mixture" or on_plane else 0.0
    if start is not None:
        given = (start[None] if squeeze_batch else start).to(m.device, torch.float32)
        if given.shape[:2] != (n_mixtures, n_sources) or given.shape[-1] != length:
            raise ValueError(f"start must be (batch, n_sources, time) = {(n_mixtures, n_sources, length)}, "
                             f"got {tuple(given.shape)}")
        base = nn.functional.pad(given.repeat_interleave(schedule.n_chains, 0), (0, padded - length))
        if on_plane:
            base = base + (m - mix(base, mixing))[:, None] / (w * n_sources)
    start_noise = randn(n_batch, n_sources, padded)
    if on_plane:
        start_noise = start_noise - start_noise.mean(1, keepdim=True)
    x = base + float(sigmas[0]) * start_noise
    diagnostics = []
    bar = progress(total=schedule.n_levels * schedule.steps_per_level, desc="langevin", leave=False,
                   disable=not show_progress)
    for level, (sigma, eta, lam) in enumerate(zip(sigmas.tolist(), etas.tolist(), lambdas.tolist())):
        x, log_p = _sgld(x, m, priors, sigma, eta, lam, schedule.steps_per_level, randn, mixing, schedule.clamp, bar,
                         schedule.constraint)
        residual = m - mix(x, mixing)
        diagnostics.append({
            "level": level, "sigma": sigma, "eta": eta, "lambda": lam,
            "log_prior": float(log_p.mean()) / padded,
            "residual_rms": float(residual[:, :length].pow(2).mean().sqrt()),
        })
    bar.close()
    diverged = ~torch.isfinite(x).flatten(1).all(1)                      # (batch,) chains that blew up
    if diverged.any():                                                   # fall back to the initial share, and say so
        x = torch.where(diverged[:, None, None], m[:, None].expand_as(x) / (w * n_sources), x)
    diagnostics[-1]["diverged_chains"] = int(diverged.sum())
    if schedule.project:
        x = x + (m - mix(x, mixing))[:, None] / (w * n_sources)
    if schedule.clamp is not None:
        x = x.clamp(-schedule.clamp, schedule.clamp)
    if schedule.n_chains > 1:
        ranking = chain_scores(x, m, priors, float(sigmas[-1]), float(lambdas[-1]), mixing)     # padded: flows need it
        ranking = ranking.view(n_mixtures, schedule.n_chains)
        best = ranking.argmax(1) + torch.arange(n_mixtures, device=x.device) * schedule.n_chains
        diagnostics[-1]["chain_score_spread"] = float((ranking.max(1).values - ranking.min(1).values).mean())
        x = x[best]
    x = x[..., :length].detach()
    return (x[0] if squeeze_batch else x), diagnostics


def chain_scores(x: torch.Tensor, m: torch.Tensor, priors: Sequence[nn.Module], sigma: float, lam: float,
                 mixing: str | None = None) -> torch.Tensor:
    """How well each chain's final state ``x (B, N, T)`` explains its mixture ``m (B, T)``: ``(B,)``.

    With log-priors (flows, the exact toy prior): the log-posterior at the last level,
    ``sum_k log p_k(x_k | sigma) - (lam / 2) ||m - mix(x)||^2``. A score prior has no log-density,
    so it is replaced by the denoising residual, ``-sum_k ||D_k(x_k) - x_k||^2 / (2 sigma^2)``
    (zero for a state the prior's denoiser leaves in place), the same likelihood term added.
    """
    score, log_p = _score(x, priors, sigma)
    if torch.isnan(log_p).any():
        prior_term = -(sigma**2 * score).pow(2).sum((1, 2)) / (2 * sigma**2)
    else:
        prior_term = log_p.sum(1)
    return prior_term - 0.5 * lam * (m - mix(x, mixing)).pow(2).sum(-1)


class LangevinSeparator(Separator):
    """``separate(mixture (time,)) -> (n_sources, time)`` with fixed priors and schedule.

    The separator owns a generator seeded once, so a sequence of calls is reproducible.
    ``last`` holds the per-level diagnostics of the latest call (a list of dicts).
    """

    def __init__(self, priors: Sequence[nn.Module], schedule: LangevinConfig | None = None, *,
                 mixing: str | None = None, device: str = "auto", seed: int = 0):
        self.device = resolve_device(device)
        self.priors = [p.to(self.device).eval().requires_grad_(False) for p in priors]
        self.schedule = schedule or LangevinConfig()
        self.mixing = mixing
        self.generator = torch.Generator().manual_seed(seed)
        self.last: list[dict] = []

    def separate_batch(self, mixtures: torch.Tensor, start: torch.Tensor | None = None) -> torch.Tensor:
        """``(batch, time) -> (batch, n_sources, time)`` on the CPU; ``start``: a mixture-derived
        first estimate to refine (see :func:`annealed_langevin`)."""
        estimates, self.last = annealed_langevin(
            mixtures, self.priors, self.schedule, self.generator, mixing=self.mixing, device=self.device, start=start)
        return estimates.cpu()

    # The committed models. Each loader's keyword arguments with defaults are the method's knobs.

    @classmethod
    def from_pretrained(cls, sources: Sequence[str], *, checkpoint="checkpoints/flows", device="auto", seed: int = 0,
                        n_levels: int = 10, steps_per_level: int = 100, epsilon: float = 3e-5,
                        likelihood_weight: float = 1.0, **_unused) -> LangevinSeparator:
        """The flow priors of Frank's toy classes ``<checkpoint>/toy_<source>.pt`` (a folder; 14.7 kHz)."""
        schedule = LangevinConfig.default().replace(n_levels=n_levels, steps_per_level=steps_per_level,
                                                    epsilon=epsilon, likelihood_weight=likelihood_weight)
        from sepcore.models.flow import FlowPrior

        priors = load_source_priors(sources, checkpoint, "toy", FlowPrior, device)
        return cls(priors, schedule, device=device, seed=seed).described(sources, 14700)

    @classmethod
    def from_slakh_flows(cls, sources: Sequence[str], *, checkpoint="checkpoints/flows", device="auto", seed: int = 0,
                         n_levels: int = 8, steps_per_level: int = 20, likelihood_weight: float = 1.0,
                         **_unused) -> LangevinSeparator:
        """The Slakh-format flow priors ``<checkpoint>/slakh_<source>.pt`` (22.05 kHz) and the music
        schedule (:meth:`LangevinConfig.music`)."""
        schedule = LangevinConfig.music("default").replace(n_levels=n_levels, steps_per_level=steps_per_level,
                                                           likelihood_weight=likelihood_weight)
        from sepcore.models.flow import FlowPrior

        priors = load_source_priors(sources, checkpoint, "slakh", FlowPrior, device)
        return cls(priors, schedule, device=device, seed=seed).described(sources, 22050)

    @classmethod
    def from_score_priors(cls, sources: Sequence[str], *, checkpoint="checkpoints/score", device="auto", seed: int = 0,
                          n_levels: int = 8, steps_per_level: int = 5, output: str = "chosen",
                          **_unused) -> Separator:
        """The Slakh-format score priors ``<checkpoint>/slakh_<source>.pt`` (22.05 kHz).

        The schedule (annealed, stronger likelihood or exact constraint) and the output (raw or
        masked by the estimates' spectrograms) are those chosen on validation chunks, read from
        ``<checkpoint>/langevin_settings.json`` (without it: annealed, masked); ``n_levels`` and
        ``steps_per_level`` replace the schedule's, ``output`` the chosen output."""
        import json
        from pathlib import Path

        from sepcore.models.score_prior import ScorePrior
        from sepcore.separation.masking import with_output

        priors = load_source_priors(sources, checkpoint, "slakh", ScorePrior, device)
        settings_path = Path(checkpoint) / "langevin_settings.json"
        settings = json.loads(settings_path.read_text()) if settings_path.exists() else {"output": "masked"}
        schedule = (LangevinConfig.from_dict(settings["schedule"]) if "schedule" in settings
                    else LangevinConfig.for_score_priors(priors)).replace(n_levels=n_levels,
                                                                         steps_per_level=steps_per_level)
        separator = cls(priors, schedule, device=device, seed=seed).described(sources, 22050)
        return with_output(separator, settings["output"] if output == "chosen" else output)


def load_source_priors(sources: Sequence[str], folder, dataset: str, prior_class: type, device) -> list[nn.Module]:
    """One committed prior per source, ``<folder>/<dataset>_<source>.pt``, each checked to be of its
    source and of ``prior_class`` (:class:`~sepcore.models.flow.FlowPrior` or
    :class:`~sepcore.models.score_prior.ScorePrior`)."""
    from pathlib import Path

    from sepcore.checkpoints import load_model

    return [load_model(Path(folder) / f"{dataset}_{s}.pt", expect={"source": s}, expect_class=prior_class,
                       device=device) for s in sources]
