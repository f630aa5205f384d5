"""One entry point over every separation method: ``sepcore.separate(mixture, method=...)``.

>>> import torch, sepcore
>>> mixture = torch.randn(22050)
>>> stems = sepcore.separate(mixture, method="average", sources=("drums", "bass"), sample_rate=22050)
>>> stems.shape                                   # (n_sources, time)
torch.Size([2, 22050])

Methods live in a registry. Each entry names a *factory* by import path (``"module:attr"``,
usually a separator class's loader, ``"module:Class.from_pretrained"``), so the registry itself
imports nothing heavy, and a method whose optional dependency is missing is listed as unavailable
instead of breaking ``import sepcore``.

The factory contract
--------------------
``factory(sources, *, checkpoint, sample_rate, device, seed, **knobs) -> separator`` where
``sources`` is a tuple of class names, ``checkpoint`` a path or ``None``, ``device`` a
``torch.device``, and ``separator(mixture: Tensor(time)) -> Tensor(n_sources, time)`` on that
device, in the order of ``sources`` (a :class:`sepcore.separation.base.Separator`, or any
callable). A factory may ignore arguments it does not need (end its signature with
``**_unused``). Its other keyword arguments with defaults are the method's *knobs* (σ, λ, number
of beams, α, ...): the CLI accepts them as ``--knob name=value`` and the Explore chapter builds a
widget for each, so a new knob appears everywhere by being a keyword argument of the factory.
Give ranges with ``knobs={"sigma": Knob(0.1, 0.01, 1.0)}``; fixed keyword arguments that are not
knobs (the blind baselines' ``method``) with ``arguments={...}``.

Adding a method
---------------
Write a :class:`~sepcore.separation.base.Separator` subclass with a ``from_pretrained``
classmethod, then add one line to :func:`_register_builtin_methods` below, e.g.::

    register_method("hpss", "sepcore.separation.blind:BlindSeparator.from_pretrained",
                    description="Harmonic/percussive median filtering (Fitzgerald 2010)",
                    needs_checkpoint=False, sample_rate=22050, arguments={"method": "hpss"})

List the separator's module in ``requires=(...)`` so the method shows as unavailable without it.
For a method with a trained model, set ``needs_checkpoint=True`` and, when a checkpoint for
the embedded dataset is committed, ``default_checkpoint="checkpoints/<family>/<name>.pt"``.
The loader should use :func:`sepcore.checkpoints.load_model` with
``expect={"sample_rate": ..., "classes": tuple(sources)}`` so a mismatch names the file.
Set ``chunk_seconds`` to the method's natural context (the length its prior was trained on).
A method with one model per source can take a folder as its checkpoint and pick
``<folder>/<source>.pt`` itself.
"""

from __future__ import annotations

import importlib
import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path

import torch

from sepcore.chunking import chunked
from sepcore.utils import REPO_ROOT, file_sha256, resolve_device, seed_everything
from sepcore.validation import (
    as_mixture,
    check_chunking,
    check_knobs,
    check_sample_rate,
    check_seed,
    check_sources,
)

SeparateFn = Callable[[torch.Tensor], torch.Tensor]          # what a factory returns
#: What a method is, for the tables: upper bounds (supervised, oracle) are never shown as plain methods.
FAMILIES = ("baseline", "blind", "supervised", "oracle", "generative")
#: Arguments every factory receives; any other keyword argument with a default is a knob.
STANDARD_ARGUMENTS = ("sources", "checkpoint", "sample_rate", "device", "seed")
#: Inputs shorter than this (at the method's rate) are zero-padded for the separation, then cropped back.
MIN_SAMPLES = 8192


class MethodUnavailable(RuntimeError):
    """A registered method cannot be used here (an optional dependency is missing)."""


@dataclass(frozen=True)
class Knob:
    """A method's tunable setting: its default and, for sliders, a range or a list of choices."""

    default: object
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple | None = None
    help: str = ""


