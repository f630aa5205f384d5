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
import pickle
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


def _import(qualname: str, path=None):
    """The class a checkpoint names; only classes of this package may be named (a file cannot make
    the loader import arbitrary modules)."""
    if not isinstance(qualname, str) or not qualname.startswith("sepcore."):
        raise CheckpointError(f"{path or 'checkpoint'} names the class {qualname!r}; only sepcore classes are loaded")
    module, _, name = qualname.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        raise CheckpointError(f"{path or 'checkpoint'} names {qualname!r}, which this sepcore does not have") from error


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


def checkpoints_in(folder: str | Path):
    """``(path, payload)`` of every checkpoint file directly in ``folder``, by name, resume states
    (``*.state.pt``) left out: what the checkpoint READMEs are generated from."""
    for path in sorted(Path(folder).glob("*.pt")):
        if not path.name.endswith(".state.pt"):
            yield path, read_checkpoint(path)


def read_checkpoint(path: str | Path) -> dict:
    """Load the raw checkpoint dict, with clear errors for missing or corrupt files."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(
            f"checkpoint {path} does not exist. Train it with the command listed in "
            "checkpoints/README.md, or pass retrain=True to the chapter."
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)   # tensors and plain data only: no code runs
    except pickle.UnpicklingError as error:
        if "GLOBAL" not in str(error):      # torch names the class it refused; anything else is damaged bytes
            raise CheckpointError(f"checkpoint {path} could not be read ({error}); the file is corrupt or not a "
                                  "checkpoint.") from error
        raise CheckpointError(f"checkpoint {path} was refused: it holds objects other than tensors and plain data "
                              "(sepcore loads weights only, so no code in a file can run)") from error
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
    for key, wanted in (expect or {}).items():
        found = payload["config"].get(key, payload["metadata"].get(key, "<missing>"))
        if isinstance(found, list):
            found = tuple(found)
        if isinstance(wanted, list):
            wanted = tuple(wanted)
        if found != wanted:
            raise CheckpointError(f"{path}: expected {key}={wanted!r} but the checkpoint has {key}={found!r}.")
    trusted = expect_class is not None and payload["model_class"] == _qualname(expect_class)
    if expect_class is not None and not trusted and not str(payload["model_class"]).startswith("sepcore."):
        raise CheckpointError(f"{path} holds a {payload['model_class']}, expected a {_qualname(expect_class)}.")
    model_cls = expect_class if trusted else _import(payload["model_class"], path)
    if expect_class is not None and not issubclass(model_cls, expect_class):
        raise CheckpointError(f"{path} holds a {payload['model_class']}, expected a {_qualname(expect_class)}.")
    # outside sepcore, only the config class defined beside the class the caller asked for
    same_module = trusted and payload["config_class"].rpartition(".")[0] == expect_class.__module__
    config_cls = (getattr(importlib.import_module(expect_class.__module__), payload["config_class"].rpartition(".")[2])
                  if same_module else _import(payload["config_class"], path))
    config = config_cls.from_dict(payload["config"]) if hasattr(config_cls, "from_dict") else config_cls(**payload["config"])
    model = model_cls(config)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        raise CheckpointError(f"{path}: weights do not fit {payload['model_class']}({config}): {error}") from error
    model.checkpoint_info = {**{k: payload[k] for k in ("versions", "manifest_hash", "metadata")}, "path": str(path)}
    return model.to(device).eval()


def training_runs(metadata: dict) -> list[dict]:
    """The metadata of every run of a model continued from its committed weights, oldest first
    (``metadata["continued_from"]``, ``scripts/promote_continued_prior.py``), ending with the last run."""
    earlier = metadata.get("continued_from", [])
    return [*([earlier] if isinstance(earlier, dict) else earlier), metadata]


def run_device(run: dict) -> str:
    """The device type a training run recorded (``"cpu"`` or ``"cuda"``); runs that recorded none, or
    ``None``, ran on the CPU."""
    return run.get("device") or "cpu"


def training_totals(metadata: dict, device: str | None = None) -> tuple[int, float]:
    """``(steps, CPU seconds)`` summed over every run of :func:`training_runs`; a run that recorded no
    CPU time adds its wall time (``wall_time_s``, the earliest releases), NaN when it has neither.
    ``device`` (``"cpu"`` or ``"cuda"``) keeps only the runs on that device (:func:`run_device`); a
    GPU run's seconds are its process's CPU time, about its wall time."""
    runs = [run for run in training_runs(metadata) if device is None or run_device(run) == device]
    steps = sum(run.get("step", run.get("steps_done", 0)) or 0 for run in runs)
    return steps, sum(run.get("cpu_seconds", run.get("wall_time_s", float("nan"))) for run in runs)
