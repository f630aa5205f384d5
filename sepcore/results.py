"""Every method side by side: a registry of separators, one chunk selection, the main table.

**Registry.** A :class:`MethodSpec` says how to build a method's separator for a dataset
(``build(dataset, classes, sample_rate) -> separate``) and which *family* it belongs to:
``blind``, ``supervised`` (an upper bound: it trains on (mixture, sources) pairs), ``oracle``
(an upper bound: it reads the true sources) or ``generative``. The blind baselines, the ideal
masks and the Conv-TasNet are registered here, and :func:`register_generative` adds the
generative methods of the user API. Two oracles of their own kind, the codec ceilings
(:data:`CODEC_ORACLES`), decode the codes of the true sources with the committed LQ-VAE and VQ-VAE:
the latent methods return such decodes, so these rows say what their codec lets them reach.
Another method joins the results chapter by calling
:func:`register`, or by writing its per-chunk scores (the frame returned by
:func:`sepcore.evaluation.evaluate` plus a ``pair`` column, e.g. ``drums/bass``) to
``tables/<chapter>/per_chunk*.csv``, which :func:`collect_external` reads.

**Chunks.** :func:`spread_indices` takes ``n`` chunks evenly spread over a test set, so a
small evaluation still covers every track.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sepcore.models.convtasnet import TABLE1_PAIRS

FAMILIES = ("baseline", "blind", "supervised", "oracle", "generative")
PAIRS = TABLE1_PAIRS


@dataclass
class MethodSpec:
    name: str
    family: str
    build: Callable                  # (dataset, classes, sample_rate) -> separate(mixture) -> (n_sources, time)
    note: str = ""

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r} for {self.name}")

    @property
    def label(self) -> str:
        """Name with its family marked: upper bounds are never shown as plain methods."""
        return {"supervised": f"{self.name} (supervised)", "oracle": f"{self.name} (oracle)"}.get(self.family, self.name)


REGISTRY: dict[str, MethodSpec] = {}


def register(spec: MethodSpec, replace: bool = False) -> MethodSpec:
    if spec.name in REGISTRY and not replace:
        raise ValueError(f"method {spec.name!r} is already registered; pass replace=True to override it")
    REGISTRY[spec.name] = spec
    return spec


def _blind(method: str):
    def build(dataset, classes, sample_rate):
        from sepcore.separation.blind import BlindSeparator

        return BlindSeparator(method, classes, sample_rate)
    return build


def _oracle(kind: str):
    def build(dataset, classes, sample_rate):
        from sepcore.separation.oracle import oracle_separator

        return oracle_separator(dataset, kind)
    return build


BLIND_NAMES = {"rpca": "rPCA", "ica": "ICA", "hpss": "HPSS", "repet": "REPET", "repet_sim": "REPET-SIM",
               "ft2d": "FT2D", "nmf": "NMF"}
for _method, _name in BLIND_NAMES.items():
    register(MethodSpec(_name, "blind", _blind(_method), "fixed class assignment (sepcore.separation.blind)"))


def _mixture(dataset, classes, sample_rate):
    from sepcore.separation.naive import average

    return lambda mixture: average(mixture, len(classes))


register(MethodSpec("mixture (ŝ = m)", "baseline", _mixture, "every source estimated by the unprocessed mixture "
                    "(m / (w N)): the floor any method must beat"))
register(MethodSpec("IRM", "oracle", _oracle("irm"), "ideal ratio mask, |S_k| / sum_j |S_j|"))
register(MethodSpec("IBM", "oracle", _oracle("ibm"), "ideal binary mask"))
MASK_ORACLES = ("IRM", "IBM")


def _codec_oracle(kind: str):
    def build(dataset, classes, sample_rate):
        from sepcore.checkpoints import load_model
        from sepcore.models.vqvae import VQVAE
        from sepcore.separation.oracle import codec_oracle_separator
        from sepcore.utils import REPO_ROOT

        vqvae = load_model(REPO_ROOT / "checkpoints" / "latents" / f"{kind}.pt", expect_class=VQVAE).eval()
        return codec_oracle_separator(dataset, vqvae)
    return build


# The codec ceilings of the latent methods: the committed autoencoders' decodes of the true sources' codes.
CODEC_ORACLES = {"LQ-VAE codes": "lqvae", "VQ-VAE codes": "vqvae"}
for _name, _kind in CODEC_ORACLES.items():
    register(MethodSpec(_name, "oracle", _codec_oracle(_kind),
                        f"D(Q(E(s_k))) with checkpoints/latents/{_kind}.pt: the ceiling of code-sequence estimates"))


def register_supervised(checkpoint: str | Path, device: str = "auto", name: str = "Conv-TasNet") -> MethodSpec:
    """Register the Conv-TasNet at ``checkpoint`` (replacing an earlier registration)."""
    def build(dataset, classes, sample_rate):
        from sepcore.separation.supervised import load_supervised

        return load_supervised(checkpoint, classes, sample_rate, device)
    return register(MethodSpec(name, "supervised", build, f"trained on (mixture, sources) pairs; {Path(checkpoint).name}"),
                    replace=True)


# The generative methods, through the user API (sepcore.api) with the committed default checkpoints:
# (results name, API method, the pairs it has priors for, knobs under the quick profile).
DRUMS_BASS = {("drums", "bass")}
GENERATIVE = (
    ("LASS (beam, 10 beams)", "lass", DRUMS_BASS, {}),
    ("latent Bayes (LQ-VAE, rejection α=0)", "latent-bayes", DRUMS_BASS | {("drums", "guitar"), ("guitar", "bass")}, {}),
    ("Langevin (flow priors)", "langevin-slakh", DRUMS_BASS, {"n_levels": 2, "steps_per_level": 5}),
    ("variational (truncated normal)", "variational-slakh", DRUMS_BASS, {}),
)
# Langevin differentiates both flows over the whole chunk at every step: it gets fewer chunks
GENERATIVE_CHUNKS = {"Langevin (flow priors)": {"quick": 1, "default": 2, "full": None}}


def register_generative(profile: str, device="auto", seed: int = 0) -> list[MethodSpec]:
    """Register :data:`GENERATIVE`; a method's builder returns ``None`` for a pair it has no priors for.
    Under ``quick`` the methods take their quick knobs (a smoke test of the plumbing only)."""
    specs = []
    for name, method, pairs, quick_knobs in GENERATIVE:
        knobs = quick_knobs if profile == "quick" else {}

        def build(dataset, classes, sample_rate, method=method, pairs=pairs, knobs=knobs):
            from sepcore.api import build_separator

            if tuple(classes) not in pairs:
                return None
            return build_separator(method, tuple(classes), sample_rate=sample_rate, device=device, seed=seed, **knobs)
        specs.append(register(MethodSpec(name, "generative", build, f"sepcore.api method {method!r}"), replace=True))
    return specs


def chunk_budget(name: str, profile: str, default: int | None) -> int | None:
    """How many chunks a method is scored on: :data:`GENERATIVE_CHUNKS` or ``default``."""
    return GENERATIVE_CHUNKS.get(name, {}).get(profile, default)


def spread_indices(n_items: int, n: int | None) -> list[int]:
    """``n`` indices evenly spread over ``range(n_items)`` (all of them when ``n`` is None or larger)."""
    if n is None or n >= n_items:
        return list(range(n_items))
    return sorted(set(np.linspace(0, n_items - 1, n).round().astype(int).tolist()))


def collect_external(tables_root: str | Path, exclude: Sequence[str] = ("results", "benchmarks")) -> pd.DataFrame:
    """Per-chunk scores other chapters wrote as ``tables/<chapter>/per_chunk*.csv`` (empty if none)."""
    frames = []
    for path in sorted(Path(tables_root).glob("*/per_chunk*.csv")):
        if path.parent.name in exclude:
            continue
        frame = pd.read_csv(path)
        missing = {"method", "pair", "id", "source", "sdr"} - set(frame.columns)
        if missing:
            raise ValueError(f"{path} lacks columns {sorted(missing)}; write sepcore.evaluation.evaluate's frame plus 'pair'")
        if "family" not in frame:
            frame["family"] = "generative"
        frames.append(frame.assign(origin=str(path)))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def main_table(scores: pd.DataFrame, pairs: Sequence[tuple[str, str]] = PAIRS, digits: int = 2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Paper 003 Table 1's layout: one row per method, one column per (pair, class), ``mean ± std`` dB.

    Args:
        scores: per-chunk rows with ``method, family, pair, id, source, sdr``.

    Returns:
        ``(formatted, numeric)``: the wide table of strings and the long table of numbers
        (mean, std, median over chunks, NaN chunks excluded and counted).
    """
    rows = []
    for (method, family, pair, source), group in scores.groupby(["method", "family", "pair", "source"], sort=False):
        values = group["sdr"].to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        rows.append({"method": method, "family": family, "pair": pair, "source": source,
                     "sdr_mean": finite.mean() if finite.size else np.nan,
                     "sdr_std": finite.std() if finite.size else np.nan,
                     "sdr_median": np.median(finite) if finite.size else np.nan,
                     "n_chunks": int(values.size), "n_nan": int(values.size - finite.size)})
    numeric = pd.DataFrame(rows)
    columns = [(f"{a}/{b}", c) for a, b in pairs for c in (a, b)]
    order = {f: i for i, f in enumerate(FAMILIES)}
    methods = (numeric[["method", "family"]].drop_duplicates()
               .assign(rank=lambda d: d["family"].map(order)).sort_values("rank", kind="stable"))
    wide = []
    for method, family in methods[["method", "family"]].itertuples(index=False):
        row = {"method": method, "family": family}
        for pair, source in columns:
            hit = numeric[(numeric.method == method) & (numeric.pair == pair) & (numeric.source == source)]
            row[f"{pair}: {source}"] = (f"{hit.sdr_mean.iloc[0]:.{digits}f} ± {hit.sdr_std.iloc[0]:.{digits}f}"
                                        if len(hit) else "–")
        wide.append(row)
    return pd.DataFrame(wide), numeric
