"""Reading a user's audio and writing stems, with every conversion stated and every failure explained.

Conversions (each one is recorded in :attr:`Audio.notes`, and the CLI writes them to its
settings JSON):

- **Stereo and multichannel** files are downmixed to mono by the **mean of the channels**.
- **Other sample rates** are resampled with ``torchaudio.functional.resample`` (windowed
  sinc, its defaults) to the rate the method needs.
- Samples are converted to float32 in [-1, 1] (soundfile's scaling of integer formats).

Rejections (:class:`AudioError`, naming the file and the fix): a missing or unreadable file,
NaN or infinite samples, a signal shorter than ``min_seconds``, and digital silence (RMS
below ``silence_db`` dBFS), which no method can separate.

Writing is atomic: each file goes to a temporary name in the target folder and is moved into
place with ``os.replace`` only once everything has been written, so a failure leaves no
partial output behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

#: Signals whose RMS is below this level (dB relative to full scale) count as silent.
SILENCE_DB = -80.0
#: The shortest input accepted by default, in seconds.
MIN_SECONDS = 0.25


class AudioError(ValueError):
    """An input or output problem that the user can fix; the message says how."""


@dataclass
class Audio:
    """A mono signal ``samples (time,)`` at ``sample_rate`` Hz, with how it was obtained."""

    samples: torch.Tensor
    sample_rate: int
    path: str = ""
    original_sample_rate: int | None = None
    original_channels: int = 1
    notes: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.samples.shape[-1] / self.sample_rate


def to_mono(samples: torch.Tensor) -> torch.Tensor:
    """Downmix ``(channels, time)`` to ``(time,)`` by the mean of the channels; ``(time,)`` passes."""
    if samples.ndim == 1:
        return samples
    if samples.ndim != 2:
        raise AudioError(f"expected (time,) or (channels, time) audio, got shape {tuple(samples.shape)}")
    return samples.mean(dim=0)


def resample(samples: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """Resample ``(..., time)`` from ``orig_rate`` to ``new_rate`` Hz (torchaudio's windowed sinc)."""
    if int(orig_rate) == int(new_rate):
        return samples
    import torchaudio.functional as F

    return F.resample(samples, int(orig_rate), int(new_rate))


def check_signal(samples: torch.Tensor, sample_rate: int, *, name: str = "the mixture",
                 min_seconds: float = MIN_SECONDS, silence_db: float = SILENCE_DB) -> torch.Tensor:
    """Reject NaN/inf, too-short and silent signals with a message that names ``name``."""
    if samples.numel() == 0:
        raise AudioError(f"{name} is empty (0 samples).")
    bad = int((~torch.isfinite(samples)).sum())
    if bad:
        raise AudioError(f"{name} holds {bad} NaN or infinite samples; re-export it from your editor "
                         "or replace them (e.g. numpy.nan_to_num) before separating.")
    length = samples.shape[-1]
    if length < min_seconds * sample_rate:
        raise AudioError(f"{name} is {length / sample_rate:.3f} s long ({length} samples at {sample_rate} Hz); "
                         f"at least {min_seconds} s is needed.")
    rms = float(samples.double().pow(2).mean().sqrt())
    level = 20 * np.log10(rms) if rms > 0 else -np.inf
    if level < silence_db:
        raise AudioError(f"{name} is silent (RMS {level:.1f} dBFS, below {silence_db} dBFS): there is nothing to "
                         "separate. Check that the right file or channel was exported.")
    return samples


def _declared_frames(path: Path) -> int | None:
    """The sample count a WAV header declares (``None`` for other formats or unreadable headers)."""
    import struct

    try:
        with open(path, "rb") as handle:
            header = handle.read(12)
            if header[:4] != b"RIFF" or header[8:12] != b"WAVE":
                return None
            block_align = None
            while True:
                chunk = handle.read(8)
                if len(chunk) < 8:
                    return None
                name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if name == b"fmt ":
                    fmt = handle.read(size)
                    block_align = struct.unpack("<H", fmt[12:14])[0]
                    continue
                if name == b"data":
                    return size // block_align if block_align else None
                handle.seek(size + (size & 1), 1)
    except (OSError, struct.error):
        return None


def load_audio(path: str | Path, sample_rate: int | None = None, *, min_seconds: float = MIN_SECONDS,
               silence_db: float = SILENCE_DB) -> Audio:
    """Read a sound file as mono float32, resampled to ``sample_rate`` (``None``: keep the file's).

    Raises:
        AudioError: the file is missing or unreadable, or the signal is NaN/inf, too short or silent.
    """
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file.")
    try:
        data, file_rate = soundfile.read(str(path), dtype="float32", always_2d=True)   # (time, channels)
    except (RuntimeError, soundfile.LibsndfileError, TypeError, ValueError) as error:
        raise AudioError(f"{path} could not be read as audio ({error}). Use WAV, FLAC or OGG; convert other "
                         f"formats first, e.g. `ffmpeg -i {path.name} {path.stem}.wav`.") from error
    notes = []
    declared = _declared_frames(path)
    if declared is not None and declared > data.shape[0]:
        notes.append(f"the file is truncated: its header declares {declared} samples but {data.shape[0]} could be "
                     "read; the readable part was separated")
    peak = float(np.abs(data).max()) if data.size else 0.0
    if peak > 1.0:
        notes.append(f"samples reach {peak:.3g}, beyond full scale [-1, 1]; they were kept as they are (not clipped)")
    channels = data.shape[1]
    if channels > 1:
        notes.append(f"downmixed {channels} channels to mono (mean of the channels)")
    samples = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1, dtype=np.float32)))   # (time,), no (channels, time) copy
    check_signal(samples, file_rate, name=str(path), min_seconds=min_seconds, silence_db=silence_db)
    rate = file_rate
    if sample_rate is not None and int(sample_rate) != int(file_rate):
        samples = resample(samples, file_rate, sample_rate)
        notes.append(f"resampled from {file_rate} Hz to {sample_rate} Hz (torchaudio.functional.resample)")
        rate = int(sample_rate)
    return Audio(samples.contiguous(), int(rate), str(path), int(file_rate), channels, notes)


