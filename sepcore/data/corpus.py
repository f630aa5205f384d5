"""Real composed material for the embedded dataset: Bach chorales from music21's corpus.

music21 installs its corpus offline, including the four-part Bach chorales (soprano, alto,
tenor, bass). A chorale track arranges one of them for the Slakh classes:

- **bass**: the chorale's bass voice, an octave lower (bass-guitar register);
- **piano**: soprano, alto and tenor as written;
- **guitar**: the harmony (all four voices, chordified) as 8th-note arpeggios or strums;
- **drums**: a light groove in the chorale's metre with fills every 4 bars.

The chorale is transposed by -5..+6 semitones, played at 70-110 quarter notes per minute,
humanised like the procedural songs, and repeated when shorter than the track.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from sepcore.data.midi import (
    CRASH,
    DRUM_KITS,
    HAT,
    KICK,
    NOTE_NAMES,
    PROGRAMS,
    RIDE,
    SNARE,
    Part,
    Song,
    _fill,
    _Human,
)


@functools.lru_cache(maxsize=1)
def chorale_paths() -> tuple[Path, ...]:
    """The Bach pieces of music21's corpus (chorales are checked for four parts when parsed)."""
    from music21 import corpus

    return tuple(sorted(Path(p) for p in corpus.getComposer("bach") if Path(p).suffix in (".mxl", ".xml", ".krn")))


@functools.lru_cache(maxsize=64)
def read_chorale(path: Path):
    """``(voices, chords, bar_q, pickup_q, length_q, (tonic_pc, mode))`` or ``None`` if not 4 parts.

    ``voices``: four lists of ``(offset_q, duration_q, midi)``; ``chords``: ``(offset_q,
    duration_q, [midi, ...])`` from chordifying the score.
    """
    from music21 import corpus

    score = corpus.parse(str(path))
    if len(score.parts) != 4:
        return None
    voices = []
    for part in score.parts:
        notes = []
        for n in part.flatten().notes:
            for p in n.pitches:
                notes.append((float(n.offset), float(n.quarterLength), int(p.midi)))
        voices.append(notes)
    chords = [(float(c.offset), float(c.quarterLength), sorted(int(p.midi) for p in c.pitches))
              for c in score.chordify().flatten().getElementsByClass("Chord")]
    signatures = score.recurse().getElementsByClass("TimeSignature")
    bar = float(signatures[0].barDuration.quarterLength) if signatures else 4.0
    measures = score.parts[0].getElementsByClass("Measure")
    first = float(measures[0].duration.quarterLength) if measures else bar
    pickup = first if 0 < first < bar else 0.0
    key = score.analyze("key")
    return voices, chords, bar, pickup, float(score.highestTime), (int(key.tonic.pitchClass), str(key.mode))


def _drums(rng, human, bar_q, pickup, total_q, beat_s) -> Part:
    kit = int(rng.choice(DRUM_KITS))
    part = Part("drums", "Drums", kit, is_drum=True)
    cymbal = HAT if rng.random() < 0.7 else RIDE
    beats = int(round(bar_q))
    start = pickup - bar_q if pickup else 0.0        # bar lines fall at pickup + k * bar_q
    bar_index = 0
    while start < total_q:
        for beat in range(beats):
            for half in (0.0, 0.5):
                t = start + beat + half
                if t < 0:
                    continue
                time = human.t(t * beat_s)
                part.add(time, time + 0.1, cymbal, human.v(70 if half == 0 else 50))
                if half == 0 and (beat == 0 or (beats == 4 and beat == 2)):
                    part.add(time, time + 0.1, KICK, human.v(90))
                if half == 0 and ((beats == 4 and beat in (1, 3)) or (beats == 3 and beat in (1, 2))):
                    part.add(time, time + 0.1, SNARE, human.v(80 if beats == 4 else 55))
        if bar_index % 4 == 0 and start >= 0:
            time = human.t(start * beat_s)
            part.add(time, time + 0.5, CRASH, human.v(90))
        if bar_index % 4 == 3 and beats == 4 and start >= 0:
            for position, key, velocity in _fill(rng, start):
                time = human.t(position * beat_s)
                part.add(time, time + 0.1, key, human.v(velocity))
        start += bar_q
        bar_index += 1
    return part


def chorale_song(rng: np.random.Generator, duration: float) -> Song | None:
    """A track arranged from a random Bach chorale, or ``None`` when the pick is not four-part."""
    paths = chorale_paths()
    if not paths:
        return None
    path = paths[int(rng.integers(len(paths)))]
    chorale = read_chorale(path)
    if chorale is None:
        return None
    voices, chords, bar_q, pickup, length_q, (tonic, mode) = chorale
    tempo = float(rng.uniform(70, 110))
    beat_s = 60.0 / tempo
    shift = int(rng.integers(-5, 7))
    total_q = duration / beat_s
    repeats = int(np.ceil(total_q / length_q))
    human = _Human(rng, timing_s=float(rng.uniform(0.004, 0.01)), velocity=float(rng.uniform(4, 8)))
    bass = Part("bass", "Bass", int(rng.choice(PROGRAMS["Bass"])))
    piano = Part("piano", "Piano", int(rng.choice(PROGRAMS["Piano"])))
    guitar_style = "arpeggio" if rng.random() < 0.6 else "strum"
    guitar = Part(f"guitar_{guitar_style}", "Guitar", int(rng.choice(PROGRAMS["Guitar"][:5])))
    for r in range(repeats):
        base = r * length_q
        for k, voice in enumerate(voices):
            target, octave = (bass, -12) if k == 3 else (piano, 0)
            for offset, dur, pitch in voice:
                start = human.t((base + offset) * beat_s)
                target.add(start, start + dur * beat_s * 0.95, pitch + shift + octave, human.v(82 if k == 0 else 72))
        for offset, dur, pitches in chords:
            shape = sorted({48 + (p + shift - 48) % 24 for p in pitches})
            if guitar_style == "arpeggio":
                steps = max(1, int(round(dur / 0.5)))
                for i in range(steps):
                    start = human.t((base + offset + 0.5 * i) * beat_s)
                    guitar.add(start, start + beat_s * 0.9, shape[i % len(shape)], human.v(72 if i % 2 else 82))
            else:
                start = human.t((base + offset) * beat_s)
                for i, pitch in enumerate(shape):
                    guitar.add(start + 0.012 * i, start + dur * beat_s * 0.95, pitch, human.v(80 - 3 * i))
    parts = [_drums(rng, human, bar_q, pickup, repeats * length_q, beat_s), bass, guitar, piano]
    return Song(parts=parts, tempo=tempo, key=f"{NOTE_NAMES[(tonic + shift) % 12]} {mode}",
                source=f"bach:{path.stem}", duration=duration)
