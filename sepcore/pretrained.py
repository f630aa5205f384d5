"""Pretrained models of the ``default`` profile, or models trained for another profile: one policy.

Modelled on demucs' ``get_model``: a chapter or the API asks for a model family by name and gets
the committed checkpoint under ``default`` (:data:`sepcore.paths.CHECKPOINTS`; a missing one raises
with the command that makes it), and a model trained on the fly at the profile's own sizes under
``quick`` and ``full`` or with ``retrain=True``. Loading meets training here, so that
``models/`` and ``separation/`` never import :mod:`sepcore.train` (``tests/test_layers.py``).

* :func:`get_flow_priors`: the noise-conditioned flow priors of Frank's toy classes or the
  Slakh-format stems (``checkpoints/flows/<dataset>_<source>.pt``);
* :func:`get_score_priors`: the noise-conditioned score priors of the same classes
  (``checkpoints/score/<dataset>_<source>.pt``);
* :func:`get_vqvae` and :func:`get_prior`: the waveform ``lqvae`` (with L_lin) and ``vqvae``
  (without) and one prior per (autoencoder, class), ``checkpoints/latents/prior_<vq>_<class>.pt``.
  Models trained on the fly go to ``work_dir/latent-models-<profile>/`` and are reused by later
  chapters of the same run;
* :func:`get_variational`: the amortised variational encoders of the toy data (Beta posteriors)
  or of drums + bass (truncated normal), with the flow priors they were trained against;
* :func:`get_counts`: the count likelihood of paper 004 over a waveform codec's codes of mixtures
  of ``classes`` (``checkpoints/lass/audio_counts_<vq>[_<classes>].pt``), or counted here on
  random training crops;
* :func:`get_digit_models`: the digits' VQ-VAE, prior and counts of paper 004 (``checkpoints/lass/digits_*.pt``);
* :func:`get_supervised`: the Conv-TasNet checkpoint (``checkpoints/supervised/convtasnet.pt``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sepcore.checkpoints import load_model
from sepcore.models.flow import FlowPrior
from sepcore.models.score_prior import ScorePrior
from sepcore.models.transformer import TransformerPrior
from sepcore.models.vqvae import VQVAE
from sepcore.paths import CHECKPOINTS, flow_prior_path, score_prior_path
from sepcore.separation.count_files import audio_counts_name, load_counts, save_counts
from sepcore.separation.lass import CountLikelihood


def get_flow_priors(
    sources: Sequence[str],
    profile: str,
    *,
    dataset: str = "toy",
    retrain: bool = False,
    seed: int = 0,
    data_root=None,
) -> tuple[dict[str, FlowPrior], dict[str, dict]]:
    """``({source: prior}, {source: info})``; ``info`` has ``history``, ``wall_seconds``, ``steps_done``
    and ``path`` (``None`` for a flow trained here).

    Only ``default`` loads the committed checkpoints (a missing one raises with the command to
    make it); ``quick`` and ``full`` (or ``retrain=True``) train with
    :func:`sepcore.train.flow.train_on_the_fly` at the profile's sizes (source ``k`` with seed
    ``seed + k``), so ``full`` never runs on the small default flows.
    """
    priors, info = {}, {}
    for k, source in enumerate(sources):
        trained = profile != "default" or retrain
        if trained:
            from sepcore.train.flow import train_on_the_fly

            path = train_on_the_fly(dataset, source, profile, seed=seed + k, data_root=data_root, log=lambda *_: None)
        else:
            path = flow_prior_path(dataset, source)
        model = load_model(path, expect={"source": source}, expect_class=FlowPrior)
        meta = model.checkpoint_info["metadata"]
        info[source] = {"history": meta["history"], "wall_seconds": meta["wall_seconds"],
                        "steps_done": meta["steps_done"], "path": None if trained else path}
        priors[source] = model.eval()
    return priors, info


def get_score_priors(sources: Sequence[str], profile: str, *, dataset: str = "toy", retrain: bool = False,
                     seed: int = 0, data_root=None) -> dict[str, ScorePrior]:
    """``{source: ScorePrior}``: the noise-conditioned score priors of the toy classes or the
    Slakh-format stems.

    Only ``default`` loads the committed ``checkpoints/score/<dataset>_<source>.pt`` (a missing one
    raises with the command that makes it); ``quick`` (tiny priors, a smoke test, not a result) and
    ``full`` (or ``retrain=True``) train with :func:`sepcore.train.score_prior.train_on_the_fly`
    on the profile's own data, so ``full`` never runs on the priors of the embedded dataset.
    """
    priors = {}
    for source in sources:
        if profile != "default" or retrain:
            from sepcore.train.score_prior import train_on_the_fly

            path = train_on_the_fly(dataset, source, profile, seed=seed, data_root=data_root, log=lambda *_: None)
        else:
            path = score_prior_path(dataset, source, CHECKPOINTS)
            if not path.exists():
                raise FileNotFoundError(f"{path} is missing; train it with `python -m sepcore.train.score_prior "
                                        f"--dataset {dataset} --sources {source}`")
        priors[source] = load_model(path, expect={"source": source}, expect_class=ScorePrior).eval()
    return priors


LATENTS = CHECKPOINTS / "latents"
KINDS = ("lqvae", "vqvae")


def lin_weight(kind: str) -> float:
    """The L_lin weight a ``kind`` autoencoder trains with: none for the ``vqvae``; for the ``lqvae``,
    the weight of the committed ``lqvae.pt`` (chosen on validation, ``scripts/choose_lin_weight.py``),
    else Eq. 7's 1."""
    if kind == "vqvae":
        return 0.0
    committed = LATENTS / "lqvae.pt"
    return float(load_model(committed, expect_class=VQVAE).config.lin_weight) if committed.exists() else 1.0


