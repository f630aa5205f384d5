"""Procedural, song-like MIDI for the embedded Slakh-format dataset.

Slakh2100 renders Lakh MIDI songs with sample-based instruments. We cannot ship Lakh, so each
track is composed here from a seed, with the structure a pop/rock arrangement has:

- a tempo drawn in 70-160 BPM, a key (12 roots, major or minor) and a 4/4 metre;
- a song form of 4-bar sections (intro, verse, chorus, bridge, ...), each with a chord
  progression taken from a list of common progressions in scale degrees;
- **drums** on GM channel 10: a groove per section (rock, pop 16ths, funk, half-time, shuffle,
  disco, jazz ride, brush), crashes at section starts and a fill in each section's last bar;
- **bass** following the harmony (roots, root-fifth-octave, eighth pulses, walking lines);
- **guitar** strums (staggered strokes), arpeggios, power-chord riffs or a pentatonic lead;
- **piano** comping (block chords on a rhythm, broken chords, two-hand voicings);
- sometimes an extra string pad or organ (Slakh tracks have more than four classes).

Velocities and onsets are humanised (Gaussian jitter). GM programs vary within each class as
in Slakh (its classes group the GM program families, e.g. programs 32-39 are "Bass").

A song is a list of :class:`Part`; :func:`compose` is a pure function of its
``numpy.random.Generator``. Real composed material (Bach chorales) comes from
:mod:`sepcore.data.corpus`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Slakh's class names (``inst_class`` in metadata.yaml) and the GM programs we draw per class.
PROGRAMS = {
    "Piano": (0, 1, 2, 4, 5),            # grand, bright, electric grand, e-piano 1/2
    "Guitar": (24, 25, 26, 27, 28, 29, 30),  # nylon, steel, jazz, clean, muted, overdrive, distortion
    "Bass": (32, 33, 34, 35, 36, 38, 39),    # acoustic, finger, pick, fretless, slap, synth 1/2
    "Strings": (48, 49, 50),             # string ensembles, synth strings
    "Organ": (16, 17, 18, 19),           # drawbar, percussive, rock, church
}
#: Drum kits (bank 128 presets) present in FluidR3_GM: standard, room, power, electronic, TR-808, jazz, brush.
DRUM_KITS = (0, 8, 16, 24, 25, 32, 40)

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
# Progressions in scale degrees (0 = tonic); one chord per bar.
PROGRESSIONS = {
    "major": [(0, 4, 5, 3), (5, 3, 0, 4), (0, 5, 3, 4), (1, 4, 0, 0), (0, 3, 4, 3), (0, 3, 0, 4),
              (3, 0, 4, 5), (0, 2, 3, 4)],
    "minor": [(0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 5, 3, 4), (0, 3, 6, 2), (5, 6, 0, 0)],
}
FORMS = [
    ("intro", "verse", "chorus", "verse", "chorus", "bridge", "chorus", "outro"),
    ("intro", "verse", "verse", "chorus", "bridge", "chorus", "chorus", "outro"),
    ("verse", "chorus", "verse", "chorus", "chorus", "outro"),
]
DRUM_STYLES = ("rock", "pop16", "funk", "halftime", "shuffle", "disco", "jazz", "brush")
# GM drum keys.
KICK, SNARE, SIDESTICK, CLAP, HAT, PEDAL_HAT, OPEN_HAT, CRASH, RIDE, RIDE_BELL = 36, 38, 37, 39, 42, 44, 46, 49, 51, 53
TOMS = (50, 48, 47, 45, 43, 41)


@dataclass
class Part:
    """One instrument of a song: Slakh class, GM program, drum flag and notes.

    ``notes`` rows are ``(start_s, end_s, pitch, velocity)``.
    """

    name: str
    inst_class: str
    program: int
    is_drum: bool = False
    notes: list[tuple[float, float, int, int]] = field(default_factory=list)

    def add(self, start: float, end: float, pitch: int, velocity: float) -> None:
        velocity = int(np.clip(round(velocity), 1, 127))
        if end > start and 0 <= pitch <= 127:
            self.notes.append((max(0.0, float(start)), float(end), int(pitch), velocity))


@dataclass
class Song:
    """A composed track: its parts and the musical facts recorded in metadata.yaml."""

    parts: list[Part]
    tempo: float
    key: str
    source: str
    duration: float


NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


class _Human:
    """Timing and velocity humanisation: Gaussian onset jitter (seconds) and velocity jitter."""

    def __init__(self, rng: np.random.Generator, timing_s: float, velocity: float):
        self.rng, self.timing_s, self.velocity = rng, timing_s, velocity

    def t(self, time: float) -> float:
        return time + self.rng.normal(0.0, self.timing_s)

    def v(self, velocity: float) -> float:
        return velocity + self.rng.normal(0.0, self.velocity)


def chord_pitches(root_pc: int, scale: tuple[int, ...], degree: int, n_notes: int = 3) -> list[int]:
    """Pitch classes (as offsets from C) of the diatonic triad/seventh on ``degree``."""
    return [(root_pc + scale[(degree + 2 * i) % 7] + 12 * ((degree + 2 * i) // 7)) for i in range(n_notes)]


def voice(pitches: list[int], low: int, high: int) -> list[int]:
    """Place pitch classes in ``[low, high]`` in close position starting above ``low``."""
    out, floor = [], low
    for p in pitches:
        q = floor + ((p - floor) % 12)
        if q > high:
            q -= 12
        out.append(q)
        floor = q + 1
    return sorted(out)


# ----------------------------------------------------------------------------- drums

def _groove(style: str, rng: np.random.Generator) -> dict[int, list[tuple[float, float]]]:
    """One bar of a groove: ``{drum_key: [(beat_position, velocity), ...]}`` in quarter notes."""
    eighths = [i * 0.5 for i in range(8)]
    sixteenths = [i * 0.25 for i in range(16)]
    swing = [0, 2 / 3, 1, 1 + 2 / 3, 2, 2 + 2 / 3, 3, 3 + 2 / 3]
    hats = HAT if rng.random() < 0.75 else RIDE
    g: dict[int, list[tuple[float, float]]] = {}
    if style == "rock":
        g[KICK] = [(0, 100), (2, 95)] + ([(2.5, 80)] if rng.random() < 0.5 else []) + ([(1.5, 75)] if rng.random() < 0.3 else [])
        g[SNARE] = [(1, 100), (3, 100)]
        g[hats] = [(b, 85 if b % 1 == 0 else 65) for b in eighths]
    elif style == "pop16":
        g[KICK] = [(0, 100), (0.75, 70), (2, 95), (2.5, 80)]
        g[SNARE] = [(1, 100), (3, 100)]
        g[HAT] = [(b, 80 if b % 0.5 == 0 else 55) for b in sixteenths]
    elif style == "funk":
        g[KICK] = [(0, 105), (0.75, 80), (1.5, 85), (2.5, 90), (3.25, 70)]
        g[SNARE] = [(1, 105), (3, 105), (1.75, 35), (2.25, 30), (3.75, 35)]
        g[HAT] = [(b, 75 if b % 0.5 == 0 else 50) for b in sixteenths if b not in (1.5,)]
        g[OPEN_HAT] = [(1.5, 70)]
    elif style == "halftime":
        g[KICK] = [(0, 100), (1.5, 75), (3.5, 70)]
        g[SNARE] = [(2, 105)]
        g[hats] = [(b, 80 if b % 1 == 0 else 60) for b in eighths]
    elif style == "shuffle":
        g[KICK] = [(0, 100), (2, 90), (2 + 2 / 3, 70)]
        g[SNARE] = [(1, 100), (3, 100)]
        g[hats] = [(b, 85 if b % 1 == 0 else 55) for b in swing]
    elif style == "disco":
        g[KICK] = [(b, 100) for b in range(4)]
        g[CLAP if rng.random() < 0.5 else SNARE] = [(1, 95), (3, 95)]
        g[HAT] = [(b, 60) for b in (0, 1, 2, 3)]
        g[OPEN_HAT] = [(b + 0.5, 80) for b in range(4)]
    elif style in ("jazz", "brush"):
        g[RIDE] = [(0, 85), (1, 85), (1 + 2 / 3, 60), (2, 85), (3, 85), (3 + 2 / 3, 60)]
        g[PEDAL_HAT] = [(1, 70), (3, 70)]
        g[KICK] = [(0, 55)] + ([(2.5, 45)] if rng.random() < 0.5 else [])
        g[SIDESTICK if style == "jazz" else SNARE] = [(3, 55)] + ([(1 + 2 / 3, 35)] if rng.random() < 0.5 else [])
    else:
        raise ValueError(f"unknown drum style {style!r}; choose from {DRUM_STYLES}")
    return g


def _fill(rng: np.random.Generator, bar_start_beat: float) -> list[tuple[float, int, float]]:
    """A fill over the last 1 or 2 beats of a bar: snare and tom runs in 16ths or 8th triplets."""
    beats = 1 if rng.random() < 0.5 else 2
    step = 0.25 if rng.random() < 0.7 else 1 / 3
    start = bar_start_beat + 4 - beats
    n = int(round(beats / step))
    toms = list(TOMS[: rng.integers(3, 7)])
    hits = []
    for i in range(n):
        if rng.random() < 0.4:
            key = SNARE
        else:
            key = toms[min(len(toms) - 1, i * len(toms) // n)]
        hits.append((start + i * step, key, 70 + 40 * i / n))
    return hits


def drum_part(rng, sections, beat_s, human, style) -> Part:
    kit = int(rng.choice(DRUM_KITS[:5] if style not in ("jazz", "brush") else (32, 40)))
    part = Part("drums", "Drums", kit, is_drum=True)
    for s_index, (name, bars, first_bar) in enumerate(sections):
        if name == "intro" and len(sections) > 2 and rng.random() < 0.4:
            continue  # drums often enter after the intro
        section_style = style if name != "bridge" or rng.random() < 0.5 else rng.choice(("halftime", style))
        groove = _groove(section_style, rng)
        for b in range(bars):
            bar_beat = (first_bar + b) * 4
            fill_bar = b == bars - 1 and s_index < len(sections) - 1 and rng.random() < 0.85
            for key, hits in groove.items():
                for position, velocity in hits:
                    if fill_bar and position >= 4 - 2 and key not in (KICK,):
                        continue
                    if key in (HAT, OPEN_HAT) and rng.random() < 0.05:
                        continue  # occasional dropped hat: variation
                    t = human.t((bar_beat + position) * beat_s)
                    part.add(t, t + 0.1, key, human.v(velocity * (1.08 if name == "chorus" else 1.0)))
            if b == 0 and (name in ("chorus", "bridge") or first_bar == 0 or rng.random() < 0.3):
                t = human.t(bar_beat * beat_s)
                part.add(t, t + 0.5, CRASH, human.v(100))
            if fill_bar:
                for position, key, velocity in _fill(rng, bar_beat):
                    t = human.t(position * beat_s)
                    part.add(t, t + 0.1, key, human.v(velocity))
    return part


# ----------------------------------------------------------------------------- pitched parts

def _section_styles(rng, sections, choices) -> dict[str, str]:
    """A playing style per section name: the song's main style, changed in about a third of sections."""
    main = str(rng.choice(choices))
    return {name: main if rng.random() < 0.65 else str(rng.choice(choices)) for name, _, _ in sections}


