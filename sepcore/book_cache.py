"""When an executed chapter can be reused: its cache key, stored in the executed notebook.

``python -m sepcore.book run`` re-executes a chapter only when its key differs from the one
stored in ``book/executed/NN_name.ipynb`` (``metadata["sepcore"]["cache_key"]``), or with
``--force``. The key is what the chapter's outputs depend on:

* the chapter's source (``notebooks/NN_name.md``) and the profile and parameters it runs with;
* the package: its version and a hash of every ``sepcore/**/*.py`` file;
* the committed checkpoints: a hash of every file under ``checkpoints/`` (resume states excluded,
  and the files a chapter itself writes there, :data:`CHAPTER_OUTPUTS`: a chapter's output is not
  an input of the chapters that ran before it);
* the rendered dataset of the profile: its fingerprint and audio hashes (``absent`` when not rendered).

A chapter that *collects* other chapters' tables (:data:`COLLECTORS`, e.g. the results chapter) is
re-executed whenever a chapter before it was, in the same run. The key is deliberately coarse: any
change to the package or the checkpoints re-executes every chapter; a reader's fresh clone, where
nothing changed, re-executes none.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from sepcore.utils import REPO_ROOT, file_sha256

COLLECTORS = frozenset({"12_results", "13_explore"})
EXCLUDED_SUFFIXES = (".state.pt", ".tmp", ".pyc")
#: Files under ``checkpoints/`` that a chapter writes (the LASS audio chapter's validation choice).
CHAPTER_OUTPUTS = frozenset({"lass/lass_spectral_settings.json"})


def _files_digest(paths: Iterable[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        if not path.is_file() or path.name.endswith(EXCLUDED_SUFFIXES) or "__pycache__" in path.parts:
            continue
        digest.update(str(path.relative_to(root)).encode())
        digest.update(file_sha256(path).encode())                   # cached per file version: one read per run
    return digest.hexdigest()[:16]


def package_digest(root: Path = REPO_ROOT) -> str:
    """A hash of every ``sepcore/**/*.py`` file (paths and contents)."""
    return _files_digest((root / "sepcore").rglob("*.py"), root)


def checkpoints_digest(root: Path = REPO_ROOT) -> str:
    """A hash of every file under ``checkpoints/`` except training resume states and :data:`CHAPTER_OUTPUTS`."""
    folder = root / "checkpoints"
    return _files_digest((p for p in folder.rglob("*") if p.relative_to(folder).as_posix() not in CHAPTER_OUTPUTS), root)


def data_digest(data_root: Path, profile: str) -> str:
    """A hash of the profile's rendered dataset, or ``absent``: its config fingerprint and the audio
    hash of every track (``<data_root>/slakh-embedded-<profile>/dataset.json``). The chunk manifests
    are left out (they follow from these and are written lazily while chapters run), and so are the
    other profiles' datasets, so a reader who renders only this profile's data gets the same key."""
    path = Path(data_root) / f"slakh-embedded-{profile}" / "dataset.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return "absent"
    content = {"fingerprint": record.get("fingerprint"), "tracks": [t.get("sha256") for t in record.get("tracks", [])]}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def cache_key(source: Path, profile: str, parameters: dict | None = None, *, data_root: Path | None = None,
              root: Path = REPO_ROOT) -> dict:
    """The key of one chapter's execution; see the module docstring."""
    from sepcore import __version__
    from sepcore.paths import data_root as default_data_root

    return {
        "chapter": Path(source).stem,
        "source": file_sha256(source)[:16],
        "profile": profile,
        "parameters": json.loads(json.dumps(parameters or {}, sort_keys=True, default=str)),
        "package": f"{__version__}+{package_digest(root)}",
        "checkpoints": checkpoints_digest(root),
        "data": data_digest(data_root or default_data_root(), profile),
    }


def stored_key(executed: Path) -> dict | None:
    """The key stored in an executed notebook, or ``None`` (missing file, or executed before keys existed)."""
    if not Path(executed).exists():
        return None
    try:
        metadata = json.loads(Path(executed).read_text()).get("metadata", {})
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return metadata.get("sepcore", {}).get("cache_key")


def store_key(notebook, key: dict) -> None:
    """Write ``key`` into an ``nbformat`` notebook's metadata (the caller saves it)."""
    notebook.metadata.setdefault("sepcore", {})["cache_key"] = key


def is_fresh(executed: Path, key: dict) -> bool:
    """Whether ``executed`` was produced with exactly ``key``."""
    return stored_key(executed) == key