@dataclass
class MethodSpec:
    """One registry entry; ``factory`` is a callable or an import path ``"module:attr"``."""

    name: str
    factory: Callable | str
    description: str
    needs_checkpoint: bool
    sample_rate: int | None = None
    default_checkpoint: str | None = None
    chunk_seconds: float | None = 10.0
    overlap_seconds: float = 0.5
    knob_specs: dict[str, Knob] = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    family: str = "generative"
    display_name: str | None = None          # the name in the tables (default: ``name``)
    arguments: dict = field(default_factory=dict)   # fixed keyword arguments of the factory (not knobs)

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r} for {self.name}")

    @property
    def label(self) -> str:
        """The table name, its family marked: ``"Conv-TasNet (supervised)"``, ``"IRM (oracle)"``."""
        name = self.display_name or self.name
        return {"supervised": f"{name} (supervised)", "oracle": f"{name} (oracle)"}.get(self.family, name)

    def load_factory(self) -> Callable:
        """Import the factory; a missing dependency raises :class:`MethodUnavailable`."""
        for module_name in self.requires:
            try:
                importlib.import_module(module_name)
            except ImportError as error:
                raise MethodUnavailable(f"method {self.name!r} needs {module_name}, which cannot be imported ({error})") from error
        if callable(self.factory):
            return self.factory
        module_name, _, attribute = self.factory.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise MethodUnavailable(
                f"method {self.name!r} needs {error.name or module_name!r}, which is not installed "
                f"({error}). Install the extras: pip install -e '.[audio]'."
            ) from error
        try:
            return reduce(getattr, attribute.split("."), module)      # "module:Class.from_pretrained"
        except AttributeError as error:
            raise MethodUnavailable(f"method {self.name!r}: {module_name} has no attribute {attribute!r}") from error

    def availability(self) -> tuple[bool, str]:
        """``(True, "")`` when the factory imports, else ``(False, reason)``."""
        try:
            self.load_factory()
        except MethodUnavailable as error:
            return False, str(error)
        return True, ""

    def knobs(self) -> dict[str, Knob]:
        """The method's knobs: the factory's keyword defaults, refined by ``knob_specs``."""
        found = {}
        for parameter in inspect.signature(self.load_factory()).parameters.values():
            if parameter.name in STANDARD_ARGUMENTS or parameter.name in self.arguments:
                continue
            if parameter.default is inspect.Parameter.empty:
                continue
            if parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
                continue
            found[parameter.name] = Knob(parameter.default)
        found.update(self.knob_specs)
        return found


_REGISTRY: dict[str, MethodSpec] = {}


def register_method(
    name: str,
    factory: Callable | str,
    *,
    description: str,
    needs_checkpoint: bool,
    sample_rate: int | None = None,
    default_checkpoint: str | None = None,
    chunk_seconds: float | None = 10.0,
    overlap_seconds: float = 0.5,
    knobs: dict[str, Knob] | None = None,
    requires: Sequence[str] = (),
    family: str = "generative",
    label: str | None = None,
    arguments: dict | None = None,
    replace: bool = False,
) -> MethodSpec:
    """Add a method to the registry (see "Adding a method" in the module docstring).

    Args:
        factory: a callable or ``"module:attr"``; imported only when the method is used.
        sample_rate: the rate the method works at (mixtures are resampled to it), or ``None``
            for any rate.
        chunk_seconds: length of the chunks long inputs are cut into (``None``: never chunk).
        requires: modules the factory imports lazily; the method is unavailable without them.
        family: one of :data:`FAMILIES` (the results chapter groups and marks rows by it).
        label: the method's name in the tables (default: ``name``).
        arguments: fixed keyword arguments of the factory (one class serving several methods, such
            as the blind baselines' ``method``); they are not knobs.
    """
    if name in _REGISTRY and not replace:
        raise ValueError(f"method {name!r} is already registered; pass replace=True to override it")
    if isinstance(factory, str) and ":" not in factory:
        raise ValueError(f"factory path {factory!r} must look like 'package.module:function'")
    spec = MethodSpec(name, factory, description, needs_checkpoint, sample_rate, default_checkpoint,
                      chunk_seconds, overlap_seconds, dict(knobs or {}), tuple(requires), family, label,
                      dict(arguments or {}))
    _REGISTRY[name] = spec
    return spec


def list_methods(family: str | None = None) -> list[MethodSpec]:
    """Every registered method (of ``family``), sorted by name (availability is checked only on request)."""
    return [_REGISTRY[name] for name in sorted(_REGISTRY) if family is None or _REGISTRY[name].family == family]