def _folder(profile: str, retrain: bool, work_dir) -> Path:
    if profile == "default" and not retrain:
        return LATENTS
    folder = Path(work_dir) / f"latent-models-{profile}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def get_vqvae(kind: str, *, profile: str, retrain: bool = False, work_dir=".", data_root=None,
              device="cpu") -> VQVAE:
    """The ``lqvae`` or ``vqvae`` of ``profile``: loaded from ``checkpoints/latents`` or trained."""
    if kind not in KINDS:
        raise ValueError(f"kind must be 'lqvae' or 'vqvae', got {kind!r}")
    path = _folder(profile, retrain, work_dir) / f"{kind}.pt"
    if path.exists():
        return load_model(path, expect_class=VQVAE, device=device)
    if path.parent == LATENTS:
        return load_model(path, expect_class=VQVAE, device=device)          # raises with the fix
    from sepcore.train.fit import FitPlan
    from sepcore.train.vqvae import VQVAETrainConfig, fit_vqvae

    config = VQVAETrainConfig.for_profile(profile, lin_weight=lin_weight(kind))
    every = max(1, config.steps // 5)
    plan = FitPlan(steps=config.steps, lr=config.lr, warmup_steps=min(100, config.steps // 10), eval_every=every,
                   checkpoint_every=every, patience=10, min_delta=1e-5, weight_decay=0.0)
    model, _ = fit_vqvae(config, plan, path, data_root=data_root, device=device,
                         val_pairs=8 if profile == "quick" else 48, log=lambda *_: None)
    return model.to(device)


def get_prior(kind: str, source_class: str, vqvae: VQVAE, *, profile: str, retrain: bool = False, work_dir=".",
              data_root=None, device="cpu") -> TransformerPrior:
    """The prior of ``source_class`` over the codes of ``vqvae`` (named ``kind``): the committed one
    under ``default``, else trained (or resumed) here by :func:`sepcore.train.prior_fit.fit_prior` on
    every training code of the class, with the profile's step budget (``on_the_fly_plan``)."""
    folder = _folder(profile, retrain, work_dir)
    path = folder / f"prior_{kind}_{source_class}.pt"
    if folder == LATENTS:
        return load_model(path, expect_class=TransformerPrior, device=device)
    from sepcore.train.fit import restart_on_mismatch
    from sepcore.train.prior_fit import PriorFitConfig, fit_prior, on_the_fly_plan

    codec_path = getattr(vqvae, "checkpoint_info", {}).get("path") or folder / f"{kind}.pt"
    restart_on_mismatch(lambda: fit_prior(codec_path, source_class, path, config=PriorFitConfig.for_profile(profile),
                                          plan=on_the_fly_plan(profile), data_root=data_root,
                                          curve_path=path.with_suffix(".csv"), log=lambda *_: None, device=device),
                        path.with_name(path.name + ".state.pt"), log=lambda *_: None)
    return load_model(path, expect_class=TransformerPrior, device=device)


def get_counts(kind: str, classes: Sequence[str], vqvae: VQVAE, *, profile: str, retrain: bool = False, work_dir=".",
               data_root=None, device="cpu") -> CountLikelihood:
    """Paper 004's count likelihood ``p(m | z_1, ..., z_N)`` over the codes of ``vqvae`` (named
    ``kind``) for mixtures of ``classes``: the committed table under ``default`` (checked against
    the committed codec), else counted (or reused) in ``work_dir/latent-models-<profile>/`` on the
    profile's random training crops (:func:`sepcore.train.lass.fit_audio_counts`)."""
    classes = tuple(classes)
    name = audio_counts_name(f"{kind}.pt", classes)
    folder = _folder(profile, retrain, work_dir)
    if folder == LATENTS:
        return load_counts(CHECKPOINTS / "lass" / name, expect_vqvae=LATENTS / f"{kind}.pt").to(device)
    path = folder / name
    if path.exists():
        return load_counts(path).to(device)
    from sepcore.train.lass import AudioCountsConfig, fit_audio_counts

    likelihood, _ = fit_audio_counts(vqvae, AudioCountsConfig.for_profile(profile), profile=profile,
                                     data_root=data_root, classes=classes)
    save_counts(path, likelihood, {"profile": profile, "classes": list(classes)})
    return likelihood.to(device)


def get_digit_models(*, profile: str, retrain: bool = False, work_dir=".", device="cpu"):
    """``(vqvae, prior, likelihood)`` of paper 004's digits (chapter 10): the 2-D VQ-VAE, the class-agnostic
    prior and the counts, loaded from ``checkpoints/lass`` under ``default``, else trained (or reused) in
    ``work_dir/lass-models-<profile>/`` by :func:`sepcore.train.lass.train_digits`."""
    committed = profile == "default" and not retrain
    folder = CHECKPOINTS / "lass" if committed else Path(work_dir) / f"lass-models-{profile}"
    names = [folder / n for n in ("digits_vqvae.pt", "digits_prior.pt", "digits_counts.pt")]
    if not committed and not all(p.exists() for p in names):
        from sepcore.train.lass import DigitsLASSConfig, train_digits

        train_digits(DigitsLASSConfig.for_profile(profile), folder, device)
    vq = load_model(names[0], expect_class=VQVAE, device=device)
    prior = load_model(names[1], expect_class=TransformerPrior, device=device)
    return vq.eval(), prior.eval(), load_counts(names[2])


def get_supervised(*, profile: str, retrain: bool = False, work_dir=".", data_root=None, device="cpu") -> Path:
    """The Conv-TasNet checkpoint of ``profile``: the committed one under ``default``, else one of the
    profile's size trained on (mixture, sources) pairs of ``data_root`` into ``work_dir``."""
    from sepcore.separation.supervised import DEFAULT_CHECKPOINT

    if profile == "default" and not retrain:
        return Path(DEFAULT_CHECKPOINT)
    from sepcore.data.slakh import resolve_root
    from sepcore.models.convtasnet import ConvTasNetConfig
    from sepcore.train.supervised import train

    checkpoint = Path(work_dir) / f"convtasnet-{profile}.pt"
    train(ConvTasNetConfig.for_profile(profile), resolve_root(profile, data_root), checkpoint, device=str(device),
          log=lambda *_: None, profile=profile)
    return checkpoint


@dataclass
class VariationalRun:
    """Encoders and what they were trained with: ``priors`` in the separator's source order,
    ``history`` one row per logged step, ``train_seconds`` wall time, ``train_config`` a
    :class:`~sepcore.train.variational.VariationalTrainConfig`."""

    separator: object
    priors: list
    history: list
    train_seconds: float
    train_config: object


def get_variational(dataset: str, *, profile: str, retrain: bool = False, seed: int = 0, data_root=None,
                    device="cpu") -> VariationalRun:
    """The variational encoders of ``dataset`` (``"toy"``: Beta posteriors; ``"slakh"``: truncated
    normal, drums + bass): the committed checkpoint and the committed flow priors under ``default``,
    else encoders trained here against the profile's flows (retrained too when ``retrain``)."""
    from sepcore.separation.variational import VariationalSeparator
    from sepcore.train.variational import VariationalTrainConfig, train_slakh, train_toy
    from sepcore.train.variational import checkpoint_path as encoders_path

    if dataset not in ("toy", "slakh"):
        raise ValueError(f"dataset must be 'toy' or 'slakh', got {dataset!r}")
    if profile != "default" or retrain:
        if dataset == "toy":
            trained = train_toy(profile, retrain_priors=retrain, seed=seed, device=str(device))
        else:
            trained = train_slakh(profile, data_root=data_root, retrain_priors=retrain, seed=seed, device=str(device))
        separator, history, priors, seconds = trained
        return VariationalRun(separator.to(device).eval(), priors, history, seconds,
                              VariationalTrainConfig.for_profile(profile))
    separator = load_model(encoders_path(dataset, "beta" if dataset == "toy" else "truncnormal"),
                           expect_class=VariationalSeparator)
    meta = separator.checkpoint_info["metadata"]
    prior_map, _ = get_flow_priors(separator.config.sources, profile, dataset=dataset, seed=seed)
    return VariationalRun(separator.to(device).eval(), [prior_map[name] for name in separator.config.sources],
                          meta["history"], meta["wall_seconds"], VariationalTrainConfig.from_checkpoint(meta["train_config"]))