def bass_part(rng, sections, chords, beat_s, human, root_pc, scale) -> Part:
    part = Part("bass", "Bass", int(rng.choice(PROGRAMS["Bass"])))
    styles = _section_styles(rng, sections, ("roots", "pulse", "root_fifth", "walking", "syncopated"))
    for name, bars, first_bar in sections:
        if name == "intro" and len(sections) > 2 and rng.random() < 0.5:
            continue
        style = styles[name]
        for b in range(bars):
            bar = first_bar + b
            degree = chords[bar]
            root = 28 + ((root_pc + scale[degree % 7] - 28) % 12)  # E1..D#2
            if root < 33 and rng.random() < 0.5:
                root += 12
            fifth, octave = root + 7, root + 12
            t0 = bar * 4
            if style == "roots":
                notes = [(0, 2, root), (2, 2, root if rng.random() < 0.6 else fifth)]
            elif style == "pulse":
                notes = [(i * 0.5, 0.45, root if i != 7 or rng.random() < 0.7 else fifth) for i in range(8)]
            elif style == "root_fifth":
                notes = [(0, 1, root), (1, 1, fifth), (2, 1, octave), (3, 1, fifth)]
            elif style == "walking":
                next_root = 28 + ((root_pc + scale[chords[min(bar + 1, len(chords) - 1)] % 7] - 28) % 12)
                third = root + (scale[(degree + 2) % 7] - scale[degree % 7]) % 12
                approach = next_root - 1 if rng.random() < 0.5 else next_root + 1
                notes = [(0, 1, root), (1, 1, third), (2, 1, fifth), (3, 1, approach)]
            else:
                notes = [(0, 0.75, root), (0.75, 0.5, root), (1.5, 1, octave if rng.random() < 0.5 else root),
                         (2.5, 0.5, fifth), (3, 0.5, root), (3.5, 0.5, fifth)]
            for position, length, pitch in notes:
                start = human.t((t0 + position) * beat_s)
                part.add(start, start + length * beat_s * 0.92, pitch, human.v(90 if position % 1 == 0 else 75))
    return part


