"""One validation layer for what a user passes to ``sepcore.separate`` and ``sepcore separate``.

Every check raises ``ValueError`` or ``TypeError`` with a message that names the argument and
what it accepts, so the CLI turns it into one line (exit status 2):

* knobs (:func:`check_knobs`): the type of the knob's default (``bool``, ``int``, ``float``,
  ``str``; an ``int`` knob accepts a whole float such as ``4.0``), finite numbers, the declared
  range ``[low, high]`` and the declared choices;
* ``sources`` (:func:`check_sources`): a non-empty sequence of distinct, non-empty names (a bare
  string such as ``"drums"`` is refused: it is not a list of one name);
* ``sample_rate`` (:func:`check_sample_rate`): ``None`` or a positive whole number of Hz;
* chunking (:func:`check_chunking`): positive finite chunk lengths, non-negative overlaps;
* ``seed`` (:func:`check_seed`): a whole number in ``[0, 2**63)``;
* the samples (:func:`as_mixture`): real numbers only (``bool`` and complex arrays are refused),
  integer PCM rescaled to ``[-1, 1)`` by its full scale, mono, finite and not silent (the same
  rule as files read by the CLI, :func:`sepcore.audio.check_signal`).

Written by hand: the rules are this package's; no library we depend on validates them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch


def _is_whole(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) or (
        isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer())


def check_knob(method: str, name: str, value, knob):
    """``value`` converted to the knob's type and checked against its range and choices."""
    default = knob.default
    where = f"knob {name!r} of method {method!r}"
    if isinstance(default, bool):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{where} takes true or false, got {value!r}")
        value = bool(value)
    elif isinstance(default, int):
        if not _is_whole(value):
            raise TypeError(f"{where} takes a whole number, got {value!r}")
        value = int(value)
    elif isinstance(default, float):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{where} takes a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{where} must be finite, got {value}")
    elif isinstance(default, str) and not isinstance(value, str):
        raise TypeError(f"{where} takes a string, got {value!r}")
    if knob.choices is not None and value not in knob.choices:
        raise ValueError(f"{where} must be one of {list(knob.choices)}, got {value!r}")
    if knob.low is not None and value < knob.low or knob.high is not None and value > knob.high:
        raise ValueError(f"{where} must lie in [{knob.low}, {knob.high}], got {value!r}")
    return value


def check_knobs(method: str, knobs: dict, specs: dict) -> dict:
    """Every knob checked (:func:`check_knob`); unknown names are refused with the known ones."""
    unknown = set(knobs) - set(specs)
    if unknown:
        raise TypeError(f"method {method!r} has no knob(s) {sorted(unknown)}; its knobs: {sorted(specs) or 'none'}")
    return {name: check_knob(method, name, value, specs[name]) for name, value in knobs.items()}


def check_sources(sources) -> tuple[str, ...]:
    if isinstance(sources, (str, bytes)) or not isinstance(sources, Sequence):
        raise TypeError(f"sources must be a sequence of names such as ('drums', 'bass'), got {sources!r}")
    names = tuple(sources)
    if not names:
        raise ValueError("sources is empty; name at least one source, e.g. ('drums', 'bass')")
    if not all(isinstance(n, str) and n.strip() for n in names):
        raise TypeError(f"every source must be a non-empty string, got {list(names)!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"sources must be distinct, got {list(names)!r}")
    return names


def check_sample_rate(sample_rate) -> int | None:
    if sample_rate is None:
        return None
    if not _is_whole(sample_rate) or int(sample_rate) <= 0:
        raise ValueError(f"sample_rate must be a positive whole number of Hz (or None), got {sample_rate!r}")
    return int(sample_rate)


def check_chunking(chunk_seconds, overlap_seconds) -> None:
    if chunk_seconds is not None and (isinstance(chunk_seconds, bool) or not math.isfinite(float(chunk_seconds))
                                      or float(chunk_seconds) <= 0):
        raise ValueError(f"chunk_seconds must be a positive finite number of seconds (or None), got {chunk_seconds!r}")
    if overlap_seconds is not None and (not math.isfinite(float(overlap_seconds)) or float(overlap_seconds) < 0):
        raise ValueError(f"overlap_seconds must be a non-negative finite number of seconds, got {overlap_seconds!r}")


def check_seed(seed) -> int:
    if not _is_whole(seed) or not 0 <= int(seed) < 2**63:
        raise ValueError(f"seed must be a whole number in [0, 2**63), got {seed!r}")
    return int(seed)


def as_mixture(mixture, sample_rate: int | None) -> tuple[torch.Tensor, list[str]]:
    """A mono float32 ``(time,)`` tensor and the conversions applied (integer PCM rescaled)."""
    if isinstance(mixture, (str, Path)):
        raise TypeError(f"separate() takes audio samples; read the file first: sepcore.audio.load_audio({str(mixture)!r})")
    array = mixture.detach().cpu().numpy() if isinstance(mixture, torch.Tensor) else np.asarray(mixture)
    notes = []
    if array.dtype == np.bool_ or np.issubdtype(array.dtype, np.complexfloating):
        raise TypeError(f"the mixture must hold real samples, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.integer):
        scale = float(2 ** (8 * array.dtype.itemsize - 1))
        notes.append(f"integer samples ({array.dtype}) divided by {scale:g}, their full scale")
        array = array.astype(np.float64) / scale
    elif not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"the mixture must hold numbers, got dtype {array.dtype}")
    tensor = torch.as_tensor(np.ascontiguousarray(array)).float()
    if tensor.ndim != 1:
        raise ValueError(f"the mixture must be mono with shape (time,), got {tuple(tensor.shape)}; "
                         "downmix first (sepcore.audio.to_mono averages the channels)")
    from sepcore.audio import check_signal

    check_signal(tensor, sample_rate or 1, name="the mixture", min_seconds=0.0)
    return tensor, notes
