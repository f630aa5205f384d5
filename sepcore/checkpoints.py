"""One checkpoint format for every model in the package.

A checkpoint is a ``torch.save``d dict::

    {"format": "sepcore-checkpoint/1", "model_class": "sepcore.models.flow.FlowPrior",
     "config_class": "...", "config": asdict(config), "state_dict": ...,
     "versions": {...}, "manifest_hash": "...", "metadata": {...}}

Models follow one convention: ``Model(config)`` builds the model from its config dataclass,
and ``model.config`` holds it. :func:`load_model` rebuilds the model in one call and checks
what the caller expects (sample rate, classes, ...), naming the file and the mismatch.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from dataclasses import asdict, is_dataclass
from pathlib import Path

import torch

from sepcore.utils import package_versions

FORMAT = "sepcore-checkpoint/1"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, or does not match what the caller expects."""


def _qualname(obj) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _import(qualname: str):
    module, _, name = qualname.rpartition(".")
    return getattr(importlib.import_module(module), name)


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    *,
    manifest_hash: str | None = None,
    metadata: dict | None = None,
) -> Path:
    """Save ``model`` (which must carry a dataclass ``model.config``) atomically to ``path``."""
    config = getattr(model, "config", None)
    if config is None or not is_dataclass(config):
        raise TypeError(f"{_qualname(model)} has no dataclass `config`; cannot checkpoint it.")
    payload = {
        "format": FORMAT,
        "model_class": _qualname(model),
        "config_class": _qualname(config),
        "config": asdict(config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "versions": package_versions(),
        "manifest_hash": manifest_hash,
        "metadata": metadata or {},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_checkpoint(path: str | Path) -> dict:
    """Load the raw checkpoint dict, with clear errors for missing or corrupt files."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(
            f"checkpoint {path} does not exist. Train it with the command listed in "
            "checkpoints/README.md, or pass retrain=True to the chapter."
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # torch raises several types for corrupt files
        raise CheckpointError(f"checkpoint {path} could not be read ({error}); the file is corrupt or not a checkpoint.") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a sepcore checkpoint (expected format {FORMAT!r}).")
    return payload


def load_model(
    path: str | Path,
    *,
    expect: dict | None = None,
    expect_class: type | None = None,
    device: str | torch.device = "cpu",
) -> torch.nn.Module:
    """Rebuild the model stored at ``path`` and load its weights.

    Args:
        expect: config fields (or ``metadata`` keys) that must match, e.g. ``{"sample_rate": 22050}``.
        expect_class: the model class the caller needs; a different class raises.
    """
    payload = read_checkpoint(path)
    model_cls = _import(payload["model_class"])
    if expect_class is not None and not issubclass(model_cls, expect_class):
        raise CheckpointError(f"{path} holds a {payload['model_class']}, expected a {_qualname(expect_class)}.")
    for key, wanted in (expect or {}).items():
        found = payload["config"].get(key, payload["metadata"].get(key, "<missing>"))
        if isinstance(found, list):
            found = tuple(found)
        if isinstance(wanted, list):
            wanted = tuple(wanted)
        if found != wanted:
            raise CheckpointError(f"{path}: expected {key}={wanted!r} but the checkpoint has {key}={found!r}.")
    config_cls = _import(payload["config_class"])
    config = config_cls.from_dict(payload["config"]) if hasattr(config_cls, "from_dict") else config_cls(**payload["config"])
    model = model_cls(config)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        raise CheckpointError(f"{path}: weights do not fit {payload['model_class']}({config}): {error}") from error
    model.checkpoint_info = {k: payload[k] for k in ("versions", "manifest_hash", "metadata")}
    return model.to(device).eval()