def guitar_part(rng, sections, chords, beat_s, human, root_pc, scale, role: str | None = None) -> Part:
    program = int(rng.choice(PROGRAMS["Guitar"]))
    distorted = program in (29, 30)
    role = role or ("riff" if distorted and rng.random() < 0.6 else rng.choice(("strum", "arpeggio", "strum", "lead")))
    part = Part(f"guitar_{role}", "Guitar", program)
    strum_rhythm = [(0, 1), (1, -1), (1.5, -1), (2.5, -1), (3, 1), (3.5, -1)] if rng.random() < 0.5 else \
        [(0, 1), (0.5, -1), (1, 1), (1.5, -1), (2, 1), (2.5, -1), (3, 1), (3.5, -1)]
    pentatonic = [root_pc + i for i in ((0, 3, 5, 7, 10) if scale == MINOR else (0, 2, 4, 7, 9))]
    pitch_pool = sorted(p + 12 * o for p in pentatonic for o in range(4, 7) if 55 <= p + 12 * o <= 84)
    for name, bars, first_bar in sections:
        if name in ("intro", "outro") and len(sections) > 2 and rng.random() < 0.3:
            continue
        for b in range(bars):
            bar = first_bar + b
            degree = chords[bar]
            pcs = chord_pitches(root_pc, scale, degree, 3)
            t0 = bar * 4
            if role == "strum":
                shape = voice(pcs + [pcs[0] + 12, pcs[1] + 12], 45, 76)
                for position, direction in strum_rhythm:
                    order = shape if direction > 0 else shape[::-1]
                    start = human.t((t0 + position) * beat_s)
                    stroke = rng.uniform(0.008, 0.02)
                    accent = 95 if position % 1 == 0 else 72
                    for i, pitch in enumerate(order):
                        part.add(start + i * stroke, start + 0.45 * beat_s * 2, pitch, human.v(accent - 4 * i))
            elif role == "arpeggio":
                shape = voice(pcs + [pcs[0] + 12], 48, 79)
                pattern = [0, 1, 2, 3, 2, 1, 2, 3] if rng.random() < 0.5 else [0, 2, 1, 3, 0, 2, 1, 3]
                for i, index in enumerate(pattern):
                    start = human.t((t0 + i * 0.5) * beat_s)
                    part.add(start, start + beat_s, shape[index % len(shape)], human.v(80 if i % 2 == 0 else 68))
            elif role == "riff":
                low = 40 + ((root_pc + scale[degree % 7] - 40) % 12)
                rhythm = [0, 0.5, 1, 1.5, 2.5, 3, 3.5] if rng.random() < 0.5 else [0, 0.5, 1.5, 2, 2.5, 3.5]
                for position in rhythm:
                    start = human.t((t0 + position) * beat_s)
                    for pitch in (low, low + 7, low + 12):
                        part.add(start, start + 0.4 * beat_s, pitch, human.v(100))
            else:  # lead: a pentatonic line of 8ths and quarters, stepwise with occasional leaps
                index = int(rng.integers(len(pitch_pool)))
                position = 0.0
                while position < 4:
                    length = float(rng.choice((0.5, 0.5, 1.0, 1.5)))
                    if rng.random() < 0.85:
                        start = human.t((t0 + position) * beat_s)
                        part.add(start, start + length * beat_s * 0.95, pitch_pool[index], human.v(90))
                    index = int(np.clip(index + rng.choice((-2, -1, -1, 1, 1, 2, 3)), 0, len(pitch_pool) - 1))
                    position += length
    return part


