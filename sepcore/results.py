"""Every method side by side: which registered methods the main table scores, the oracles, the table.

**Methods.** There is one registry, :mod:`sepcore.api`: each method's family (``baseline``,
``blind``, ``supervised``: an upper bound that trains on (mixture, sources) pairs, or
``generative``) and label come from its registration. :data:`TABLE_METHODS` says which of them the
main table scores, on which pairs (a generative method has priors for some pairs only) and with
which knobs under the ``quick`` profile; a new method joins the table with one line there.
Only the **dataset-bound oracles** live here (:data:`ORACLES`): the ideal masks and the codec
ceilings read the true sources of the chunk being separated, which no user-facing separator can.
The codec ceilings decode the codes of the true sources with the committed LQ-VAE and VQ-VAE: the
latent methods return such decodes, so these rows say what their codec lets them reach.
A method can also join the results chapter by writing its per-chunk scores (the frame returned by
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

from sepcore.api import FAMILIES
from sepcore.models.convtasnet import TABLE1_PAIRS

PAIRS = TABLE1_PAIRS
DRUMS_BASS = frozenset({("drums", "bass")})

#: The registered methods the main table scores, in its row order: (method, the pairs it has models
#: for, ``None`` for every pair; its knobs under the quick profile, a smoke test of the plumbing).
TABLE_METHODS = (
    *((name, None, {}) for name in ("rpca", "ica", "hpss", "repet", "repet_sim", "ft2d", "nmf", "average")),
    ("conv-tasnet", None, {}),
    ("lass", DRUMS_BASS, {}),
    ("latent-bayes", DRUMS_BASS | {("drums", "guitar"), ("guitar", "bass")}, {}),
    ("langevin-slakh", DRUMS_BASS, {"n_levels": 2, "steps_per_level": 5}),
    ("variational-slakh", DRUMS_BASS, {}),
)
# Langevin differentiates both flows over the whole chunk at every step: it gets fewer chunks
GENERATIVE_CHUNKS = {"Langevin (flow priors)": {"quick": 1, "default": 2, "full": None}}


@dataclass(frozen=True)
class TableRow:
    """One row of the main table: ``build(dataset) -> separate(mixture) -> (n_sources, time)``, or
    ``None`` for a dataset whose pair the method has no models for."""

    label: str
    family: str
    build: Callable
    note: str = ""


def oracle_label(name: str) -> str:
    return f"{name} (oracle)"


def _mask_oracle(kind: str):
    def build(dataset):
        from sepcore.separation.oracle import oracle_separator

        return oracle_separator(dataset, kind)
    return build


def _codec_oracle(kind: str):
    def build(dataset):
        from sepcore.checkpoints import load_model
        from sepcore.models.vqvae import VQVAE
        from sepcore.separation.oracle import codec_oracle_separator
        from sepcore.utils import REPO_ROOT

        vqvae = load_model(REPO_ROOT / "checkpoints" / "latents" / f"{kind}.pt", expect_class=VQVAE).eval()
        return codec_oracle_separator(dataset, vqvae)
    return build


MASK_ORACLES = ("IRM", "IBM")
# The codec ceilings of the latent methods: the committed autoencoders' decodes of the true sources' codes.
CODEC_ORACLES = {"LQ-VAE codes": "lqvae", "VQ-VAE codes": "vqvae"}
#: The dataset-bound oracles: name -> (build(dataset) -> separate, note).
ORACLES = {
    "IRM": (_mask_oracle("irm"), "ideal ratio mask, |S_k| / sum_j |S_j|"),
    "IBM": (_mask_oracle("ibm"), "ideal binary mask"),
    **{name: (_codec_oracle(kind), f"D(Q(E(s_k))) with checkpoints/latents/{kind}.pt: the ceiling of code-sequence "
              "estimates") for name, kind in CODEC_ORACLES.items()},
}


def _registered_row(method: str, pairs, knobs: dict, *, device, seed: int, checkpoint=None) -> TableRow:
    from sepcore.api import build_separator, get_method

    spec = get_method(method)

    def build(dataset):
        if pairs is not None and tuple(dataset.classes) not in pairs:
            return None
        return build_separator(method, tuple(dataset.classes), checkpoint=checkpoint, sample_rate=dataset.sample_rate,
                               device=device, seed=seed, **knobs)
    return TableRow(spec.label, spec.family, build, spec.description)


def table_rows(profile: str, *, device="auto", seed: int = 0, supervised_checkpoint: str | Path | None = None) -> list[TableRow]:
    """The main table's rows: :data:`TABLE_METHODS` through :func:`sepcore.api.build_separator` (the
    Conv-TasNet from ``supervised_checkpoint`` when given, else its committed default), with the
    :data:`ORACLES` after the baselines, in the order the table shows them within each family."""
    rows = []
    for method, pairs, quick_knobs in TABLE_METHODS:
        if method == "conv-tasnet":              # the oracles before the upper bound that trains
            rows += [TableRow(oracle_label(name), "oracle", build, note) for name, (build, note) in ORACLES.items()]
        rows.append(_registered_row(method, pairs, quick_knobs if profile == "quick" else {}, device=device, seed=seed,
                                    checkpoint=supervised_checkpoint if method == "conv-tasnet" else None))
    return rows


def chunk_budget(label: str, profile: str, default: int | None) -> int | None:
    """How many chunks a method (by its table label) is scored on: :data:`GENERATIVE_CHUNKS` or ``default``."""
    return GENERATIVE_CHUNKS.get(label, {}).get(profile, default)


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
