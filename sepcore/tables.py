"""Every table is written three times: ``<path>.csv``, ``<path>.md`` and ``<path>.json``.

The JSON beside each table is its provenance: the profile, the parameters, the git
revision, the package versions, the wall time, the data manifest's hash and the number of
mixtures. Tables of the ``quick`` profile are marked as smoke tests.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from sepcore.utils import git_revision, package_versions


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "item"):
        return _jsonable(value.item())
    return str(value)


def write_table(
    frame: pd.DataFrame,
    path: str | Path,
    *,
    profile: str,
    parameters: dict | None = None,
    started: float | None = None,
    manifest_hash: str | None = None,
    n_mixtures: int | None = None,
    notes: str = "",
    float_format: str = ".2f",
) -> dict:
    """Write ``frame`` to ``path`` + ``.csv``/``.md``/``.json``; return the provenance dict.

    Args:
        path: the table path without suffix, e.g. ``tables/elbo/elbo_check``.
        started: ``time.time()`` at the start of the work that made the table (wall time).
    """
    path = Path(path)
    provenance = {
        "table": path.name,
        "profile": profile,
        "smoke_test": profile == "quick",
        "parameters": _jsonable(parameters or {}),
        "git_revision": git_revision(),
        "versions": package_versions(),
        "wall_time_s": None if started is None else round(time.time() - started, 3),
        "manifest_hash": manifest_hash,
        "n_mixtures": n_mixtures,
        "n_rows": len(frame),
        "notes": notes,
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    _atomic_write(path.with_suffix(".csv"), frame.to_csv(index=False))
    header = "<!-- smoke test (quick profile): not a result -->\n" if profile == "quick" else ""
    _atomic_write(path.with_suffix(".md"), header + frame.to_markdown(index=False, floatfmt=float_format) + "\n")
    _atomic_write(path.with_suffix(".json"), json.dumps(provenance, indent=2) + "\n")
    return provenance


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a table written by :func:`write_table` (``path`` without suffix)."""
    path = Path(path)
    csv = path.with_suffix(".csv")
    if not csv.exists():
        raise FileNotFoundError(f"table {csv} does not exist; run the chapter that writes it first.")
    return pd.read_csv(csv)