def piano_part(rng, sections, chords, beat_s, human, root_pc, scale) -> Part:
    part = Part("piano", "Piano", int(rng.choice(PROGRAMS["Piano"])))
    styles = _section_styles(rng, sections, ("block", "broken", "two_hands", "offbeat"))
    for name, bars, first_bar in sections:
        style = styles[name]
        for b in range(bars):
            bar = first_bar + b
            degree = chords[bar]
            n_notes = 4 if rng.random() < 0.4 else 3
            right = voice(chord_pitches(root_pc, scale, degree, n_notes), 57, 79)
            left = 36 + ((root_pc + scale[degree % 7] - 36) % 12)
            t0 = bar * 4
            if style == "block":
                events = [(0, 2, right), (2, 1.5, right)] if rng.random() < 0.5 else [(0, 1.5, right), (1.5, 2.5, right)]
                events = events + [(0, 4, [left])]
            elif style == "broken":
                seq = [left, right[0], right[1], right[2 % len(right)], left + 12, right[2 % len(right)], right[1], right[0]]
                events = [(i * 0.5, 0.9, [p]) for i, p in enumerate(seq)]
            elif style == "two_hands":
                events = [(0, 1, [left, left + 12]), (1, 1, right), (2, 1, [left + 7]), (3, 1, right)]
            else:
                events = [(0, 2, [left])] + [(p, 0.4, right) for p in (0.5, 1.5, 2.5, 3.5)]
            for position, length, pitches in events:
                start = human.t((t0 + position) * beat_s)
                for pitch in pitches:
                    part.add(start + rng.normal(0, 0.004), start + length * beat_s * 0.95, pitch,
                             human.v(78 if name != "chorus" else 88))
    return part