def get_method(name: str) -> MethodSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise KeyError(f"unknown method {name!r}; registered methods: {known} (see `sepcore list-methods`)") from None


def resolve_checkpoint(spec: MethodSpec, checkpoint) -> Path | None:
    """The checkpoint a method will load: the given path or the method's default, resolved; a method
    that uses none refuses one (it would be silently ignored)."""
    parameter = inspect.signature(spec.load_factory()).parameters.get("checkpoint")
    if checkpoint is not None and parameter is None:
        raise ValueError(f"method {spec.name!r} uses no checkpoint; drop checkpoint= (CLI: --checkpoint)")
    if checkpoint is None and spec.default_checkpoint:
        checkpoint = REPO_ROOT / spec.default_checkpoint
    if checkpoint is None and parameter is not None and parameter.default not in (None, inspect.Parameter.empty):
        checkpoint = REPO_ROOT / parameter.default                       # the factory's own default folder
    return None if checkpoint is None else Path(checkpoint).resolve()


def checkpoint_record(path: Path | None) -> dict | None:
    """``{"path", "sha256"}`` of a checkpoint file, or of every ``.pt`` file of a checkpoint folder."""
    if path is None:
        return None
    files = [path] if path.is_file() else sorted(p for p in path.glob("*.pt") if not p.name.endswith(".state.pt"))
    digests = {p.name: file_sha256(p) for p in files}           # hashed once per file version
    return {"path": str(path), "sha256": digests}


def build_separator(method: str, sources: Sequence[str], *, checkpoint=None, sample_rate: int | None = None,
                    device="auto", seed: int = 0, **knobs) -> SeparateFn:
    """The method's ``separate(mixture (time,)) -> (n_sources, time)`` at its own rate, unchunked."""
    spec = get_method(method)
    knobs = check_knobs(method, knobs, spec.knobs())
    sources = check_sources(sources)
    checkpoint = resolve_checkpoint(spec, checkpoint)
    if spec.needs_checkpoint and checkpoint is None:
        raise ValueError(f"method {method!r} needs a checkpoint: pass checkpoint=PATH (CLI: --checkpoint PATH)")
    factory = spec.load_factory()
    return factory(tuple(sources), checkpoint=checkpoint, sample_rate=sample_rate,
                   device=resolve_device(device), seed=seed, **spec.arguments, **knobs)