def ensure_writable_dir(directory: str | Path) -> Path:
    """Create ``directory`` if needed and prove it is writable, or raise :class:`AudioError`."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".sepcore-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise AudioError(f"cannot write to the output folder {directory} ({error.strerror or error}); "
                         "choose another folder with --out.") from error
    return directory


def _write_temporary(directory: Path, name: str, write) -> Path:
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _write_wav_file(path, samples: np.ndarray, sample_rate: int, subtype: str) -> None:
    """32-bit float WAVs go through scipy: libsndfile adds a PEAK chunk holding the time of
    writing, so two runs with identical samples would give different bytes."""
    if subtype == "FLOAT":
        from scipy.io import wavfile

        wavfile.write(path, int(sample_rate), samples.astype(np.float32))
    else:
        import soundfile

        soundfile.write(path, samples, int(sample_rate), subtype=subtype, format="WAV")


def write_outputs(directory: str | Path, stems: dict[str, torch.Tensor], sample_rate: int,
                  settings: dict | None = None, subtype: str = "FLOAT") -> list[Path]:
    """Write ``<name>.wav`` for every stem (and ``settings.json``) all-or-nothing.

    Args:
        stems: ``{name: (time,) samples}``.
        subtype: soundfile subtype; the default 32-bit float never clips estimates above 1,
            and is written without a timestamp, so identical stems give identical bytes.

    Returns:
        The written paths. On any failure no new file is left in ``directory``.
    """
    directory = Path(directory)
    if not directory.exists():     # a fresh folder: write everything beside it, then rename it in one step
        return _write_fresh_folder(directory, stems, sample_rate, settings, subtype)
    directory = ensure_writable_dir(directory)
    staged: list[tuple[Path, Path]] = []
    try:
        for name, samples in stems.items():
            array = torch.as_tensor(samples).detach().cpu().float().numpy()
            if array.ndim != 1:
                raise AudioError(f"stem {name!r} must be mono (time,), got shape {array.shape}")
            tmp = _write_temporary(directory, f"{name}.wav", lambda p, a=array: _write_wav_file(p, a, sample_rate, subtype))
            staged.append((tmp, directory / f"{name}.wav"))
        if settings is not None:
            text = json.dumps(settings, indent=2, default=str) + "\n"
            tmp = _write_temporary(directory, "settings.json", lambda p: Path(p).write_text(text))
            staged.append((tmp, directory / "settings.json"))
        for tmp, target in staged:
            os.replace(tmp, target)
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    return [target for _, target in staged]


def _write_fresh_folder(directory: Path, stems, sample_rate, settings, subtype) -> list[Path]:
    """All outputs into a temporary sibling folder, renamed to ``directory`` at the end (atomic)."""
    import shutil

    ensure_writable_dir(directory.parent)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.sepcore-"))
    try:
        written = write_outputs(staging, stems, sample_rate, settings=settings, subtype=subtype)
        os.rename(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [directory / p.name for p in written]


def write_wav(path: str | Path, samples: torch.Tensor, sample_rate: int, subtype: str = "FLOAT") -> Path:
    """Write one mono WAV atomically (temporary file, then ``os.replace``)."""
    path = Path(path)
    return write_outputs(path.parent, {path.stem: samples}, sample_rate, subtype=subtype)[0]


def stem_names(sources: Sequence[str]) -> list[str]:
    """File-safe, unique stem names for ``sources`` (``"lead vocals"`` -> ``"lead_vocals"``)."""
    names = []
    for source in sources:
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(source)) or "source"
        while name in names:
            name += "_"
        names.append(name)
    return names
