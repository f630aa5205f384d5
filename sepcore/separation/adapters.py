"""Registry factories for separators written against their own constructors.

Each ``make_<name>`` follows the registry's factory contract (:mod:`sepcore.api`):
``factory(sources, *, checkpoint, sample_rate, device, seed, **knobs) -> separate`` with
``separate(mixture (time,)) -> (n_sources, time)``. The separators' modules are imported
inside the factories, so this module imports nothing heavy, and the registry entry's
``requires`` says which module a method needs.
"""

from __future__ import annotations

from collections.abc import Sequence


def _blind(method: str):
    def factory(sources: Sequence[str], *, sample_rate: int | None = None, **_unused):
        from sepcore.separation.blind import BlindSeparator

        return BlindSeparator(method, tuple(sources), sample_rate or 22050)

    factory.__name__ = factory.__qualname__ = f"make_{method}"
    factory.__doc__ = f"Registry factory for the blind baseline {method!r} (sepcore.separation.blind)."
    return factory


make_rpca = _blind("rpca")
make_ica = _blind("ica")
make_hpss = _blind("hpss")
make_repet = _blind("repet")
make_repet_sim = _blind("repet_sim")
make_ft2d = _blind("ft2d")
make_nmf = _blind("nmf")


def make_convtasnet(sources: Sequence[str], *, checkpoint=None, sample_rate: int | None = None, device="auto",
                    **_unused):
    """Registry factory for the supervised Conv-TasNet (checkpoint checked for its sample rate)."""
    from sepcore.separation.supervised import load_supervised

    return load_supervised(checkpoint, tuple(sources), sample_rate or 22050, device)


# ----------------------------------------------------------------------------------------------
# Generative methods, with the committed default-profile checkpoints. Each factory's keyword
# arguments are the method's knobs (the CLI's --knob and the Explore chapter's widgets).

def _flows(sources: Sequence[str], folder, dataset: str, device):
    from pathlib import Path

    from sepcore.checkpoints import load_model
    from sepcore.models.flow import FlowPrior

    return [load_model(Path(folder) / f"{dataset}_{s}.pt", expect={"source": s}, expect_class=FlowPrior,
                       device=device) for s in sources]


def make_langevin(sources: Sequence[str], *, checkpoint="checkpoints/flows", device="auto", seed: int = 0,
                  n_levels: int = 10, steps_per_level: int = 100, epsilon: float = 3e-5,
                  likelihood_weight: float = 1.0, **_unused):
    """Annealed Langevin with the flow priors ``<checkpoint>/toy_<source>.pt`` (a folder; 14.7 kHz)."""
    from sepcore.separation.langevin import LangevinConfig, LangevinSeparator

    schedule = LangevinConfig.default().replace(n_levels=n_levels, steps_per_level=steps_per_level,
                                                epsilon=epsilon, likelihood_weight=likelihood_weight)
    return LangevinSeparator(_flows(sources, checkpoint, "toy", device), schedule, device=device, seed=seed)


def make_langevin_slakh(sources: Sequence[str], *, checkpoint="checkpoints/flows", device="auto", seed: int = 0,
                        n_levels: int = 8, steps_per_level: int = 20, likelihood_weight: float = 1.0, **_unused):
    """Annealed Langevin with the Slakh-format flow priors ``<checkpoint>/slakh_<source>.pt`` (22.05 kHz)
    and the music schedule (:meth:`LangevinConfig.music`)."""
    from sepcore.separation.langevin import LangevinConfig, LangevinSeparator

    schedule = LangevinConfig.music("default").replace(n_levels=n_levels, steps_per_level=steps_per_level,
                                                       likelihood_weight=likelihood_weight)
    return LangevinSeparator(_flows(sources, checkpoint, "slakh", device), schedule, device=device, seed=seed)