def separate_with_info(mixture, method: str = "average", sources: Sequence[str] = ("drums", "bass"), *,
                       checkpoint=None, sample_rate: int | None = None, device="auto", seed: int = 0,
                       chunk_seconds: float | None = None, overlap_seconds: float | None = None,
                       show_progress: bool = True, **knobs) -> tuple[torch.Tensor, dict]:
    """:func:`separate`, also returning a dict of the settings used (written next to CLI stems)."""
    spec = get_method(method)
    sources = check_sources(sources)
    sample_rate = check_sample_rate(sample_rate)
    check_chunking(chunk_seconds, overlap_seconds)
    seed = check_seed(seed)
    knobs = check_knobs(method, knobs, spec.knobs())
    mixture, conversions = as_mixture(mixture, sample_rate)
    checkpoint = resolve_checkpoint(spec, checkpoint)                 # once: build_separator keeps a resolved path
    input_rate = sample_rate or spec.sample_rate
    work_rate = spec.sample_rate or input_rate
    if work_rate is None and spec.chunk_seconds is not None and chunk_seconds is None:
        raise ValueError("pass sample_rate= (the mixture's rate in Hz) so the input can be cut into chunks")
    device = resolve_device(device)
    seed_everything(seed)
    started = time.perf_counter()
    separate_fn = build_separator(method, sources, checkpoint=checkpoint, sample_rate=work_rate,
                                  device=device, seed=seed, **knobs)
    work = mixture
    if input_rate != work_rate:
        from sepcore.audio import resample
        work = resample(mixture, input_rate, work_rate)
    chunk_seconds = spec.chunk_seconds if chunk_seconds is None else chunk_seconds
    overlap_seconds = spec.overlap_seconds if overlap_seconds is None else overlap_seconds
    if chunk_seconds:
        chunk_length = int(round(chunk_seconds * work_rate))
        overlap = min(int(round(overlap_seconds * work_rate)), chunk_length // 2)
        separate_fn = chunked(separate_fn, chunk_length, overlap, show_progress=show_progress, desc=method)
    short = work.shape[-1] < MIN_SAMPLES
    if short:           # a method's transforms need some context: separate zero-padded, crop back
        conversions.append(f"the input ({work.shape[-1]} samples at {work_rate} Hz) is shorter than {MIN_SAMPLES} samples: "
                           "it was zero-padded for the separation and the estimates cropped back")
        length = work.shape[-1]
        work = torch.nn.functional.pad(work, (0, MIN_SAMPLES - length))
    with torch.no_grad():
        estimates = separate_fn(work.to(device)).detach().float().cpu()              # (n_sources, time)
    if short:
        work, estimates = work[:length], estimates[:, :length]
    if estimates.shape != (len(sources), work.shape[-1]):
        raise RuntimeError(f"method {method!r} returned shape {tuple(estimates.shape)}, "
                           f"expected {(len(sources), work.shape[-1])}")
    if input_rate != work_rate:
        from sepcore.audio import resample
        estimates = resample(estimates, work_rate, input_rate)
        estimates = torch.nn.functional.pad(estimates, (0, max(0, mixture.shape[-1] - estimates.shape[-1])))
        estimates = estimates[:, : mixture.shape[-1]]
    info = {
        "method": method, "sources": list(sources), "knobs": {**{k: v.default for k, v in spec.knobs().items()}, **knobs},
        "checkpoint": checkpoint_record(checkpoint), "seed": seed,
        "device": str(device), "sample_rate": input_rate, "method_sample_rate": work_rate,
        "resampled": input_rate != work_rate, "chunk_seconds": chunk_seconds,
        "overlap_seconds": overlap_seconds if chunk_seconds else None,
        "n_samples": int(mixture.shape[-1]), "seconds": round(time.perf_counter() - started, 3),
        "input_conversions": conversions,
    }
    return estimates, info


def separate(mixture, method: str = "average", sources: Sequence[str] = ("drums", "bass"), checkpoint=None,
             sample_rate: int | None = None, device="auto", seed: int = 0, **knobs) -> torch.Tensor:
    """Separate one mono mixture with a registered method.

    Args:
        mixture: ``(time,)`` samples (tensor or array) at ``sample_rate`` Hz.
        method: a name from :func:`list_methods`.
        sources: class names, in the order of the output rows.
        checkpoint: a checkpoint path for methods with trained models (default: the method's
            committed checkpoint, if any).
        sample_rate: the mixture's rate; it is resampled to the method's rate and the
            estimates back, with ``torchaudio.functional.resample``.
        seed: seeds python, numpy and torch first, so the same seed gives identical stems.
        **knobs: the method's settings (``chunk_seconds``/``overlap_seconds`` override the
            method's chunking; ``show_progress=False`` hides the bar).

    Returns:
        ``(n_sources, time)`` float32 on the CPU, aligned with the mixture.
    """
    estimates, _ = separate_with_info(mixture, method, sources, checkpoint=checkpoint, sample_rate=sample_rate,
                                      device=device, seed=seed, **knobs)
    return estimates


def _langevin_knobs(n_levels: int, steps: tuple[int, int, int, int]) -> dict[str, Knob]:
    """The annealed-Langevin knobs; the toy and Slakh-format methods differ in their defaults and step
    range (``steps``: default, low, high, step) only."""
    return {"n_levels": Knob(n_levels, 2, 20, 1, help="number of noise levels"),
            "steps_per_level": Knob(*steps, help="Langevin steps per level"),
            "likelihood_weight": Knob(1.0, 0.0, 4.0, 0.1, help="weight of the mixing term")}


def _register_builtin_methods() -> None:
    """The methods shipped with the package; one line each (see "Adding a method")."""
    register_method("average", "sepcore.separation.naive:AverageSeparator.from_pretrained",
                    description="Every source is the same equal share of the mixture (paper 004, Table 2 'Average'): "
                                "m / (w N), the unprocessed mixture under mean mixing, the floor any method must beat",
                    needs_checkpoint=False, family="baseline", label="mixture (ŝ = m)")
    register_method("crossover", "sepcore.separation.naive:CrossoverSeparator.from_pretrained",
                    description="Naive two-band split: the low band to bass, the rest to the other source",
                    needs_checkpoint=False, family="baseline",
                    knobs={"cutoff_hz": Knob(150.0, 40.0, 1000.0, 10.0, help="crossover frequency in Hz"),
                           "low_source": Knob("bass", help="the source that gets the low band")})
    # Blind baselines (one class, the method a fixed argument) and the supervised Conv-TasNet.
    for key, (label, description) in BLIND_METHODS.items():
        register_method(key, "sepcore.separation.blind:BlindSeparator.from_pretrained", description=description,
                        needs_checkpoint=False, sample_rate=22050, requires=("sepcore.separation.blind",),
                        family="blind", label=label, arguments={"method": key})
    register_method("conv-tasnet", "sepcore.separation.supervised:SupervisedSeparator.from_pretrained",
                    description="Supervised Conv-TasNet (an upper bound: trained on mixture/source pairs)",
                    needs_checkpoint=True, sample_rate=22050, default_checkpoint="checkpoints/supervised/convtasnet.pt",
                    requires=("sepcore.separation.supervised",), family="supervised", label="Conv-TasNet")
    # Generative methods with the committed default-profile checkpoints.
    register_method("langevin", "sepcore.separation.langevin:LangevinSeparator.from_pretrained",
                    description="Annealed Langevin with noise-conditioned flow priors (toy sources; Frank, BASIS)",
                    needs_checkpoint=True, sample_rate=14700, default_checkpoint="checkpoints/flows",
                    chunk_seconds=1024 / 14700, overlap_seconds=64 / 14700,
                    knobs=_langevin_knobs(n_levels=10, steps=(100, 1, 500, 10)),
                    requires=("sepcore.separation.langevin",))
    register_method("variational", "sepcore.separation.variational:VariationalSeparator.from_pretrained",
                    description="Amortised variational separation, Beta posteriors (toy sources; Frank)",
                    needs_checkpoint=True, sample_rate=14700, default_checkpoint="checkpoints/variational/toy_beta.pt",
                    chunk_seconds=1024 / 14700, overlap_seconds=64 / 14700,
                    requires=("sepcore.separation.variational",))
    register_method("langevin-slakh", "sepcore.separation.langevin:LangevinSeparator.from_slakh_flows",
                    description="Annealed Langevin with flow priors of the embedded Slakh-format stems (drums, bass)",
                    needs_checkpoint=True, sample_rate=22050, default_checkpoint="checkpoints/flows",
                    chunk_seconds=65536 / 22050, overlap_seconds=0.25,
                    knobs=_langevin_knobs(n_levels=8, steps=(20, 1, 200, 5)),
                    requires=("sepcore.separation.langevin",), label="Langevin (flow priors)")
    register_method("langevin-score", "sepcore.separation.langevin:LangevinSeparator.from_score_priors",
                    description="Annealed Langevin with score priors (DSM-trained denoisers) of the Slakh-format stems (drums, bass)",
                    needs_checkpoint=True, sample_rate=22050, default_checkpoint="checkpoints/score",
                    chunk_seconds=65536 / 22050, overlap_seconds=0.25,
                    knobs={k: v for k, v in _langevin_knobs(n_levels=8, steps=(5, 1, 200, 1)).items()
                           if k != "likelihood_weight"} | {"output": Knob("chosen", choices=("chosen", "masked", "raw"),
                                          help="the validation choice, or force masked / raw output")},
                    requires=("sepcore.separation.langevin", "sepcore.models.score_prior"))
    register_method("variational-slakh", "sepcore.separation.variational:VariationalSeparator.from_pretrained",
                    description="Amortised variational separation, truncated-normal posteriors (Slakh-format drums, bass)",
                    needs_checkpoint=True, sample_rate=22050,
                    default_checkpoint="checkpoints/variational/slakh_truncnormal.pt",
                    chunk_seconds=65536 / 22050, overlap_seconds=0.25,
                    requires=("sepcore.separation.variational",), label="variational (truncated normal)")
    register_method("variational-score-slakh", "sepcore.separation.variational:VariationalSeparator.from_pretrained",
                    description="Amortised variational separation trained against the score priors (Slakh-format drums, bass)",
                    needs_checkpoint=True, sample_rate=22050,
                    default_checkpoint="checkpoints/variational/slakh_truncnormal_score.pt",
                    chunk_seconds=65536 / 22050, overlap_seconds=0.25,
                    knobs={"output": Knob("masked", choices=("masked", "raw"),
                                          help="the mixture masked by the estimates' spectrograms, or the raw posterior means")},
                    requires=("sepcore.separation.variational",))
    register_method("latent-bayes", "sepcore.separation.latent_bayes:LatentBayesSeparator.from_pretrained",
                    description="LQ-VAE exact latent posterior + rejection sampling (Mancusi et al.)",
                    needs_checkpoint=True, sample_rate=22050, default_checkpoint="checkpoints/latents", chunk_seconds=65536 / 22050, overlap_seconds=0.25,
                    knobs={"sigma": Knob(0.4, 0.05, 1.0, 0.05, help="latent likelihood width (paper 0.1, code 0.4)"),
                           "n_candidates": Knob(16, 1, 64, 1, help="candidates B"),
                           "alpha": Knob(0.0, 0.0, 1.0, 0.5, help="rejection: weight of the time-domain likelihood")},
                    requires=("sepcore.separation.latent_bayes",), label="latent Bayes (LQ-VAE, rejection α=0)")
    register_method("lass", "sepcore.separation.lass_search:LASSSeparator.from_pretrained",
                    description="LASS: count likelihood + beam search over latent priors (Postolache et al.; drums+bass, or drums+bass+guitar)",
                    needs_checkpoint=True, sample_rate=22050, default_checkpoint="checkpoints/latents", chunk_seconds=65536 / 22050, overlap_seconds=0.25,
                    knobs={"n_beams": Knob(10, 1, 32, 1, help="beams (or candidates for the samplers)"),
                           "likelihood_weight": Knob(3.0, 0.0, 10.0, 0.5, help="lambda"),
                           "sampler": Knob("beam", choices=("greedy", "beam", "ancestral", "top_k", "top_p"), help="search or sampling rule")},
                    requires=("sepcore.separation.lass_search",), label="LASS (beam, 10 beams)")
    register_method("lass-spectral", "sepcore.separation.lass_search:LASSSeparator.from_spectral",
                    description="LASS over a phase-free spectral codec, smoothed counts times a magnitude likelihood "
                                "when validation chose it, masked output (our extension; drums+bass)",
                    needs_checkpoint=True, sample_rate=22050, default_checkpoint="checkpoints/latents",
                    chunk_seconds=65536 / 22050, overlap_seconds=0.25,
                    knobs={"n_beams": Knob(-1, -1, 64, 1, help="beams; -1: the value chosen on validation"),
                           "likelihood_weight": Knob(-1.0, -1.0, 10.0, 0.5, help="lambda; -1: the value chosen on validation"),
                           "n_rows": Knob(-1, -1, 64, 1, help="samples averaged when validation chose the posterior "
                                                              "mean; -1: the value chosen on validation"),
                           "n_shifts": Knob(-1, -1, 8, 1, help="frame grids the posterior mean averages over; "
                                                               "-1: the value chosen on validation"),
                           "output": Knob("masked", choices=("masked", "raw"), help="mask the mixture, or Griffin-Lim decodes")},
                    requires=("sepcore.separation.lass_search",))


#: The blind baselines of sepcore.separation.blind (two sources, fixed class assignment): (label, description).
BLIND_METHODS = {
    "rpca": ("rPCA", "Blind: robust PCA, sparse part to the foreground class (Huang et al. 2012)"),
    "ica": ("ICA", "Blind: FastICA on the magnitude spectrogram"),
    "hpss": ("HPSS", "Blind: harmonic/percussive median filtering (Fitzgerald 2010)"),
    "repet": ("REPET", "Blind: REPET, repeating background (Rafii & Pardo 2012)"),
    "repet_sim": ("REPET-SIM", "Blind: REPET-SIM, similar-frame background (Rafii & Pardo 2012)"),
    "ft2d": ("FT2D", "Blind: 2-D Fourier transform foreground/background (Seetharaman et al. 2017)"),
    "nmf": ("NMF", "Blind: NMF components split by spectral centroid"),
}


_register_builtin_methods()
