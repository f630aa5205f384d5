"""Render the embedded Slakh-format dataset: procedural MIDI -> FluidSynth -> Slakh2100 layout.

Command line::

    python -m sepcore.data.render --profile quick|default|full [--out DIR] [--seed N]

Layout written (the one of Slakh2100, so :mod:`sepcore.data.slakh` reads it unchanged)::

    <root>/{train,validation,test}/TrackNNNNN/metadata.yaml
                                             /mix.wav
                                             /stems/SNN.wav
                                             /MIDI/SNN.mid
    <root>/dataset.json        (config, per-track checksums, manifest hash, render time)

How a track is made (Slakh's recipe, with a General MIDI SoundFont instead of Native
Instruments' sample libraries):

1. A song is composed from ``numpy.random.default_rng([seed, split, index])``
   (:func:`sepcore.data.midi.compose`, or a Bach chorale from :mod:`sepcore.data.corpus`).
2. Each part is rendered **on its own** with FluidSynth (pyfluidsynth, float output, reverb
   and chorus off: dry stems), at ``sample_rate``, downmixed to mono (mean of L and R) and cut
   to ``duration`` seconds.
3. **Peak handling**: one gain per track scales every stem so that the float sum of the stems
   peaks at ``peak`` (default 0.89, about -1 dBFS); relative levels between stems are the
   SoundFont's and the velocities'. Stems are then quantised to 16-bit, and ``mix.wav`` is the
   exact integer sum of the quantised stems, so stems sum to the mix bit for bit.

Every track is a pure function of ``(seed, split, index)``, so rendering is deterministic and
workers can render tracks in any order. :func:`ensure_dataset` renders into a temporary folder
and renames it into place, so a crash never leaves a half-written dataset behind.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import hashlib
import io
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

from sepcore.data.midi import Part, Song, compose
from sepcore.profiles import PROFILES, ProfileConfig, check_profile
from sepcore.utils import progress, stable_hash

SPLITS = ("train", "validation", "test")
SOUNDFONT_CANDIDATES = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)
FORMAT_VERSION = 2  # bump when the composition or rendering code changes the audio


def find_soundfont(path: str | None = None) -> Path:
    """The General MIDI SoundFont to render with: ``path``, ``$SEPCORE_SOUNDFONT`` or Debian's FluidR3_GM."""
    candidates = [path] if path else [os.environ.get("SEPCORE_SOUNDFONT"), *SOUNDFONT_CANDIDATES]
    for candidate in filter(None, candidates):
        if Path(candidate).is_file():
            return Path(candidate)
    raise FileNotFoundError(
        f"no General MIDI SoundFont found (looked at {[c for c in candidates if c]}). Install one with "
        "`apt-get install -y fluidsynth fluid-soundfont-gm`, or set SEPCORE_SOUNDFONT=/path/to/bank.sf2."
    )


@dataclass
class RenderConfig(ProfileConfig):
    """Sizes and settings of the embedded dataset; one per profile."""

    n_train: int = 200
    n_validation: int = 16
    n_test: int = 24
    duration: float = 30.0          # seconds per track
    sample_rate: int = 22050
    seed: int = 0
    peak: float = 0.89              # peak of each track's mix after the per-track gain
    synth_gain: float = 0.2         # FluidSynth's master gain (before the per-track gain)
    chorale_fraction: float = 0.2   # share of tracks arranged from Bach chorales (music21 corpus)
    soundfont: str = ""             # empty: find_soundfont()
    n_workers: int = 2

    @classmethod
    def quick(cls):
        return cls(n_train=4, n_validation=1, n_test=4, duration=12.0, n_workers=1)

    @classmethod
    def default(cls):
        return cls()

    @classmethod
    def full(cls):
        # Slakh2100's split sizes at 60 s per track: hours of audio; meant for a big machine.
        return cls(n_train=1500, n_validation=375, n_test=225, duration=60.0, n_workers=os.cpu_count() or 2)

    def n_tracks(self, split: str) -> int:
        return {"train": self.n_train, "validation": self.n_validation, "test": self.n_test}[split]

    def fingerprint(self) -> str:
        """What the audio depends on (not the worker count)."""
        values = self.to_dict()
        values.pop("n_workers")
        values.pop("soundfont")
        return stable_hash({"config": values, "format": FORMAT_VERSION})


# ----------------------------------------------------------------------------- synthesis