def make_langevin_score(sources: Sequence[str], *, checkpoint="checkpoints/score", device="auto", seed: int = 0,
                        n_levels: int = 8, steps_per_level: int = 5, output: str = "chosen", **_unused):
    """Annealed Langevin with the Slakh-format score priors ``<checkpoint>/slakh_<source>.pt`` (22.05 kHz).

    The schedule (annealed, stronger likelihood or exact constraint) and the output (raw or masked by
    the estimates' spectrograms) are those chosen on validation chunks, read from
    ``<checkpoint>/langevin_settings.json`` (without it: annealed, masked); ``n_levels`` and
    ``steps_per_level`` replace the schedule's, ``output`` the chosen output."""
    import json
    from pathlib import Path

    from sepcore.checkpoints import load_model
    from sepcore.models.score_prior import ScorePrior
    from sepcore.separation.langevin import LangevinConfig, LangevinSeparator
    from sepcore.separation.masking import with_output

    folder = Path(checkpoint)
    priors = [load_model(folder / f"slakh_{s}.pt", expect={"source": s}, expect_class=ScorePrior, device=device)
              for s in sources]
    settings_path = folder / "langevin_settings.json"
    settings = json.loads(settings_path.read_text()) if settings_path.exists() else {"output": "masked"}
    schedule = (LangevinConfig.from_dict(settings["schedule"]) if "schedule" in settings
                else LangevinConfig.for_score_priors(priors)).replace(n_levels=n_levels, steps_per_level=steps_per_level)
    separator = LangevinSeparator(priors, schedule, device=device, seed=seed)
    return with_output(separator.separate, settings["output"] if output == "chosen" else output)


def make_variational(sources: Sequence[str], *, checkpoint="checkpoints/variational/toy_beta.pt", device="auto",
                     output="raw", **_unused):
    """Amortised variational separation with the encoders of ``checkpoint`` (toy Beta by default;
    ``checkpoints/variational/slakh_truncnormal[_score].pt`` for drums and bass). ``output="masked"``
    masks the mixture with the posterior means' spectrograms (:func:`sepcore.separation.masking.mask_with_waveforms`)."""
    from sepcore.checkpoints import load_model
    from sepcore.separation.masking import with_output
    from sepcore.separation.variational import VariationalSeparator

    model = load_model(checkpoint, expect={"sources": tuple(sources)}, expect_class=VariationalSeparator,
                       device=device)
    return with_output(model.separate, output)


def _latent_models(kind: str, sources: Sequence[str], folder, device):
    from pathlib import Path

    from sepcore.checkpoints import load_model
    from sepcore.models.spectral_codec import SpectralCodec
    from sepcore.models.transformer import TransformerPrior
    from sepcore.models.vqvae import VQVAE

    folder = Path(folder)
    codec_class = SpectralCodec if kind == "spectral" else VQVAE
    vqvae = load_model(folder / f"{kind}.pt", expect_class=codec_class, device=device)
    priors = [load_model(folder / f"prior_{kind}_{s}.pt", expect={"source_class": s}, expect_class=TransformerPrior,
                         device=device) for s in sources]           # each prior must be of the class it is loaded for
    return vqvae, priors


def make_latent_bayes(sources: Sequence[str], *, checkpoint="checkpoints/latents", device="auto", seed: int = 0,
                      sigma: float = 0.4, n_candidates: int = 16, alpha: float = 0.0, **_unused):
    """LQ-VAE latent posterior sampling + rejection (paper 003): ``<checkpoint>/lqvae.pt`` and its priors."""
    from sepcore.separation.latent_bayes import LatentBayesConfig, LatentBayesSeparator

    vqvae, priors = _latent_models("lqvae", sources, checkpoint, device)
    config = LatentBayesConfig.default().replace(sigma=sigma, n_candidates=n_candidates, alpha=alpha, seed=seed)
    return LatentBayesSeparator(vqvae, priors, config, device=device).separate


