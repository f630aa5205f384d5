"""Training never writes a non-default profile's model over a committed checkpoint.

The ``default`` profile's checkpoints live under ``checkpoints/`` and are committed; a ``quick`` or
``full`` run that names a path there would replace them with a smoke-test or a differently sized
model. :func:`refuse_committed_path` stops such a run before it trains.
"""

from __future__ import annotations

from pathlib import Path

from sepcore.utils import REPO_ROOT

COMMITTED = REPO_ROOT / "checkpoints"


def refuse_committed_path(out, profile: str) -> None:
    """Raise ``SystemExit`` when ``profile`` is not ``default`` and ``out`` lies under ``checkpoints/``."""
    path = Path(out).resolve()
    if profile != "default" and (path == COMMITTED or COMMITTED in path.parents):
        raise SystemExit(f"refusing to write a {profile!r} model to {out}: checkpoints/ holds the committed default "
                         "models; pass an --out outside it")