class Synthesizer:
    """FluidSynth with the SoundFont loaded once, rendering each part to mono float32.

    Every part is rendered by a **fresh** ``fluid_synth`` that shares the loaded SoundFont
    (``fluid_synth_add_sfont``): a reused synth carries voice and filter state from one part to
    the next, so the same part would not render identically. A fresh synth costs about 2 ms.
    """

    def __init__(self, soundfont: str | Path, sample_rate: int, gain: float = 0.2):
        with contextlib.redirect_stdout(io.StringIO()):  # pyfluidsynth prints where it found the library
            import fluidsynth

        self.sample_rate = sample_rate
        lib = fluidsynth._fl
        lib.fluid_set_log_function(2, None, None)  # silence FluidSynth's warnings (errors still show)
        self._master = fluidsynth.Synth(
            gain=gain, samplerate=sample_rate, channels=16,
            **{"synth.reverb.active": 0, "synth.chorus.active": 0, "synth.polyphony": 256},
        )
        sfid = self._master.sfload(str(soundfont))
        if sfid < 0:
            raise OSError(f"FluidSynth could not load the SoundFont {soundfont}")
        signatures = {
            "fluid_synth_get_sfont_by_id": ([ctypes.c_void_p, ctypes.c_int], ctypes.c_void_p),
            "new_fluid_synth": ([ctypes.c_void_p], ctypes.c_void_p),
            "delete_fluid_synth": ([ctypes.c_void_p], None),
            "fluid_synth_add_sfont": ([ctypes.c_void_p, ctypes.c_void_p], ctypes.c_int),
            "fluid_synth_remove_sfont": ([ctypes.c_void_p, ctypes.c_void_p], ctypes.c_int),
            "fluid_synth_program_select": ([ctypes.c_void_p] + [ctypes.c_int] * 4, ctypes.c_int),
            "fluid_synth_noteon": ([ctypes.c_void_p] + [ctypes.c_int] * 3, ctypes.c_int),
            "fluid_synth_noteoff": ([ctypes.c_void_p] + [ctypes.c_int] * 2, ctypes.c_int),
            "fluid_synth_write_float": ([ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                                         ctypes.c_void_p, ctypes.c_int, ctypes.c_int], ctypes.c_int),
        }
        for name, (argtypes, restype) in signatures.items():
            function = getattr(lib, name)
            function.argtypes, function.restype = argtypes, restype
        self._lib = lib
        self._sfont = lib.fluid_synth_get_sfont_by_id(self._master.synth, sfid)

    def render(self, part: Part, n_samples: int) -> np.ndarray:
        """Render one part alone; returns ``(n_samples,)`` float32, mono (mean of L and R).

        Events take effect at FluidSynth's 64-sample block boundaries (2.9 ms at 22050 Hz).
        """
        lib = self._lib
        channel = 9 if part.is_drum else 0
        bank = 128 if part.is_drum else 0
        synth = lib.new_fluid_synth(self._master.settings)
        try:
            sfid = lib.fluid_synth_add_sfont(synth, self._sfont)
            if lib.fluid_synth_program_select(synth, channel, sfid, bank, part.program) != 0:
                raise ValueError(f"the SoundFont has no preset bank {bank} program {part.program} ({part.name})")
            events = []  # (sample, kind, pitch, velocity); note-offs (kind 0) first at equal times
            for start, end, pitch, velocity in part.notes:
                on = int(round(start * self.sample_rate))
                if on < n_samples:
                    events.append((on, 1, pitch, velocity))
                    events.append((int(round(end * self.sample_rate)), 0, pitch, 0))
            events.sort()
            left = np.zeros(n_samples, np.float32)
            right = np.zeros(n_samples, np.float32)
            cursor = 0
            for sample, kind, pitch, velocity in events + [(n_samples, -1, 0, 0)]:
                sample = min(sample, n_samples)
                if sample > cursor:
                    lib.fluid_synth_write_float(synth, sample - cursor, left[cursor:].ctypes.data, 0, 1,
                                                right[cursor:].ctypes.data, 0, 1)
                    cursor = sample
                if kind == 1:
                    lib.fluid_synth_noteon(synth, channel, pitch, velocity)
                elif kind == 0:
                    lib.fluid_synth_noteoff(synth, channel, pitch)
        finally:
            lib.fluid_synth_remove_sfont(synth, self._sfont)  # the master synth owns the SoundFont
            lib.delete_fluid_synth(synth)
        return 0.5 * (left + right)


