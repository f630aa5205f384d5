"""Figures and listening widgets shared by the chapters.

Audio clips are cut to at most 10 s. Two ways to carry them:

* **files** (the book's executed chapters: :func:`set_audio_files`, which
  :func:`sepcore.book.chapter` calls under ``python -m sepcore.book run``): each clip is written
  once as a small Ogg/Vorbis file named by its content hash under ``book/audio/<chapter>/`` and
  the page holds an ``<audio src=...>`` element, so the notebook stays small;
* **embedded** (everywhere else, e.g. Colab): ``IPython.display.Audio``, base64 WAV in the output.

Listening tables (:func:`audio_table`) play every clip at the same RMS loudness
(``loudness_dbfs``), so methods are compared on content rather than level; single players
(:func:`audio`) keep the clip's level unless asked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

MAX_CLIP_S = 10.0
LISTENING_DBFS = -23.0
_AUDIO_FILES: tuple[Path, str] | None = None


def set_audio_files(folder: str | Path | None, url: str = "") -> None:
    """Write clips as files under ``folder`` and point players at ``url/<name>`` (``None``: embed them)."""
    global _AUDIO_FILES
    _AUDIO_FILES = None if folder is None else (Path(folder), url.rstrip("/"))


def match_loudness(clip: np.ndarray, dbfs: float = LISTENING_DBFS) -> np.ndarray:
    """``clip`` scaled to an RMS of ``dbfs`` dB full scale, then down (never up) so its peak is at most 1."""
    rms = float(np.sqrt(np.mean(np.square(clip)))) if clip.size else 0.0
    if rms == 0.0:
        return clip
    scaled = clip * (10 ** (dbfs / 20) / rms)
    peak = float(np.max(np.abs(scaled)))
    return scaled / peak if peak > 1.0 else scaled


def _audio_file(clip: np.ndarray, sample_rate: int) -> str:
    """Write ``clip`` as ``<sha1>.ogg`` in the audio folder (once) and return its URL."""
    import hashlib

    import soundfile

    folder, url = _AUDIO_FILES
    name = hashlib.sha1(clip.tobytes() + str(sample_rate).encode()).hexdigest()[:16] + ".ogg"
    path = folder / name
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, clip, sample_rate, format="OGG", subtype="VORBIS")
    return f"{url}/{name}"


def _numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().float().numpy()
    return np.asarray(x, dtype=np.float32)


def audio(x, sample_rate: int, max_seconds: float = MAX_CLIP_S, loudness_dbfs: float | None = None):
    """An HTML audio player for a mono clip ``(time,)``, cut to ``max_seconds``.

    ``loudness_dbfs`` sets its RMS level (:func:`match_loudness`); ``None`` keeps its level.
    Values are clipped to [-1, 1] (the player cannot represent more) after cutting.
    """
    from IPython.display import HTML, Audio

    clip = _numpy(x)[: int(min(max_seconds, MAX_CLIP_S) * sample_rate)]
    if loudness_dbfs is not None:
        clip = match_loudness(clip, loudness_dbfs)
    clip = np.clip(clip, -1.0, 1.0).astype(np.float32)
    if _AUDIO_FILES is not None:
        return HTML(f'<audio controls preload="none" src="{_audio_file(clip, sample_rate)}"></audio>')
    return Audio(clip, rate=sample_rate, normalize=False)


def audio_table(rows: Mapping[str, Mapping[str, object]], sample_rate: int, max_seconds: float = 4.0,
                loudness_dbfs: float | None = LISTENING_DBFS):
    """An HTML table of players: one row per example, one column per version (mixture, reference, estimate…).

    Args:
        rows: ``{row_label: {column_label: (time,) audio}}``.
        loudness_dbfs: every clip's RMS level (matched loudness); ``None`` keeps the levels.
    """
    from IPython.display import HTML

    columns = list(dict.fromkeys(c for row in rows.values() for c in row))
    head = "".join(f"<th>{c}</th>" for c in columns)
    body = []
    for label, row in rows.items():
        cells = "".join(
            f"<td>{audio(row[c], sample_rate, max_seconds, loudness_dbfs)._repr_html_() if c in row else ''}</td>"
            for c in columns
        )
        body.append(f"<tr><th>{label}</th>{cells}</tr>")
    return HTML(f"<table><thead><tr><th></th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def spectrogram_db(x, n_fft: int = 1024, hop_length: int = 256) -> np.ndarray:
    """Magnitude spectrogram in dB (torchaudio), ``(n_fft // 2 + 1, frames)``, 80 dB range."""
    import torchaudio

    wave = torch.as_tensor(_numpy(x))
    spec = torchaudio.transforms.Spectrogram(n_fft=n_fft, hop_length=hop_length, power=2.0)(wave)
    return torchaudio.transforms.AmplitudeToDB(stype="power", top_db=80.0)(spec).numpy()


def plot_spectrogram(ax, x, sample_rate: int, title: str = "", n_fft: int = 1024, hop_length: int = 256, max_hz: float | None = None):
    spec = spectrogram_db(x, n_fft, hop_length)
    duration = len(_numpy(x)) / sample_rate
    image = ax.imshow(spec, origin="lower", aspect="auto", cmap="magma",
                      extent=(0, duration, 0, sample_rate / 2))
    if max_hz:
        ax.set_ylim(0, max_hz)
    ax.set(title=title, xlabel="time [s]", ylabel="frequency [Hz]")
    return image


def spectrogram_grid(signals: Mapping[str, object], sample_rate: int, ncols: int = 4, max_hz: float | None = None, height: float = 2.4):
    """One spectrogram per named signal, laid out in a grid; returns the figure."""
    names = list(signals)
    nrows = int(np.ceil(len(names) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, height * nrows), squeeze=False, constrained_layout=True)
    for ax, name in zip(axes.flat, names):
        plot_spectrogram(ax, signals[name], sample_rate, title=name, max_hz=max_hz)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    return fig


def waveform_grid(signals: Mapping[str, object], sample_rate: int, seconds: float | None = None, ncols: int = 4,
                  overlay: Mapping[str, object] | None = None, height: float = 2.0):
    """Waveforms (optionally the first ``seconds``), with an optional overlay per panel (e.g. an estimate)."""
    names = list(signals)
    nrows = int(np.ceil(len(names) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, height * nrows), squeeze=False, constrained_layout=True)
    for ax, name in zip(axes.flat, names):
        wave = _numpy(signals[name])
        n = len(wave) if seconds is None else int(seconds * sample_rate)
        t = np.arange(n) / sample_rate
        ax.plot(t, wave[:n], lw=1.0, label="reference" if overlay else None)
        if overlay and name in overlay:
            ax.plot(t, _numpy(overlay[name])[:n], lw=1.0, alpha=0.8, label="estimate")
            ax.legend(fontsize=7, loc="upper right")
        ax.set(title=name, xlabel="time [s]")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    return fig


def histogram_grid(signals: Mapping[str, Sequence[float]], bins: int = 80, ncols: int = 4, height: float = 2.2):
    """Amplitude histograms (density), one panel per named signal (paper 002, Fig. 5)."""
    names = list(signals)
    nrows = int(np.ceil(len(names) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, height * nrows), squeeze=False, constrained_layout=True)
    for ax, name in zip(axes.flat, names):
        ax.hist(_numpy(signals[name]).ravel(), bins=bins, range=(-1, 1), density=True, color="C0")
        ax.set(title=name, xlabel="amplitude", xlim=(-1, 1))
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    return fig


def listening(dataset, indices: Sequence[int], methods: Mapping[str, object], max_seconds: float = 3.0,
              max_hz: float | None = 8000):
    """A chapter's closing "Listen" material: per chunk, a listening table, and one spectrogram figure.

    Args:
        dataset: items ``{"mixture": (T,), "sources": (N, T), "id": str}`` with ``classes`` and ``sample_rate``.
        indices: the chunks (the book uses 2 test chunks).
        methods: ``{label: separate}`` with ``separate(mixture (T,)) -> (N, T)`` estimates.

    Returns:
        ``(tables, figure)``: one :func:`audio_table` per chunk (rows: the mixture, the true stems and
        every method; columns: the classes; matched loudness), and the spectrograms of the first
        chunk (rows as in the table, one column per class; the mixture in the first column).
    """
    classes, sr = list(dataset.classes), dataset.sample_rate
    tables, first = [], None
    for index in indices:
        item = dataset[index]
        rows = {"mixture": {classes[0]: item["mixture"]},
                "true stems": {c: item["sources"][k] for k, c in enumerate(classes)}}
        for label, separate in methods.items():
            estimate = torch.as_tensor(separate(item["mixture"]))
            rows[label] = {c: estimate[k] for k, c in enumerate(classes)}
        tables.append(audio_table(rows, sr, max_seconds=max_seconds))
        first = first or (item["id"], rows)
    chunk_id, rows = first
    n = int(max_seconds * sr)
    fig, axes = plt.subplots(len(rows), len(classes), figsize=(3.8 * len(classes), 2.1 * len(rows)), squeeze=False,
                             constrained_layout=True)
    for r, (label, row) in enumerate(rows.items()):
        for k, c in enumerate(classes):
            ax = axes[r, k]
            if c in row:
                plot_spectrogram(ax, _numpy(row[c])[:n], sr, title=f"{label}: {c}" if label != "mixture" else label,
                                 max_hz=max_hz)
                if r < len(rows) - 1:
                    ax.set_xlabel("")
            else:
                ax.axis("off")
    fig.suptitle(f"chunk {chunk_id}")
    return tables, fig
