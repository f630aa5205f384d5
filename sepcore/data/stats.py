"""Statistics of a Slakh-format dataset (embedded or real) for the data chapter.

Everything is computed from the files through the reader's own functions, so the numbers
describe exactly what the separation chapters load.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from sepcore.data.slakh import (
    SPLITS,
    list_tracks,
    load_class,
    read_metadata,
    stem_class,
    track_length,
)
from sepcore.utils import progress

#: Slakh2100 as published (Manilow et al. 2019); each row names where the number is stated.
PUBLISHED_SLAKH2100 = {
    "tracks": (2100, "Manilow et al. 2019; quoted in paper 004, Sec. Experiments"),
    "hours of mixtures": (145, "Manilow et al. 2019; quoted in paper 004, Sec. Experiments"),
    "instrument classes": (34, "Manilow et al. 2019; quoted in papers 003 and 004"),
    "train tracks": (1500, "Manilow et al. 2019, Slakh2100 splits"),
    "validation tracks": (375, "Manilow et al. 2019, Slakh2100 splits"),
    "test tracks": (225, "Manilow et al. 2019, Slakh2100 splits"),
    "sample rate (Hz)": (44100, "Manilow et al. 2019; paper 004 resamples to 22 kHz"),
}


def stem_table(root: str | Path, splits=SPLITS) -> pd.DataFrame:
    """One row per stem: split, track, stem, class, program, is_drum, rendered, track source and tempo."""
    rows = []
    for split in splits:
        for track in list_tracks(root, split):
            metadata = read_metadata(track)
            for stem_id, stem in sorted(metadata["stems"].items()):
                rows.append({
                    "split": split, "track": track.name, "stem": stem_id, "class": stem_class(stem),
                    "inst_class": stem["inst_class"], "program": stem.get("program_num"),
                    "is_drum": bool(stem.get("is_drum")), "rendered": bool(stem.get("audio_rendered")),
                    "source": str(metadata.get("source", "")).split(":")[0], "tempo": metadata.get("tempo"),
                })
    return pd.DataFrame(rows)


def music_table(root: str | Path, splits=SPLITS) -> pd.DataFrame:
    """Per kind of music (procedural drum style, or Bach chorale): tracks, tempo range, keys."""
    rows = []
    for split in splits:
        for track in list_tracks(root, split):
            metadata = read_metadata(track)
            source = str(metadata.get("source", "unknown"))
            kind = "Bach chorale" if source.startswith("bach:") else source.replace("procedural:", "procedural, ")
            rows.append({"kind": kind, "tempo": metadata.get("tempo"), "key": metadata.get("key")})
    tracks = pd.DataFrame(rows)
    return (tracks.groupby("kind")
            .agg(tracks=("tempo", "size"), tempo_min=("tempo", "min"), tempo_median=("tempo", "median"),
                 tempo_max=("tempo", "max"), keys=("key", "nunique"))
            .reset_index().sort_values("tracks", ascending=False, kind="stable"))


def chunk_table(root: str | Path, split: str, classes, sample_rate: int = 22050,
                chunk_length: int = 65536, max_tracks: int | None = None) -> pd.DataFrame:
    """One row per (track, class, chunk): mean energy per sample and RMS level in dBFS.

    A class absent from a track contributes chunks of energy 0 (level ``-inf``), as the reader
    would see them. ``max_tracks`` keeps the first tracks of the split (by name).
    """
    rows = []
    for track in progress(list_tracks(root, split)[:max_tracks], desc=f"chunks {split}", leave=False):
        length = track_length(track, sample_rate)
        n_chunks = length // chunk_length
        for source_class in classes:
            audio = load_class(track, source_class, sample_rate, length)[: n_chunks * chunk_length]
            energy = audio.reshape(n_chunks, chunk_length).pow(2).mean(-1).double().numpy()
            for c, e in enumerate(energy):
                rows.append({"track": track.name, "class": source_class, "chunk": c, "offset": c * chunk_length,
                             "energy": e, "rms_dbfs": 10 * np.log10(e) if e > 0 else -np.inf})
    return pd.DataFrame(rows)


def class_summary(stems: pd.DataFrame, chunks: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Per class: tracks holding it, stems per such track, distinct programs, silence fraction, levels."""
    n_tracks = stems.groupby(["split", "track"]).ngroups
    rows = []
    for source_class, group in chunks.groupby("class", sort=False):
        rendered = stems[(stems["class"] == source_class) & stems.rendered]
        with_class = rendered.groupby(["split", "track"]).ngroups
        present = group[group.track.isin(set(rendered.track))]
        loud = present[present.energy >= threshold]
        rows.append({
            "class": source_class,
            "tracks with class (%)": 100 * with_class / max(n_tracks, 1),
            "stems per track": len(rendered) / max(with_class, 1),
            "programs": rendered.program.nunique(),
            "silent chunks, all tracks (%)": 100 * float((group.energy < threshold).mean()),
            "silent chunks, tracks with class (%)": 100 * float((present.energy < threshold).mean()) if len(present) else np.nan,
            "level p10 (dBFS)": float(loud.rms_dbfs.quantile(0.1)) if len(loud) else np.nan,
            "level median (dBFS)": float(loud.rms_dbfs.median()) if len(loud) else np.nan,
            "level p90 (dBFS)": float(loud.rms_dbfs.quantile(0.9)) if len(loud) else np.nan,
        })
    return pd.DataFrame(rows)


def dataset_comparison(root: str | Path, stems: pd.DataFrame, sample_rate: int) -> pd.DataFrame:
    """The dataset's size next to Slakh2100's published numbers (a separate, labelled column)."""
    per_split = stems.groupby("split").track.nunique()
    seconds = 0.0
    for split in per_split.index:
        for track in list_tracks(root, split):
            seconds += track_length(track, sample_rate) / sample_rate
    first = list_tracks(root, per_split.index[0])[0]
    audio = sorted(first.glob("mix.*")) + sorted(first.glob("stems/S*.*"))
    native_rate = sf.info(str(audio[0])).samplerate if audio else np.nan
    ours = {
        "tracks": int(per_split.sum()),
        "hours of mixtures": round(seconds / 3600, 2),
        "instrument classes": int(stems[stems.rendered].inst_class.nunique()),
        "train tracks": int(per_split.get("train", 0)),
        "validation tracks": int(per_split.get("validation", 0)),
        "test tracks": int(per_split.get("test", 0)),
        "sample rate (Hz)": native_rate if native_rate is not None else np.nan,
    }
    return pd.DataFrame([
        {"quantity": key, "this dataset": f"{ours[key]:g}", "published Slakh2100": f"{value:g}",
         "published source": source}
        for key, (value, source) in PUBLISHED_SLAKH2100.items()
    ])