def write_midi(part: Part, path: Path, tempo: float) -> None:
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    instrument = pretty_midi.Instrument(program=part.program, is_drum=part.is_drum, name=part.name)
    instrument.notes = [pretty_midi.Note(velocity=v, pitch=p, start=s, end=e) for s, e, p, v in part.notes]
    midi.instruments.append(instrument)
    midi.write(str(path))


def track_name(config: RenderConfig, split: str, index: int) -> str:
    """Slakh numbers tracks across splits: train first, then validation, then test."""
    offset = {"train": 0, "validation": config.n_train, "test": config.n_train + config.n_validation}[split]
    return f"Track{offset + index + 1:05d}"


def compose_track(config: RenderConfig, split: str, index: int) -> Song:
    """The song of track ``index`` of ``split``: a pure function of ``(seed, split, index)``."""
    rng = np.random.default_rng([config.seed, SPLITS.index(split), index])
    if config.chorale_fraction > 0 and rng.random() < config.chorale_fraction:
        from sepcore.data.corpus import chorale_song

        song = chorale_song(rng, config.duration)
        if song is not None:
            return song
    return compose(rng, config.duration)


def render_track(synth: Synthesizer, config: RenderConfig, split: str, index: int, folder: Path) -> dict:
    """Compose and render one track into ``folder`` (Slakh layout); returns its summary row."""
    song = compose_track(config, split, index)
    n_samples = int(round(config.duration * config.sample_rate))
    audio = [synth.render(part, n_samples) for part in song.parts]
    peak = float(np.abs(np.sum(audio, axis=0)).max()) if audio else 0.0
    gain = config.peak / peak if peak > 0 else 1.0
    stems_int = [np.round(np.clip(a * gain, -1, 1) * 32767).astype(np.int32) for a in audio]
    mix_int = np.sum(stems_int, axis=0) if stems_int else np.zeros(n_samples, np.int32)
    if np.abs(mix_int).max(initial=0) > 32767:
        raise RuntimeError(f"mix of {folder} clips after quantisation; lower RenderConfig.peak")
    (folder / "stems").mkdir(parents=True, exist_ok=True)
    (folder / "MIDI").mkdir(exist_ok=True)
    stems, digest = {}, hashlib.sha256()
    for k, (part, samples) in enumerate(zip(song.parts, stems_int)):
        stem_id = f"S{k:02d}"
        rendered = bool(np.any(samples))
        if rendered:
            sf.write(folder / "stems" / f"{stem_id}.wav", samples.astype(np.int16), config.sample_rate, subtype="PCM_16")
            digest.update(samples.astype(np.int16).tobytes())
        write_midi(part, folder / "MIDI" / f"{stem_id}.mid", song.tempo)
        rms = float(np.sqrt(np.mean((samples / 32768.0) ** 2)))
        stems[stem_id] = {
            "inst_class": part.inst_class, "program_num": part.program, "is_drum": part.is_drum,
            "audio_rendered": rendered, "midi_saved": True, "plugin_name": Path(synth_soundfont(config)).name,
            "name": part.name, "n_notes": len(part.notes), "rms": rms,
        }
    sf.write(folder / "mix.wav", mix_int.astype(np.int16), config.sample_rate, subtype="PCM_16")
    digest.update(mix_int.astype(np.int16).tobytes())
    metadata = {
        "UUID": f"sepcore-{config.seed}-{split}-{index}", "audio_dir": "stems", "midi_dir": "MIDI",
        "split": split, "source": song.source, "tempo": round(song.tempo, 3), "key": song.key,
        "sample_rate": config.sample_rate, "duration": config.duration, "overall_gain": gain,
        "normalized": True, "target_peak": config.peak, "stems": stems,
    }
    with open(folder / "metadata.yaml", "w") as handle:
        yaml.safe_dump(metadata, handle, sort_keys=True)
    return {"split": split, "track": folder.name, "source": song.source, "tempo": song.tempo, "key": song.key,
            "n_stems": len(stems), "sha256": digest.hexdigest()}


def synth_soundfont(config: RenderConfig) -> str:
    return str(find_soundfont(config.soundfont or None))


# ----------------------------------------------------------------------------- datasets

_WORKER: dict = {}


