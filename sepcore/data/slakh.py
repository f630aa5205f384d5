"""Read Slakh2100 (and the embedded Slakh-format dataset) as mixture and single-class datasets.

Expected layout (Slakh2100 and Slakh2100-redux; :mod:`sepcore.data.render` writes the same)::

    <root>/<split>/TrackNNNNN/metadata.yaml      split in {train, validation, test}
    <root>/<split>/TrackNNNNN/stems/SNN.flac     (or .wav; one file per stem with audio_rendered: true)
    <root>/<split>/TrackNNNNN/mix.flac           (or mix.wav; optional for this reader)

``metadata.yaml`` holds ``stems: {SNN: {inst_class, program_num, is_drum, audio_rendered, ...}}``.

Conventions (one place, stated once):

- **Classes** are lower-case names of Slakh's ``inst_class`` ("drums", "bass", "guitar",
  "piano", also e.g. "strings"); all stems of a track with that class are **summed**.
- **Audio**: read with soundfile as float32 in [-1, 1], **mono** by the mean over channels,
  resampled to ``sample_rate`` with ``torchaudio.functional.resample`` (sinc interpolation)
  when the file's rate differs (Slakh2100 is 44.1 kHz).
- **Peak handling**: none. No clipping, no normalisation per stem, chunk or track: sources and
  mixtures keep the dataset's own levels (summing stems or resampling may exceed 1 slightly).
- **Chunks**: non-overlapping, ``chunk_length`` samples from offset 0 of each track (65536 at
  22050 Hz = 2.97 s, as in the LQ-VAE code); a partial last chunk is dropped.
- **Silence rule** (LQ-VAE code): a chunk is dropped when any selected source has mean energy
  per sample ``mean(s**2) < silence_threshold`` (1.5e-5 by default).
- **Manifest**: one row per (chunk, class) with track id, class, offset, length, seed and energy,
  in deterministic order (tracks sorted by name, chunks by offset). It is written to
  ``<root>/manifests/`` (or ``manifest_dir``) and reused on the next run when the files are unchanged.
"""

from __future__ import annotations

import functools
import json
import os
import warnings
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch
import yaml

from sepcore.mixing import get_mixing, mix
from sepcore.utils import stable_hash

SPLITS = ("train", "validation", "test")
AUDIO_EXTENSIONS = (".flac", ".wav")
LAYOUT = (
    "<root>/{train,validation,test}/TrackNNNNN/metadata.yaml with a 'stems' mapping "
    "(inst_class, program_num, is_drum, audio_rendered) and <track>/stems/SNN.flac|wav"
)
FIX = ("Point data_root at a Slakh2100 copy (the folder holding train/ validation/ test/), "
       "or render the embedded dataset with `python -m sepcore.data.render --profile quick`.")


class SlakhLayoutError(FileNotFoundError):
    """The tree at a path is not a Slakh2100-format dataset; the message names path and layout."""


# ----------------------------------------------------------------------------- files

