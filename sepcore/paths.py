"""Where the package reads and writes, from one place.

* :func:`data_root`: the datasets (``$SEPCORE_DATA``, else ``<repo>/data``);
* :func:`tables_root`: the tables of a profile (``tables/`` for ``default``, a scratch folder
  under ``_build/<profile>/`` otherwise, so smoke tests never touch committed tables);
* :data:`CHECKPOINTS`: the committed ``default`` checkpoints (``checkpoints/<family>/``).
"""

from __future__ import annotations

import os
from pathlib import Path

from sepcore.utils import REPO_ROOT

CHECKPOINTS = REPO_ROOT / "checkpoints"
BUILD = REPO_ROOT / "_build"


def data_root() -> Path:
    """``$SEPCORE_DATA`` when set, else ``<repo>/data``."""
    return Path(os.environ.get("SEPCORE_DATA", REPO_ROOT / "data"))


def tables_root(profile: str) -> Path:
    from sepcore.profiles import check_profile

    check_profile(profile)
    return REPO_ROOT / "tables" if profile == "default" else BUILD / profile / "tables"