def _init_worker(config_dict: dict) -> None:
    config = RenderConfig.from_dict(config_dict)
    _WORKER["config"] = config
    _WORKER["synth"] = Synthesizer(synth_soundfont(config), config.sample_rate, config.synth_gain)


def _render_job(job: tuple[str, int, str]) -> dict:
    split, index, folder = job
    return render_track(_WORKER["synth"], _WORKER["config"], split, index, Path(folder))


def render_dataset(config: RenderConfig, out: str | Path) -> dict:
    """Render every split into ``out`` (which must not exist yet); returns the dataset summary."""
    out = Path(out)
    started = time.time()
    soundfont = find_soundfont(config.soundfont or None)
    jobs = []
    for split in SPLITS:
        for index in range(config.n_tracks(split)):
            jobs.append((split, index, str(out / split / track_name(config, split, index))))
    for split in SPLITS:
        (out / split).mkdir(parents=True, exist_ok=True)
    n_workers = max(1, min(config.n_workers, len(jobs)))
    if n_workers == 1:
        _init_worker(config.to_dict())
        rows = [_render_job(job) for job in progress(jobs, desc="render", unit="track")]
    else:
        import multiprocessing

        context = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
        with context.Pool(n_workers, initializer=_init_worker, initargs=(config.to_dict(),)) as pool:
            rows = list(progress(pool.imap(_render_job, jobs), total=len(jobs), desc="render", unit="track"))
    summary = {
        "format": FORMAT_VERSION, "config": config.to_dict(), "fingerprint": config.fingerprint(),
        "soundfont": soundfont.name, "tracks": rows,
        "manifest_hash": stable_hash([(r["split"], r["track"], r["sha256"]) for r in rows]),
        "render_seconds": round(time.time() - started, 2),
        "audio_hours": round(len(rows) * config.duration / 3600, 3),
    }
    with open(out / "dataset.json", "w") as handle:
        json.dump(summary, handle, indent=1)
    return summary


def dataset_root(profile: str, data_root: str | Path, seed: int | None = None) -> Path:
    """``<data_root>/slakh-embedded-<profile>``, with ``-seed<N>`` when the seed is not the profile's."""
    suffix = "" if seed in (None, RenderConfig.for_profile(profile).seed) else f"-seed{seed}"
    return Path(data_root) / f"slakh-embedded-{check_profile(profile)}{suffix}"


def is_complete(root: Path, config: RenderConfig) -> bool:
    """True when ``root/dataset.json`` exists and was written for this config's fingerprint."""
    try:
        with open(root / "dataset.json") as handle:
            return json.load(handle).get("fingerprint") == config.fingerprint()
    except (OSError, ValueError):
        return False


def ensure_dataset(profile: str, data_root: str | Path, config: RenderConfig | None = None) -> Path:
    """The root of the embedded Slakh-format dataset for ``profile``, rendered first if needed.

    The dataset is cached at ``<data_root>/slakh-embedded-<profile>``. It is rendered into a
    temporary sibling folder and renamed into place (atomic), under a file lock so that two
    processes never render it at once. A folder left by an older config is replaced.
    """
    config = config or RenderConfig.for_profile(profile)
    root = dataset_root(profile, data_root, config.seed)
    if is_complete(root, config):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_complete(root, config):
            return root
        for stale in root.parent.glob(f".{root.name}.partial-*"):  # left by a killed render
            shutil.rmtree(stale, ignore_errors=True)
        staging = root.parent / f".{root.name}.partial-{os.getpid()}"
        try:
            render_dataset(config, staging)
            if root.exists():
                shutil.rmtree(root)
            os.replace(staging, root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sepcore.data.render", description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="default", choices=PROFILES)
    parser.add_argument("--out", default="", help="data root (default: $SEPCORE_DATA or <repo>/data)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    from sepcore.book import default_data_root

    overrides = {k: v for k, v in {"seed": args.seed, "n_workers": args.workers}.items() if v is not None}
    config = RenderConfig.for_profile(args.profile, **overrides)
    started = time.time()
    root = ensure_dataset(args.profile, args.out or default_data_root(), config)
    with open(root / "dataset.json") as handle:
        summary = json.load(handle)
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    print(f"{root}: {len(summary['tracks'])} tracks, {summary['audio_hours']} h of audio, {size / 1e6:.1f} MB, "
          f"rendered in {summary['render_seconds']} s (this call {time.time() - started:.1f} s), "
          f"manifest hash {summary['manifest_hash']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