def list_tracks(root: str | Path, split: str) -> list[Path]:
    """Sorted track folders of ``split``; raises :class:`SlakhLayoutError` naming the path."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    root = Path(root)
    if not root.is_dir():
        raise SlakhLayoutError(f"Slakh root {root} does not exist or is not a folder. Expected {LAYOUT}. {FIX}")
    folder = root / split
    if not folder.is_dir():
        found = sorted(p.name for p in root.iterdir())[:10]
        raise SlakhLayoutError(f"{folder} is missing (found {found} in {root}). Expected {LAYOUT}. {FIX}")
    tracks = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not tracks:
        raise SlakhLayoutError(f"{folder} holds no track folders. Expected {LAYOUT}. {FIX}")
    for track in tracks:
        if not (track / "metadata.yaml").is_file():
            raise SlakhLayoutError(f"{track / 'metadata.yaml'} is missing. Expected {LAYOUT}. {FIX}")
    return tracks


def read_metadata(track: Path) -> dict:
    """Parse ``<track>/metadata.yaml``; validates the ``stems`` mapping (cached per file version)."""
    path = Path(track) / "metadata.yaml"
    try:
        stamp = path.stat().st_mtime_ns
    except OSError as error:
        raise SlakhLayoutError(f"cannot read {path}: {error}. Expected {LAYOUT}.") from error
    return _read_metadata(path, stamp)


@functools.lru_cache(maxsize=4096)
def _read_metadata(path: Path, stamp: int) -> dict:
    try:
        with open(path) as handle:
            metadata = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as error:
        raise SlakhLayoutError(f"cannot read {path}: {error}. Expected {LAYOUT}.") from error
    stems = metadata.get("stems") if isinstance(metadata, dict) else None
    if not isinstance(stems, dict) or not stems:
        raise SlakhLayoutError(f"{path} has no 'stems' mapping. Expected {LAYOUT}.")
    for stem_id, stem in stems.items():
        missing = {"inst_class", "audio_rendered"} - set(stem or {})
        if missing:
            raise SlakhLayoutError(f"{path}: stem {stem_id} lacks {sorted(missing)}. Expected {LAYOUT}.")
    return metadata


def stem_class(stem: dict) -> str:
    """Lower-case class of a stem; drums are recognised by ``is_drum`` as well."""
    return "drums" if stem.get("is_drum") else str(stem["inst_class"]).strip().lower()


def audio_file(folder: Path, name: str) -> Path | None:
    for extension in AUDIO_EXTENSIONS:
        if (folder / f"{name}{extension}").is_file():
            return folder / f"{name}{extension}"
    return None


def class_stems(track: Path, source_class: str) -> list[Path]:
    """Audio files of the rendered stems of ``source_class`` in ``track`` (may be empty)."""
    metadata = read_metadata(Path(track))
    audio_dir = Path(track) / metadata.get("audio_dir", "stems")
    paths = []
    for stem_id, stem in sorted(metadata["stems"].items()):
        if stem_class(stem) != source_class or not stem.get("audio_rendered"):
            continue
        path = audio_file(audio_dir, stem_id)
        if path is None:
            raise SlakhLayoutError(
                f"{audio_dir / stem_id}.flac|wav is missing but {track / 'metadata.yaml'} marks it audio_rendered. "
                f"Expected {LAYOUT}."
            )
        paths.append(path)
    return paths


def load_audio(path: Path, sample_rate: int) -> torch.Tensor:
    """Mono float32 audio at ``sample_rate``: ``(time,)``. Mean over channels; sinc resampling."""
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as error:
        raise OSError(f"cannot read audio file {path}: {error}. Re-extract or re-render this track.") from error
    audio = torch.from_numpy(data.mean(axis=1))
    if rate != sample_rate:
        import torchaudio.functional as AF

        audio = AF.resample(audio, rate, sample_rate)
    return audio.contiguous()


def track_length(track: Path, sample_rate: int) -> int:
    """Length of a track at ``sample_rate``: its mix's, else its longest stem's."""
    metadata = read_metadata(Path(track))
    mix_path = audio_file(Path(track), "mix")
    paths = [mix_path] if mix_path else [
        p for p in (audio_file(Path(track) / metadata.get("audio_dir", "stems"), s) for s in metadata["stems"]) if p
    ]
    if not paths:
        raise SlakhLayoutError(f"{track} has neither a mix nor any stem audio. Expected {LAYOUT}.")
    lengths = []
    for path in paths:
        try:
            info = sf.info(str(path))
        except (sf.LibsndfileError, RuntimeError) as error:
            raise OSError(f"cannot read audio file {path}: {error}") from error
        lengths.append(int(np.ceil(info.frames * sample_rate / info.samplerate)))
    return max(lengths)


def load_class(track: Path, source_class: str, sample_rate: int, length: int | None = None) -> torch.Tensor:
    """Sum of a track's stems of ``source_class``, ``(time,)`` at ``sample_rate``; zeros if none."""
    length = track_length(track, sample_rate) if length is None else length
    total = torch.zeros(length)
    for path in class_stems(track, source_class):
        audio = load_audio(path, sample_rate)[:length]
        total[: audio.shape[0]] += audio
    return total


def folder_fingerprint(tracks: list[Path]) -> str:
    """Names, sizes and modification times of every file the reader may open."""
    entries = []
    for track in tracks:
        for path in sorted(track.rglob("*")):
            if path.is_file() and path.suffix in (".yaml", *AUDIO_EXTENSIONS):
                stat = path.stat()
                entries.append((str(path.relative_to(track.parent)), stat.st_size, stat.st_mtime_ns))   # ns: a rewrite within a second counts
    return stable_hash(entries)


def chunk_seed(seed: int, track: str, offset: int) -> int:
    """A per-chunk seed for samplers, stable whatever subset of chunks is used."""
    return (zlib.crc32(f"{track}:{offset}".encode()) + 1_000_003 * seed) % 2**31


# ----------------------------------------------------------------------------- datasets