def pad_part(rng, sections, chords, beat_s, human, root_pc, scale) -> Part:
    inst_class = "Strings" if rng.random() < 0.6 else "Organ"
    part = Part(inst_class.lower(), inst_class, int(rng.choice(PROGRAMS[inst_class])))
    for name, bars, first_bar in sections:
        if name not in ("chorus", "bridge", "outro") and rng.random() < 0.5:
            continue
        for b in range(bars):
            bar = first_bar + b
            for pitch in voice(chord_pitches(root_pc, scale, chords[bar], 3), 53, 74):
                part.add(bar * 4 * beat_s, (bar + 1) * 4 * beat_s - 0.02, pitch, human.v(60))
    return part


# ----------------------------------------------------------------------------- songs

def plan_sections(rng: np.random.Generator, n_bars: int) -> list[tuple[str, int, int]]:
    """Sections ``(name, n_bars, first_bar)`` of 4 bars each (2 for a short tail) covering ``n_bars``."""
    form = list(FORMS[int(rng.integers(len(FORMS)))])
    sections, bar, i = [], 0, 0
    while bar < n_bars:
        name = form[i] if i < len(form) else ("chorus" if i % 2 else "verse")
        length = min(4, n_bars - bar)
        sections.append((name, length, bar))
        bar += length
        i += 1
    return sections


def compose(rng: np.random.Generator, duration: float, extra_parts: bool = True) -> Song:
    """A procedural song of at least ``duration`` seconds (its last bar may ring past it).

    Returns:
        :class:`Song` with one part per instrument (drums, bass, one or two guitars, piano,
        sometimes a pad); the renderer cuts audio at ``duration``.
    """
    tempo = float(rng.uniform(70, 160))
    beat_s = 60.0 / tempo
    n_bars = int(np.ceil(duration / (4 * beat_s)))
    mode = "major" if rng.random() < 0.6 else "minor"
    scale = MAJOR if mode == "major" else MINOR
    root_pc = int(rng.integers(12))
    sections = plan_sections(rng, n_bars)
    progressions = {name: PROGRESSIONS[mode][int(rng.integers(len(PROGRESSIONS[mode])))] for name, _, _ in sections}
    chords = []
    for name, bars, _ in sections:
        chords += [progressions[name][b % 4] for b in range(bars)]
    human = _Human(rng, timing_s=float(rng.uniform(0.004, 0.012)), velocity=float(rng.uniform(4, 10)))
    style = str(rng.choice(DRUM_STYLES))
    if style in ("jazz", "brush") and tempo > 140:
        style = "shuffle"
    parts = [
        drum_part(rng, sections, beat_s, human, style),
        bass_part(rng, sections, chords, beat_s, human, root_pc, scale),
        guitar_part(rng, sections, chords, beat_s, human, root_pc, scale),
        piano_part(rng, sections, chords, beat_s, human, root_pc, scale),
    ]
    if extra_parts and rng.random() < 0.35:
        second = "lead" if parts[2].name != "guitar_lead" else "arpeggio"
        parts.append(guitar_part(rng, sections, chords, beat_s, human, root_pc, scale, role=second))
    if extra_parts and rng.random() < 0.3:
        parts.append(pad_part(rng, sections, chords, beat_s, human, root_pc, scale))
    key = f"{NOTE_NAMES[root_pc]} {mode}"
    return Song(parts=parts, tempo=tempo, key=key, source=f"procedural:{style}", duration=duration)
