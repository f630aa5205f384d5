"""Where the package reads and writes, from one place.

* :func:`data_root`: the datasets (``$SEPCORE_DATA``, else ``<repo>/data``);
* :func:`tables_root`: the tables of a profile (``tables/`` for ``default``, a scratch folder
  under ``_build/<profile>/`` otherwise, so smoke tests never touch committed tables), and
  :func:`training_tables`, where every training entry point writes its learning curve;
* :data:`CHECKPOINTS`: the committed ``default`` checkpoints (``checkpoints/<family>/``), and
  :func:`flow_prior_path` and :func:`score_prior_path`, the file of one flow or score prior there
  or in another checkpoint folder;
* :data:`REPOSITORY_URL`: where the project is published: the one setting behind the book's
  repository and Colab buttons (``_config.yml``), each chapter's Colab set-up cell and the
  README's Colab links (``python -m sepcore.book sync`` writes them; a test checks they agree).
"""

from __future__ import annotations

import os
from pathlib import Path

from sepcore.utils import REPO_ROOT

CHECKPOINTS = REPO_ROOT / "checkpoints"
REPOSITORY_URL = "https://github.com/sepcore/sepcore"
REPOSITORY_BRANCH = "main"
BUILD = REPO_ROOT / "_build"


def data_root() -> Path:
    """``$SEPCORE_DATA`` when set, else ``<repo>/data``."""
    return Path(os.environ.get("SEPCORE_DATA", REPO_ROOT / "data"))


def tables_root(profile: str) -> Path:
    from sepcore.profiles import check_profile

    check_profile(profile)
    return REPO_ROOT / "tables" if profile == "default" else BUILD / profile / "tables"


def training_tables(profile: str) -> Path:
    """Where learning curves go: ``tables/training`` for ``default``, a scratch folder otherwise."""
    return tables_root(profile) / "training"


def flow_prior_path(dataset: str, source: str, folder: Path = CHECKPOINTS) -> Path:
    """``<folder>/flows/<dataset>_<source>.pt``: the noise-conditioned flow prior of one class."""
    return Path(folder) / "flows" / f"{dataset}_{source}.pt"


def score_prior_path(dataset: str, source: str, folder: Path = CHECKPOINTS) -> Path:
    """``<folder>/score/<dataset>_<source>.pt``; a joint model (``"a+b+..."``) is ``<dataset>_joint.pt``."""
    return Path(folder) / "score" / f"{dataset}_{'joint' if '+' in source else source}.pt"


def colab_url(path: str) -> str:
    """The Colab address that opens ``path`` (a notebook, relative to the repository root)."""
    return (f"{REPOSITORY_URL.replace('https://github.com', 'https://colab.research.google.com/github')}"
            f"/blob/{REPOSITORY_BRANCH}/{path}")
