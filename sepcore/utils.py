"""Small shared helpers: device choice, seeding, quiet progress bars, provenance."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import random
import subprocess
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Packages whose versions go into every table's and checkpoint's provenance.
TRACKED_PACKAGES = (
    "sepcore", "torch", "torchaudio", "numpy", "scipy", "museval", "librosa",
    "scikit-learn", "pandas", "jupyter-book", "papermill",
)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when present, else CPU; anything else is passed to torch."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} was requested but CUDA is not available; use 'auto' or 'cpu'.")
    return resolved


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a CPU ``torch.Generator`` seeded the same way."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def quiet() -> bool:
    """True under CI (``CI`` set) or when ``SEPCORE_QUIET`` is set: progress bars stay silent."""
    return bool(os.environ.get("CI")) or bool(os.environ.get("SEPCORE_QUIET"))


def progress(iterable=None, **kwargs):
    """A tqdm progress bar that is disabled under CI."""
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", quiet())
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)


def package_versions(names=TRACKED_PACKAGES) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    versions["torch_cuda"] = str(torch.version.cuda)
    return versions


def git_revision(root: Path = REPO_ROOT) -> str:
    """The current commit (with ``-dirty`` when code has uncommitted changes), or ``"unknown"``."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            # tables/ is excluded: writing a chapter's first table must not mark the rest dirty
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)tables"],
            cwd=root, capture_output=True, text=True,
        ).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def file_sha256(path) -> str:
    """sha256 of a file's bytes, computed once per file version (size and modification time)."""
    stat = Path(path).stat()
    return _file_sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_atomic(obj, path) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then rename: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


def stable_hash(obj) -> str:
    """A short sha256 of a JSON-serialisable object (keys sorted), e.g. a manifest."""
    payload = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(payload).hexdigest()[:16]
