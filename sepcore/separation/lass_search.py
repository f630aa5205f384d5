"""LASS inference (paper 004 Algorithm 1), post-inference refinement (Eq. 12-13) and separators.

At step ``s``, for every row ``r`` (a beam or a sample) with histories ``z1_<s, z2_<s``::

    score_r(i, j) = running_r + log p1(i | z1_<s) + log p2(j | z2_<s) + lambda log p(m_s | i, j)

evaluated only on the non-zero ``(i, j)`` of the likelihood slice of the mixture code ``m_s``
(Eq. 11; :meth:`CountLikelihood.gather_slices`). Samplers, all through the shared kernel
:func:`sepcore.separation.sampling.select`:

* ``greedy``: the argmax per row (MAP per step);
* ``beam``: the top ``B`` of the ``B x L`` table of each mixture (``running`` included), the
  priors' KV caches reordered in place (:func:`reorder_cache_inplace`); a surviving beam keeps
  its slot, so only forked beams are copied; the best final beam is returned;
* ``ancestral`` / ``top_k`` / ``top_p``: one draw per row from the (filtered) per-step posterior.

Rows are ``(n_mixtures * n_rows)``: several mixtures and candidates run in one batch (on CUDA
when the models are there). Sequences longer than a prior's ``block_size`` continue with a
sliding context: the cache is rebuilt from ``[start, last block_size // 2 codes]``.

Speed: with ``batched_priors`` (default) the two priors run as one
:class:`sepcore.models.stacked_prior.StackedPriors` call per step with one KV cache of ``N R``
rows (same search up to float rounding; tested), and a beam that forks copies its parent's cache
rows directly (:func:`reorder_cache_inplace`).

N > 2 sources: with an N-source :class:`CountLikelihood` (fitted on N-source training
mixtures) and N priors, the step is the same with ``(i, j)`` replaced by the tuples of the slice,
``score_r(i_1..i_N) = running_r + sum_n log p_n(i_n | z_n,<s) + lambda log p(m_s | i_1..i_N)``; the
cost per step is ``R L`` gathers for a slice of ``L`` tuples (the stored tuples of one mixture
code; ``L`` is bounded by ``N!`` times the counted positions with that code) plus the N prior
calls. Unlike the pruned latent Bayes of :mod:`sepcore.separation.latent_bayes_pruned`, nothing
is pruned: the slice already lists every tuple with non-floor likelihood. The price is coverage:
a triple never counted in training is never proposed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sepcore.mixing import mix
from sepcore.models.stacked_prior import StackedPriors
from sepcore.models.transformer import KVCache
from sepcore.profiles import ProfileConfig
from sepcore.separation.base import Separator
from sepcore.separation.lass import CountLikelihood
from sepcore.separation.masking import (
    check_estimate,
    check_output,
    codes_to_sources,
    mask_with_waveforms,
    shifted_posterior_sources,
)
from sepcore.separation.prior_stepper import PriorStepper, stack_priors
from sepcore.separation.sampling import select
from sepcore.utils import resolve_device

SAMPLERS = ("greedy", "beam", "ancestral", "top_k", "top_p")


@dataclass
class LASSConfig(ProfileConfig):
    method: str = "beam"
    n_rows: int = 10                    # beams (beam) or candidates (samplers); greedy uses 1
    likelihood_weight: float = 3.0      # lambda: 3.0 audio, 1.0 images (reference code)
    top_k: int = 16
    top_p: float = 0.9
    temperature: float = 1.0
    refine_steps: int = 0               # Eq. 12-13 (500 for images in the reference)
    refine_lr: float = 0.1
    refine_proximity: float = 1e-3
    seed: int = 0
    batched_priors: bool = True         # priors of one architecture as one StackedPriors call per step
    output: str = "raw"                 # raw decodes, or "masked": the mixture masked by them (masking.py)
    mask_power: float = 2.0
    estimate: str = "map"               # the best row; "mean" / "wiener": all rows' masks / powers (masking.py)
    shifts: int = 1                     # posterior estimates: the mean over searches on 1..n frame grids (masking.py)

    @classmethod
    def images(cls, **overrides):
        return cls(**{"method": "ancestral", "n_rows": 64, "likelihood_weight": 1.0, **overrides})


@dataclass
class SearchResult:
    codes: torch.Tensor       # (M, n_rows, N, S) sequences (the best row: ``score.argmax(1)``)
    score: torch.Tensor       # (M, n_rows) running log posterior score (unnormalised)
    seconds: float


@torch.no_grad()
def lass_search(priors, likelihood: CountLikelihood, mix_codes: torch.Tensor, config: LASSConfig,
                generator: torch.Generator | None = None, stacked: StackedPriors | None = None) -> SearchResult:
    """Algorithm 1 for ``mix_codes: (M, S)`` (flattened latent codes of M mixtures), N = ``len(priors)``.

    ``stacked``: the priors as one :class:`StackedPriors` (built here when ``config.batched_priors``
    and not given); the search is the same up to float rounding of the prior log-probabilities.

    Returns :class:`SearchResult` with ``codes: (M, n_rows, N, S)``.
    """
    if config.method not in SAMPLERS:
        raise ValueError(f"LASSConfig.method must be one of {SAMPLERS}, got {config.method!r}")
    N = len(priors)
    if N < 2 or N != likelihood.n_sources:
        raise ValueError(f"LASS takes one prior per source (one may be passed twice): got {N} priors for a "
                         f"{likelihood.n_sources}-source count likelihood")
    started = time.perf_counter()
    device = mix_codes.device
    M, S = mix_codes.shape
    B = 1 if config.method == "greedy" else config.n_rows
    R = M * B
    stepper = PriorStepper(priors, R, device, batched=config.batched_priors, stacked=stacked)
    codes = torch.empty(R, N, S, dtype=torch.long, device=device)
    running = torch.zeros(M, B, device=device)
    if config.method == "beam":
        running[:, 1:] = float("-inf")              # all beams start identical: expand from one
    running = running.reshape(R)
    row_mix = torch.arange(M, device=device).repeat_interleave(B)
    lam = config.likelihood_weight
    for s in range(S):
        log_priors = stepper.log_probs(codes[:, :, :s])                          # (N, R, K)
        *slice_codes, ll = likelihood.gather_slices(mix_codes[row_mix, s])   # N x (R, L), (R, L)
        table = lam * ll
        for lp, idx in zip(log_priors, slice_codes):
            table = table + lp.gather(1, idx)                                 # (R, L)
        if config.method == "beam":
            L = table.shape[1]
            total = (running[:, None] + table).reshape(M, B * L)
            chosen = select(total, method="greedy", n=B)                     # (M, B) over beams x tuples
            parent = chosen.indices // L                                     # (M, B) the beam of each entry
            order = _keep_slots(parent, B).to(device)                         # survivors stay in place
            beam = parent.gather(1, order)
            col = (chosen.indices.gather(1, order) - beam * L).reshape(R)     # the tuple within the slice
            rows = (torch.arange(M, device=device)[:, None] * B + beam).reshape(R)
            running = chosen.scores.gather(1, order).reshape(R)
            codes = codes[rows]
        else:
            chosen = select(table, method="ancestral" if config.method == "ancestral" else config.method, n=1,
                            top_k=config.top_k, top_p=config.top_p,
                            temperature=1.0 if config.method == "greedy" else config.temperature, generator=generator)
            rows, col = None, chosen.indices[:, 0]
            running = running + table.gather(1, col[:, None])[:, 0]
        source_rows = torch.arange(R, device=device) if rows is None else rows
        step_codes = torch.stack([idx[source_rows, col] for idx in slice_codes])  # (N, R)
        codes[:, :, s] = step_codes.T
        stepper.advance(step_codes, rows)
    return SearchResult(codes.reshape(M, B, N, S), running.reshape(M, B), time.perf_counter() - started)


def _keep_slots(parent: torch.Tensor, B: int) -> torch.Tensor:
    """``(M, B)`` order of the chosen entries so that entry ``order[m, b]`` has parent ``b`` when possible."""
    order = []
    for row in parent.tolist():
        slots, extra = [-1] * B, []
        for entry, p in enumerate(row):
            if slots[p] < 0:
                slots[p] = entry
            else:
                extra.append(entry)
        empty = [b for b in range(B) if slots[b] < 0]
        for b, entry in zip(empty, extra):
            slots[b] = entry
        order.append(slots)
    return torch.tensor(order, dtype=torch.long)


def refine(vqvae, codes: torch.Tensor, mixture: torch.Tensor, *, steps: int = 500, lr: float = 0.1,
           proximity: float = 1e-3, decay_every: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """Post-inference refinement (paper 004 Eq. 12-13): Adam on the continuous latents.

    ``z_k`` starts at the embeddings ``z0_k = e(codes_k)`` and minimises, per row,
    ``mean (mix(D(z1), D(z2)) - m)^2 + proximity * ||z - z0||^2`` (learning rate halved every
    ``decay_every`` steps, as the reference code).

    Args:
        codes: ``(R, N, *latent)``; mixture: ``(R, *spatial)``.
    Returns:
        ``(sources (R, N, *spatial), mixture error per step (steps + 1,))``.
    """
    R, N = codes.shape[:2]
    latent = codes.shape[2:]
    z0 = vqvae.embed(codes.reshape(R * N, *latent)).detach()
    z = z0.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([z], lr=lr)
    schedule = torch.optim.lr_scheduler.StepLR(optimiser, step_size=decay_every, gamma=0.5)
    target = mixture.reshape(R, -1)
    errors = []
    was_training = vqvae.training
    vqvae.eval()
    for p in vqvae.parameters():
        p.requires_grad_(False)
    try:
        with torch.enable_grad():                  # callers may hold no_grad (LASSSeparator.separate)
            for step in range(steps + 1):
                decoded = vqvae.decode_embeddings(z)
                sources = decoded.reshape(R, N, *decoded.shape[1:])
                err = (mix(sources, dim=1).reshape(R, -1) - target).pow(2).mean(1)        # (R,)
                errors.append(float(err.detach().mean()))
                if step == steps:
                    break
                loss = err.sum() + proximity * (z - z0).pow(2).flatten(1).sum(1).sum()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
    finally:
        for p in vqvae.parameters():
            p.requires_grad_(True)
        vqvae.train(was_training)
    return sources.detach(), torch.tensor(errors)


class LASSSeparator(Separator):
    """``separate(mixture (T,)) -> (N, T)`` for audio; ``separate_images(m (M, H, W)) -> (M, N, H, W)``.

    Args:
        vqvae: the (shared) VQ-VAE; priors: N :class:`TransformerPrior` (the same one twice for a
            class-agnostic prior); likelihood: the fitted N-source :class:`CountLikelihood`, or a
            likelihood of the mixture's own frames (``bind(mixture)`` gives the indices that stand
            in for the mixture codes, :mod:`sepcore.separation.magnitude_likelihood`).

    ``last`` holds the latest call's :class:`SearchResult`.
    """

    def __init__(self, vqvae, priors, likelihood: CountLikelihood, config: LASSConfig | None = None, device="auto"):
        self.device = resolve_device(device)
        self.vqvae = vqvae.to(self.device).eval()
        self.priors = [p.to(self.device).eval() for p in priors]
        K = vqvae.config.codebook_size
        if likelihood.K != K or any(p.config.vocab_size != K for p in self.priors):
            raise ValueError(f"codebook sizes differ: VQ-VAE {K}, likelihood {likelihood.K}, priors "
                             f"{[p.config.vocab_size for p in self.priors]}; fit all on the same VQ-VAE")
        if likelihood.n_sources != len(self.priors):
            raise ValueError(f"{len(self.priors)} priors for a {likelihood.n_sources}-source count likelihood; "
                             "pass one prior per source and counts fitted on mixtures of as many sources")
        self.likelihood = likelihood.to(self.device)
        self.remap = likelihood.remap_unseen(vqvae.codebook).to(self.device)
        self.config = config or LASSConfig()
        check_output(self.config.output)
        if check_estimate(self.config.estimate, self.config.output) != "map" and self.config.refine_steps:
            raise ValueError(f'estimate="{self.config.estimate}" takes the rows as they are: set refine_steps=0')
        if self.config.shifts < 1:
            raise ValueError(f"LASSConfig.shifts must be at least 1, got {self.config.shifts}")
        self.stacked = stack_priors(self.priors)
        self.last: SearchResult | None = None

    def _generator(self):
        return torch.Generator().manual_seed(self.config.seed)

    @torch.no_grad()
    def _codes(self, x: torch.Tensor) -> torch.Tensor:
        if self.likelihood.binds_mixture:        # a likelihood of the mixture itself: it scores its frames
            return self.likelihood.bind(x)
        return self.remap[self.vqvae.encode(x.to(self.device))]

    @torch.no_grad()
    def search(self, padded: torch.Tensor) -> tuple[SearchResult, torch.Tensor]:
        """Algorithm 1 on one mixture ``padded (1, T)`` (``T`` a multiple of the hop): ``(result,
        mixture codes (1, S))``; a likelihood of the mixture's own frames is bound to it first."""
        mix_codes = self._codes(padded)
        return lass_search(self.priors, self.likelihood, mix_codes, self.config, self._generator(), self.stacked), mix_codes

    @torch.no_grad()
    def separate(self, mixture: torch.Tensor) -> torch.Tensor:
        """``(T,) -> (N, T)``: Algorithm 1 then decoding; the best beam, or the best-scoring sample
        (``estimate="map"``), or, for samplers, the mean of all rows' masks (``"mean"``) or the Wiener
        filter of their mean powers (``"wiener"``, :func:`~sepcore.separation.masking.posterior_sources`),
        averaged over ``config.shifts`` frame grids (:meth:`delayed_rows`)."""
        T = mixture.shape[-1]
        padded = self.vqvae.pad_to_hop(mixture.reshape(1, -1))
        result, _ = self.search(padded)
        if self.config.estimate != "map":
            rows = [(0, result.codes[0])] + self.delayed_rows(mixture)
            self.last = result
            return shifted_posterior_sources(self.vqvae, rows, mixture.reshape(-1), self.config.estimate,
                                             self.config.mask_power)
        self.last = result
        best = result.score[0].argmax()
        codes = result.codes[0, best]                                             # (N, S)
        if self.config.refine_steps:
            sources, _ = refine(self.vqvae, codes[None], padded.to(self.device), steps=self.config.refine_steps,
                                lr=self.config.refine_lr, proximity=self.config.refine_proximity)
            sources = sources[0, :, :T].float().cpu()
            if self.config.output == "masked":
                return mask_with_waveforms(mixture.reshape(-1), sources, power=self.config.mask_power)
            return sources
        return codes_to_sources(self.vqvae, codes, mixture.reshape(-1), self.config.output, self.config.mask_power)

    @torch.no_grad()
    def delayed_rows(self, mixture: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
        """``[(offset, codes (R, N, S))]`` for ``k = 1 .. shifts - 1``: the rows of the search on the
        mixture ``(T,)`` delayed by ``offset = k * hop // shifts`` samples (zeros in front), for
        :func:`~sepcore.separation.masking.shifted_posterior_sources`; empty when ``shifts`` is 1.
        ``last`` and a likelihood of the mixture's own frames keep the undelayed mixture."""
        mixture, last, rows = mixture.reshape(-1), self.last, []
        for k in range(1, self.config.shifts):
            offset = k * self.vqvae.config.hop // self.config.shifts
            result, _ = self.search(self.vqvae.pad_to_hop(F.pad(mixture, (offset, 0))[None]))
            rows.append((offset, result.codes[0]))
        if rows and self.likelihood.binds_mixture:          # bound to the undelayed mixture again, as after its search
            self._codes(self.vqvae.pad_to_hop(mixture[None]))
        self.last = last
        return rows

    def separate_images(self, mixtures: torch.Tensor, refine_steps: int | None = None) -> torch.Tensor:
        """``(M, H, W)`` or ``(M, 1, H, W)`` -> ``(M, N, H, W)`` in [0, 1].

        Of the ``n_rows`` candidates of each mixture, keeps the one whose decoded mixture is closest
        to ``m`` in L2 (the reference's rule for MNIST), then refines (Eq. 12-13) if asked.
        """
        m = mixtures.reshape(mixtures.shape[0], *mixtures.shape[-2:]).float().to(self.device)
        M = m.shape[0]
        with torch.no_grad():
            latent = self._codes(m)                                                # (M, h, w)
            result = lass_search(self.priors, self.likelihood, latent.flatten(1), self.config, self._generator(),
                                 self.stacked)
            self.last = result
            B = result.codes.shape[1]
            N = result.codes.shape[2]
            flat = result.codes.reshape(M * B * N, *latent.shape[1:])
            decoded = self.vqvae.decode(flat).reshape(M, B, N, *m.shape[1:])
            error = (mix(decoded, dim=2) - m[:, None]).pow(2).flatten(2).sum(-1)  # (M, B)
            best = error.argmin(1)
            chosen = result.codes[torch.arange(M), best].reshape(M, N, *latent.shape[1:])
            sources = decoded[torch.arange(M), best]
        steps = self.config.refine_steps if refine_steps is None else refine_steps
        if steps:
            sources, _ = refine(self.vqvae, chosen, m, steps=steps, lr=self.config.refine_lr,
                                proximity=self.config.refine_proximity)
        return sources.clamp(0, 1).cpu()

    # The committed models. Each loader's keyword arguments with defaults are the method's knobs.

    @classmethod
    def from_pretrained(cls, sources, *, checkpoint="checkpoints/latents", device="auto", seed: int = 0,
                        sampler: str = "beam", n_beams: int = 10, likelihood_weight: float = 3.0,
                        **_unused) -> LASSSeparator:
        """LASS (paper 004). Two sources: ``<checkpoint>/vqvae.pt``, its priors and
        ``checkpoints/lass/audio_counts_vqvae.pt`` (the paper's plain VQ-VAE). More sources:
        ``<checkpoint>/lqvae.pt``, its priors and the N-source counts
        ``checkpoints/lass/audio_counts_lqvae_<classes>.pt`` (drums, bass, guitar are committed)."""
        from pathlib import Path

        from sepcore.paths import CHECKPOINTS
        from sepcore.separation.count_files import audio_counts_name, load_counts
        from sepcore.separation.latent_models import load_latent_models

        kind = "vqvae" if len(sources) == 2 else "lqvae"
        vqvae, priors = load_latent_models(kind, sources, checkpoint, device)
        likelihood = load_counts(CHECKPOINTS / "lass" / audio_counts_name(f"{kind}.pt", tuple(sources)),
                                 expect_vqvae=Path(checkpoint) / f"{kind}.pt")
        config = LASSConfig.default().replace(method=sampler, n_rows=n_beams,
                                              likelihood_weight=likelihood_weight, seed=seed)
        return cls(vqvae, priors, likelihood, config, device=device).described(sources, vqvae.config.sample_rate)

    @classmethod
    def from_spectral(cls, sources, *, checkpoint="checkpoints/latents", device="auto", seed: int = 0,
                      n_beams: int = -1, likelihood_weight: float = -1.0, output: str = "masked",
                      n_rows: int = -1, n_shifts: int = -1, **_unused) -> LASSSeparator:
        """LASS over the phase-free spectral codec (our extension): ``<checkpoint>/spectral.pt``, its
        class priors and the smoothed counts ``checkpoints/lass/counts_spectral_<classes>.pt``, times
        the magnitude likelihood (:mod:`sepcore.separation.magnitude_likelihood`, with the pair
        features of ``checkpoints/lass/magnitude_pairs_spectral_<classes>.pt`` where validation chose
        them) when validation chose it; the output masks the mixture with the decoded magnitudes (``output="raw"``:
        Griffin-Lim decodes). When validation chose the posterior mean, the masked output averages
        the masks of ``n_rows`` samples (over ``n_shifts`` frame grids) instead of taking the best of
        ``n_beams`` beams. A negative ``likelihood_weight``, ``n_beams``, ``n_rows`` or ``n_shifts``
        takes the value chosen on validation
        (:func:`~sepcore.separation.latent_models.spectral_lass_defaults`)."""
        from pathlib import Path

        from sepcore.separation.count_files import load_counts_file
        from sepcore.separation.lass_smoothed import SmoothedCountLikelihood
        from sepcore.separation.latent_models import load_latent_models, spectral_lass_defaults

        folder = Path(checkpoint)
        counts_path = folder.parent / "lass" / f"counts_spectral_{'_'.join(sources)}.pt"
        if not counts_path.exists():
            raise FileNotFoundError(f"{counts_path} does not exist: LASS on the spectral codec has counts for drums "
                                    "and bass only (`python -m sepcore.train.counts --codec "
                                    "checkpoints/latents/spectral.pt ...`)")
        codec, priors = load_latent_models("spectral", sources, folder, device)
        counts, metadata = load_counts_file(counts_path)
        likelihood = SmoothedCountLikelihood(counts, codec.codebook, **metadata["smoothing"])
        defaults = spectral_lass_defaults(folder)
        weight = defaults["likelihood_weight"] if likelihood_weight < 0 else likelihood_weight
        n_beams = defaults["spectral_beams"] if n_beams < 0 else n_beams
        if defaults["magnitude_weight"] > 0:
            from sepcore.separation.magnitude_likelihood import (
                MagnitudeLikelihood,
                load_fitted_pairs,
                relative_counts_weight,
            )

            fitted = (load_fitted_pairs(folder.parent / "lass", folder / "spectral.pt", sources) if defaults["fitted_pairs"] else None)
            likelihood = MagnitudeLikelihood(codec, counts=likelihood, fitted=fitted,
                                             counts_weight=relative_counts_weight(weight, defaults["magnitude_weight"]))
            weight = defaults["magnitude_weight"]
        method, estimate, temperature, power, shifts = "beam", "map", 1.0, defaults["mask_power"], 1
        if defaults["estimate"] != "map" and output == "masked":     # rows drawn by a sampler, all of them used
            method, estimate, temperature = defaults["sampler"], defaults["estimate"], defaults["sampler_temperature"]
            n_beams, power = defaults["sampler_rows"] if n_rows < 0 else n_rows, defaults["posterior_power"]
            shifts = defaults["shifts"] if n_shifts < 0 else n_shifts
        config = LASSConfig(method=method, n_rows=n_beams, likelihood_weight=weight, seed=seed, output=output,
                            mask_power=power, estimate=estimate, temperature=temperature, shifts=shifts)
        return cls(codec, priors, likelihood, config, device=device).described(sources, codec.config.sample_rate)


def kv_cache_bytes(cache: KVCache | None) -> int:
    return 0 if cache is None else cache.keys.numel() * cache.keys.element_size() * 2