class SlakhMixtures(torch.utils.data.Dataset):
    """Mixtures of chunks of the selected classes.

    ``item = {"id": str, "sources": Tensor(n_sources, chunk_length), "mixture": Tensor(chunk_length)}``,
    ``mixture = sepcore.mixing.mix(sources, mixing)`` (mean or sum, one package-wide setting).
    """

    def __init__(self, root, classes=("drums", "bass"), split="test", sample_rate=22050,
                 chunk_length=65536, silence_threshold=1.5e-5, mixing=None, max_chunks=None,
                 seed=0, manifest_dir=None, cache_tracks=8):
        self.root = Path(root)
        self.classes = tuple(c.lower() for c in classes)
        if len(set(self.classes)) != len(self.classes) or not self.classes:
            raise ValueError(f"classes must be distinct and non-empty, got {classes}")
        if int(chunk_length) <= 0 or int(sample_rate) <= 0:
            raise ValueError(f"chunk_length and sample_rate must be positive, got {chunk_length} and {sample_rate}")
        self.split, self.sample_rate, self.chunk_length = split, int(sample_rate), int(chunk_length)
        self.silence_threshold, self.seed = float(silence_threshold), int(seed)
        self.mixing = get_mixing(mixing)
        self.tracks = {t.name: t for t in list_tracks(self.root, split)}
        known = {stem_class(stem) for t in self.tracks.values() for stem in read_metadata(t)["stems"].values()}
        unknown = [c for c in self.classes if c not in known]
        if unknown:
            raise ValueError(f"no track of {self.root / split} has a stem of class {unknown}; classes present: "
                             f"{sorted(known)}")
        self._load = functools.lru_cache(maxsize=cache_tracks)(self._load_track)
        full = self._full_manifest(manifest_dir)
        chunk_ids = full["id"].drop_duplicates().tolist()
        if max_chunks is not None and max_chunks < len(chunk_ids):
            rng = np.random.default_rng(self.seed)
            keep = set(np.asarray(chunk_ids)[np.sort(rng.choice(len(chunk_ids), max_chunks, replace=False))])
            full = full[full["id"].isin(keep)]
        self.manifest = full.reset_index(drop=True)
        self._chunks = self.manifest.drop_duplicates("id")[["id", "track", "offset"]].to_records(index=False).tolist()

    # -- manifest
    def _parameters(self) -> dict:
        return {"split": self.split, "classes": list(self.classes), "sample_rate": self.sample_rate,
                "chunk_length": self.chunk_length, "silence_threshold": self.silence_threshold, "seed": self.seed}

    def _full_manifest(self, manifest_dir) -> pd.DataFrame:
        fingerprint = stable_hash({**self._parameters(), "files": folder_fingerprint(list(self.tracks.values()))})
        folder = Path(manifest_dir) if manifest_dir else self.root / "manifests"
        stem = f"{self.split}-{'+'.join(self.classes)}-{self.sample_rate}-{self.chunk_length}-{self.silence_threshold:g}"
        csv_path, json_path = folder / f"{stem}.csv", folder / f"{stem}.json"
        try:
            if json.loads(json_path.read_text()).get("fingerprint") == fingerprint:
                return pd.read_csv(csv_path, dtype={"id": str, "track": str, "class": str})
        except (OSError, ValueError):
            pass
        manifest = self.scan()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            suffix = f".tmp-{os.getpid()}"   # write then rename: readers never see half a file
            manifest.to_csv(csv_path.with_suffix(suffix), index=False)
            os.replace(csv_path.with_suffix(suffix), csv_path)
            json_path.with_suffix(suffix).write_text(json.dumps({"fingerprint": fingerprint, **self._parameters()}, indent=1))
            os.replace(json_path.with_suffix(suffix), json_path)
        except OSError as error:
            warnings.warn(f"could not write the chunk manifest to {folder} ({error}); pass manifest_dir=", stacklevel=2)
        return manifest

    def scan(self) -> pd.DataFrame:
        """Read every track of the split and apply the silence rule: the full chunk manifest."""
        from sepcore.utils import progress

        rows = []
        for name in progress(list(self.tracks), desc=f"scan {self.split}", leave=False):
            sources = self._load(name)                      # (n_sources, time)
            n_chunks = sources.shape[1] // self.chunk_length
            if n_chunks == 0:
                continue
            chunks = sources[:, : n_chunks * self.chunk_length].reshape(len(self.classes), n_chunks, self.chunk_length)
            energy = chunks.pow(2).mean(-1)                  # (n_sources, n_chunks)
            keep = (energy >= self.silence_threshold).all(0)
            for c in torch.nonzero(keep).flatten().tolist():
                offset = c * self.chunk_length
                chunk_id = f"{self.split}/{name}/{offset}"
                for k, source_class in enumerate(self.classes):
                    rows.append({"id": chunk_id, "track": name, "class": source_class, "offset": offset,
                                 "length": self.chunk_length, "seed": chunk_seed(self.seed, name, offset),
                                 "energy": float(energy[k, c])})
        columns = ["id", "track", "class", "offset", "length", "seed", "energy"]
        return pd.DataFrame(rows, columns=columns)

    @property
    def manifest_hash(self) -> str:
        """Hash of the chunks (ids, classes, offsets, lengths, seeds) and the mixing convention."""
        rows = self.manifest[["id", "class", "offset", "length", "seed"]].values.tolist()
        return stable_hash({"rows": rows, "mixing": self.mixing, **self._parameters()})

    # -- items
    def _load_track(self, name: str) -> torch.Tensor:
        track = self.tracks[name]
        length = track_length(track, self.sample_rate)
        return torch.stack([load_class(track, c, self.sample_rate, length) for c in self.classes])

    def __len__(self) -> int:
        return len(self._chunks)

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} chunks")
        chunk_id, name, offset = self._chunks[index]
        sources = self._load(name)[:, offset: offset + self.chunk_length].clone()
        return {"id": chunk_id, "sources": sources, "mixture": mix(sources, self.mixing)}

    def batch(self, indices) -> torch.Tensor:
        """Sources of several chunks, ``(batch, n_sources, chunk_length)``."""
        return torch.stack([self[i]["sources"] for i in indices])