def make_lass(sources: Sequence[str], *, checkpoint="checkpoints/latents", device="auto", seed: int = 0,
              sampler: str = "beam", n_beams: int = 10, likelihood_weight: float = 3.0, **_unused):
    """LASS (paper 004). Two sources: ``<checkpoint>/vqvae.pt``, its priors and
    ``checkpoints/lass/audio_counts_vqvae.pt`` (the paper's plain VQ-VAE). More sources:
    ``<checkpoint>/lqvae.pt``, its priors and the N-source counts
    ``checkpoints/lass/audio_counts_lqvae_<classes>.pt`` (drums, bass, guitar are committed)."""
    from pathlib import Path

    from sepcore.paths import CHECKPOINTS
    from sepcore.separation.count_files import audio_counts_name, load_counts
    from sepcore.separation.lass_search import LASSConfig, LASSSeparator

    kind = "vqvae" if len(sources) == 2 else "lqvae"
    vqvae, priors = _latent_models(kind, sources, checkpoint, device)
    likelihood = load_counts(CHECKPOINTS / "lass" / audio_counts_name(f"{kind}.pt", tuple(sources)),
                             expect_vqvae=Path(checkpoint) / f"{kind}.pt")
    config = LASSConfig.default().replace(method=sampler, n_rows=n_beams,
                                          likelihood_weight=likelihood_weight, seed=seed)
    return LASSSeparator(vqvae, priors, likelihood, config, device=device).separate


SPECTRAL_SETTINGS = "lass_spectral_settings.json"


def spectral_lass_defaults(folder) -> dict:
    """The settings chosen on validation by the LASS audio chapter
    (``<checkpoints>/lass/lass_spectral_settings.json``): the counts' weight lambda, the mask power,
    and, when chosen, the magnitude likelihood's weight (0: counts alone) and the beam count.
    lambda = 3, p = 2, counts alone and 10 beams when the file is absent."""
    import json
    from pathlib import Path

    defaults = {"likelihood_weight": 3.0, "mask_power": 2.0, "magnitude_weight": 0.0, "spectral_beams": 10}
    path = Path(folder).parent / "lass" / SPECTRAL_SETTINGS
    if path.exists():
        saved = json.loads(path.read_text())
        defaults.update({k: type(v)(saved[k]) for k, v in defaults.items() if k in saved})
    return defaults


def make_lass_spectral(sources: Sequence[str], *, checkpoint="checkpoints/latents", device="auto", seed: int = 0,
                       n_beams: int = -1, likelihood_weight: float = -1.0, output: str = "masked", **_unused):
    """LASS over the phase-free spectral codec (our extension): ``<checkpoint>/spectral.pt``, its class
    priors and the smoothed counts ``checkpoints/lass/counts_spectral_<classes>.pt``, times the
    magnitude likelihood (:mod:`sepcore.separation.magnitude_likelihood`) when validation chose it;
    the output masks the mixture with the decoded magnitudes (``output="raw"``: Griffin-Lim decodes).
    A negative ``likelihood_weight`` or ``n_beams`` takes the value chosen on validation."""
    from pathlib import Path

    from sepcore.separation.count_files import load_counts_file
    from sepcore.separation.lass_search import LASSConfig, LASSSeparator
    from sepcore.separation.lass_smoothed import SmoothedCountLikelihood

    folder = Path(checkpoint)
    counts_path = folder.parent / "lass" / f"counts_spectral_{'_'.join(sources)}.pt"
    if not counts_path.exists():
        raise FileNotFoundError(f"{counts_path} does not exist: LASS on the spectral codec has counts for drums and bass "
                                "only (`python -m sepcore.train.counts --codec checkpoints/latents/spectral.pt ...`)")
    codec, priors = _latent_models("spectral", sources, folder, device)
    counts, metadata = load_counts_file(counts_path)
    likelihood = SmoothedCountLikelihood(counts, codec.codebook, **metadata["smoothing"])
    defaults = spectral_lass_defaults(folder)
    weight = defaults["likelihood_weight"] if likelihood_weight < 0 else likelihood_weight
    n_beams = defaults["spectral_beams"] if n_beams < 0 else n_beams
    if defaults["magnitude_weight"] > 0:
        from sepcore.separation.magnitude_likelihood import MagnitudeLikelihood

        likelihood = MagnitudeLikelihood(codec, counts=likelihood, counts_weight=weight / defaults["magnitude_weight"])
        weight = defaults["magnitude_weight"]
    config = LASSConfig(method="beam", n_rows=n_beams, likelihood_weight=weight, seed=seed, output=output,
                        mask_power=defaults["mask_power"])
    return LASSSeparator(codec, priors, likelihood, config, device=device).separate