class SlakhStems(torch.utils.data.Dataset):
    """Non-silent single-class segments for training priors: ``item = Tensor(segment_length)`` (mono float32).

    Segments are non-overlapping, from offset 0 of each track; a segment with mean energy per
    sample below ``silence_threshold`` is dropped. The class audio of every track that has the
    class is held in memory (``max_tracks`` bounds it for the real Slakh2100).
    """

    def __init__(self, root, source_class, split="train", sample_rate=22050, segment_length=16384,
                 silence_threshold=1.5e-5, max_tracks=None):
        self.root, self.source_class, self.split = Path(root), source_class.lower(), split
        self.sample_rate, self.segment_length = int(sample_rate), int(segment_length)
        self.silence_threshold = float(silence_threshold)
        tracks = [t for t in list_tracks(self.root, split) if class_stems(t, self.source_class)]
        if max_tracks is not None:
            tracks = tracks[:max_tracks]
        if not tracks:
            raise ValueError(f"no track of {self.root / split} has a rendered {self.source_class!r} stem")
        self.track_names = [t.name for t in tracks]
        self.audio = [load_class(t, self.source_class, self.sample_rate) for t in tracks]
        rows = []
        for t, audio in enumerate(self.audio):
            n = audio.shape[0] // self.segment_length
            energy = audio[: n * self.segment_length].reshape(n, self.segment_length).pow(2).mean(-1)
            for s in torch.nonzero(energy >= self.silence_threshold).flatten().tolist():
                rows.append({"track": self.track_names[t], "track_index": t, "class": self.source_class,
                             "offset": s * self.segment_length, "length": self.segment_length,
                             "energy": float(energy[s])})
        self.manifest = pd.DataFrame(rows, columns=["track", "track_index", "class", "offset", "length", "energy"])
        if self.manifest.empty:
            raise ValueError(f"every {self.source_class!r} segment of {self.root / split} is below the silence threshold")

    @property
    def manifest_hash(self) -> str:
        rows = self.manifest[["track", "class", "offset", "length"]].values.tolist()
        return stable_hash({"rows": rows, "split": self.split, "sample_rate": self.sample_rate,
                            "silence_threshold": self.silence_threshold})

    def __len__(self) -> int:
        return len(self.manifest)

    def __getitem__(self, index: int) -> torch.Tensor:
        row = self.manifest.iloc[index]
        return self.audio[int(row.track_index)][int(row.offset): int(row.offset) + self.segment_length].clone()

    def random_crops(self, n: int, length: int | None = None, generator: torch.Generator | None = None,
                     max_tries: int = 20) -> torch.Tensor:
        """``(n, length)`` crops at uniformly random positions of the class audio, resampled up to
        ``max_tries`` times while silent (mean energy below the threshold)."""
        length = length or self.segment_length
        sizes = torch.tensor([max(a.shape[0] - length + 1, 0) for a in self.audio], dtype=torch.float64)
        if sizes.sum() == 0:
            raise ValueError(f"every track is shorter than the crop length {length}")
        crops = torch.empty(n, length)
        for i in range(n):
            for _ in range(max_tries):
                t = int(torch.multinomial(sizes, 1, generator=generator))
                start = int(torch.randint(int(sizes[t]), (1,), generator=generator))
                crops[i] = self.audio[t][start: start + length]
                if crops[i].pow(2).mean() >= self.silence_threshold:
                    break
        return crops


def resolve_root(profile: str, data_root: str | Path) -> Path:
    """The dataset a chapter reads: ``data_root`` itself when it is a Slakh2100 copy (it holds
    ``train/``, ``validation/`` and ``test/``), else the embedded dataset rendered under it."""
    data_root = Path(data_root)
    if all((data_root / split).is_dir() for split in SPLITS):
        return data_root
    from sepcore.data.render import ensure_dataset

    return ensure_dataset(profile, data_root)
