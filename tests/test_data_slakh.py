"""The Slakh reader and the embedded dataset: exact sums, silence rule, manifests, bad layouts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from sepcore.data.midi import compose
from sepcore.data.render import RenderConfig, ensure_dataset, render_dataset
from sepcore.data.slakh import SlakhLayoutError, SlakhMixtures, SlakhStems, load_audio, resolve_root
from sepcore.mixing import set_mixing

TINY = RenderConfig(n_train=2, n_validation=1, n_test=2, duration=7.0, n_workers=1, seed=0)
CHUNK = 16384


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    return ensure_dataset("quick", tmp_path_factory.mktemp("data"), TINY)


def write_track(folder, stems, sample_rate=22050, mix=True):
    """A hand-made Slakh track: ``stems`` maps SNN -> (inst_class, is_drum, audio or None)."""
    (folder / "stems").mkdir(parents=True)
    metadata = {"audio_dir": "stems", "stems": {}}
    total = None
    for stem_id, (inst_class, is_drum, audio) in stems.items():
        metadata["stems"][stem_id] = {"inst_class": inst_class, "is_drum": is_drum, "program_num": 0,
                                      "audio_rendered": audio is not None}
        if audio is not None:
            sf.write(folder / "stems" / f"{stem_id}.wav", audio, sample_rate, subtype="FLOAT")
            mono = audio if audio.ndim == 1 else audio.mean(1)
            total = mono if total is None else total + mono
    if mix:
        sf.write(folder / "mix.wav", total, sample_rate, subtype="FLOAT")
    (folder / "metadata.yaml").write_text(yaml.safe_dump(metadata))


@pytest.fixture
def handmade(tmp_path):
    """Test split: Track00001 with two guitar stems, drums and bass whose chunk 1 is quiet."""
    rng = np.random.default_rng(0)
    n = 3 * CHUNK
    drums = (0.1 * rng.standard_normal(n)).astype(np.float32)
    bass = np.full(n, 0.01, np.float32)                       # energy 1e-4: loud
    bass[CHUNK: 2 * CHUNK] = np.sqrt(1.0e-5)                  # energy 1.0e-5 < 1.5e-5: silent
    bass[2 * CHUNK:] = np.sqrt(2.0e-5)                        # energy 2.0e-5: kept
    guitar_a = (0.05 * rng.standard_normal(n)).astype(np.float32)
    guitar_b = (0.02 * rng.standard_normal(n)).astype(np.float32)
    for split in ("train", "validation", "test"):
        write_track(tmp_path / split / "Track00001", {
            "S00": ("Drums", True, drums), "S01": ("Bass", False, bass),
            "S02": ("Guitar", False, guitar_a), "S03": ("Guitar", False, guitar_b), "S04": ("Piano", False, None),
        })
    return tmp_path, {"drums": drums, "bass": bass, "guitar": guitar_a + guitar_b}


def test_stems_sum_to_mix_bit_for_bit(rendered):
    tracks = sorted(rendered.glob("*/Track*"))
    assert len(tracks) == 5
    for track in tracks:
        mix, rate = sf.read(track / "mix.wav", dtype="int16")
        assert rate == 22050 and mix.shape == (int(7.0 * 22050),)
        stems = [sf.read(p, dtype="int16")[0].astype(np.int64) for p in sorted((track / "stems").glob("S*.wav"))]
        np.testing.assert_array_equal(np.sum(stems, axis=0), mix)
        assert np.abs(mix).max() == pytest.approx(0.89 * 32767, abs=len(stems) + 1)   # peak handling


def test_metadata_follows_slakh(rendered):
    ranges = {"Piano": range(0, 8), "Guitar": range(24, 32), "Bass": range(32, 40)}
    classes = set()
    for track in sorted(rendered.glob("*/Track*")):
        meta = yaml.safe_load((track / "metadata.yaml").read_text())
        assert 70 <= meta["tempo"] <= 160
        for stem_id, stem in meta["stems"].items():
            classes.add(stem["inst_class"])
            assert stem["is_drum"] == (stem["inst_class"] == "Drums")
            if stem["inst_class"] in ranges:
                assert stem["program_num"] in ranges[stem["inst_class"]]
            assert stem["audio_rendered"] == (track / "stems" / f"{stem_id}.wav").is_file()
    assert {"Drums", "Bass", "Guitar", "Piano"} <= classes


def test_reader_chunks_equal_class_sums(handmade):
    root, signals = handmade
    data = SlakhMixtures(root, ("drums", "bass", "guitar"), chunk_length=CHUNK)
    assert [item for item in data._chunks] == [("test/Track00001/0", "Track00001", 0),
                                                ("test/Track00001/32768", "Track00001", 32768)]
    item = data[1]
    for k, name in enumerate(data.classes):
        np.testing.assert_allclose(item["sources"][k].numpy(), signals[name][2 * CHUNK:], atol=1e-6)
    torch.testing.assert_close(item["mixture"], item["sources"].mean(0))
    with set_mixing("sum"):
        summed = SlakhMixtures(root, ("drums", "bass"), chunk_length=CHUNK)
    torch.testing.assert_close(summed[0]["mixture"], summed[0]["sources"].sum(0))


def test_silence_rule_threshold_is_a_parameter(handmade):
    root, _ = handmade
    energies = {0: 1e-4, 1: 1e-5, 2: 2e-5}
    for threshold in (1e-6, 1.5e-5, 5e-5, 1e-3):
        data = SlakhMixtures(root, ("drums", "bass"), chunk_length=CHUNK, silence_threshold=threshold)
        kept = sorted(int(o) // CHUNK for o in data.manifest.offset.unique())
        assert kept == [c for c, e in energies.items() if e >= threshold]
    assert SlakhMixtures(root, ("piano", "drums"), chunk_length=CHUNK).manifest.empty   # no piano audio


def test_manifest_is_deterministic_and_cached(handmade, rendered):
    root, _ = handmade
    first = SlakhMixtures(root, ("drums", "guitar"), chunk_length=CHUNK, silence_threshold=0)
    assert (root / "manifests").is_dir()
    second = SlakhMixtures(root, ("drums", "guitar"), chunk_length=CHUNK, silence_threshold=0)
    assert first.manifest_hash == second.manifest_hash
    assert list(first.manifest.columns[:6]) == ["id", "track", "class", "offset", "length", "seed"]
    assert first.manifest_hash != SlakhMixtures(root, ("guitar", "drums"), chunk_length=CHUNK, silence_threshold=0).manifest_hash
    full = SlakhMixtures(rendered, ("drums", "bass"), chunk_length=CHUNK, silence_threshold=0)
    subset = SlakhMixtures(rendered, ("drums", "bass"), chunk_length=CHUNK, silence_threshold=0, max_chunks=3)
    again = SlakhMixtures(rendered, ("drums", "bass"), chunk_length=CHUNK, silence_threshold=0, max_chunks=3)
    assert len(subset) == 3 and subset.manifest.equals(again.manifest)
    assert set(subset.manifest.id) <= set(full.manifest.id)
    assert len(full) == 2 * (7 * 22050 // CHUNK)


def test_render_is_deterministic(rendered, tmp_path):
    small = TINY.replace(n_train=0, n_validation=0, n_test=1)
    again = render_dataset(small, tmp_path / "again")
    original = json.loads((rendered / "dataset.json").read_text())
    assert again["tracks"][0]["sha256"] == [t for t in original["tracks"] if t["split"] == "test"][0]["sha256"]
    before = (rendered / "dataset.json").stat().st_mtime_ns
    assert ensure_dataset("quick", rendered.parent, TINY) == rendered                 # cached: no re-render
    assert (rendered / "dataset.json").stat().st_mtime_ns == before
    assert resolve_root("quick", rendered) == rendered                                 # a Slakh root as data_root


def test_stems_dataset_and_crops(handmade):
    root, signals = handmade
    bass = SlakhStems(root, "bass", split="train", segment_length=CHUNK)
    assert bass.manifest.offset.tolist() == [0, 2 * CHUNK]
    np.testing.assert_allclose(bass[1].numpy(), signals["bass"][2 * CHUNK:], atol=1e-6)
    crops = bass.random_crops(6, 1000, torch.Generator().manual_seed(0))
    assert crops.shape == (6, 1000)
    torch.testing.assert_close(crops, bass.random_crops(6, 1000, torch.Generator().manual_seed(0)))
    assert (crops.pow(2).mean(1) >= 1.5e-5).all()
    with pytest.raises(ValueError, match="piano"):
        SlakhStems(root, "piano")


def test_resampling_and_mono_downmix(tmp_path):
    t = np.arange(44100) / 44100
    left, right = np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 440 * t) * 0.5
    sf.write(tmp_path / "x.wav", np.stack([left, right], 1).astype(np.float32), 44100, subtype="FLOAT")
    audio = load_audio(tmp_path / "x.wav", 22050)
    assert audio.shape == (22050,)
    expected = 0.75 * np.sin(2 * np.pi * 440 * np.arange(22050) / 22050)
    np.testing.assert_allclose(audio[500:-500].numpy(), expected[500:-500], atol=2e-3)


def test_bad_layouts_name_path_and_layout(handmade, tmp_path):
    root, _ = handmade
    with pytest.raises(SlakhLayoutError, match=r"nowhere.*TrackNNNNN/metadata.yaml"):
        SlakhMixtures(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    (empty / "train").mkdir(parents=True)
    with pytest.raises(SlakhLayoutError, match=r"empty/test is missing.*Expected"):
        SlakhMixtures(empty)
    (root / "test" / "Track00002").mkdir()
    with pytest.raises(SlakhLayoutError, match=r"Track00002/metadata.yaml is missing"):
        SlakhMixtures(root)
    (root / "test" / "Track00002" / "metadata.yaml").write_text("UUID: x\n")
    with pytest.raises(SlakhLayoutError, match=r"Track00002/metadata.yaml has no 'stems'"):
        SlakhMixtures(root)
    (root / "test" / "Track00002").rename(tmp_path / "moved")
    (root / "test" / "Track00001" / "stems" / "S01.wav").unlink()
    with pytest.raises(SlakhLayoutError, match=r"Track00001/stems/S01.flac\|wav is missing"):
        SlakhMixtures(root)
    (root / "test" / "Track00001" / "stems" / "S01.wav").write_bytes(b"not audio")
    with pytest.raises(OSError, match=r"cannot read audio file .*S01.wav"):
        SlakhMixtures(root)


def test_compose_is_seeded_and_song_like():
    a, b = compose(np.random.default_rng(7), 20.0), compose(np.random.default_rng(7), 20.0)
    assert [p.notes for p in a.parts] == [p.notes for p in b.parts]
    assert 70 <= a.tempo <= 160
    drums = [p for p in a.parts if p.is_drum]
    assert len(drums) == 1 and drums[0].inst_class == "Drums"
    bass = next(p for p in a.parts if p.inst_class == "Bass")
    assert all(28 <= n[2] <= 60 for n in bass.notes)


def test_chorale_bass_is_the_bass_voice_transposed():
    from sepcore.data.corpus import chorale_paths, chorale_song, read_chorale

    song = next(s for s in (chorale_song(np.random.default_rng(i), 20.0) for i in range(10)) if s is not None)
    path = next(p for p in chorale_paths() if p.stem == song.source.split(":")[1])
    bass_voice = [pitch for _, _, pitch in read_chorale(path)[0][3]]
    bass = [pitch for _, _, pitch, _ in next(p for p in song.parts if p.inst_class == "Bass").notes]
    offsets = {b - v for b, v in zip(bass, bass_voice)}
    assert len(offsets) == 1 and -17 <= offsets.pop() <= -6          # one transposition, an octave down


def test_real_slakh_format_flac_44k_stereo(tmp_path):
    """Slakh2100 ships 44.1 kHz FLAC: the reader sums same-class stems, downmixes and resamples."""
    rng = np.random.default_rng(1)
    n = 2 * 2 * CHUNK                                         # two chunks at 22050 Hz
    guitar_a = 0.1 * rng.standard_normal((n, 2))
    guitar_b = 0.1 * rng.standard_normal((n, 1))[:, 0]
    folder = tmp_path / "test" / "Track01877"
    (folder / "stems").mkdir(parents=True)
    sf.write(folder / "stems" / "S00.flac", guitar_a, 44100, subtype="PCM_24")
    sf.write(folder / "stems" / "S03.flac", guitar_b, 44100, subtype="PCM_24")
    sf.write(folder / "mix.flac", 0.5 * (guitar_a.mean(1) + guitar_b), 44100, subtype="PCM_24")
    stems = {"S00": {"inst_class": "Guitar", "is_drum": False, "program_num": 27, "audio_rendered": True},
             "S01": {"inst_class": "Bass", "is_drum": False, "program_num": 33, "audio_rendered": False},
             "S03": {"inst_class": "Guitar", "is_drum": False, "program_num": 29, "audio_rendered": True}}
    (folder / "metadata.yaml").write_text(yaml.safe_dump({"audio_dir": "stems", "stems": stems}))
    data = SlakhMixtures(tmp_path, ("guitar",), chunk_length=CHUNK)
    assert len(data) == 2
    import torchaudio.functional as AF

    expected = AF.resample(torch.from_numpy((guitar_a.mean(1) + guitar_b).astype(np.float32)), 44100, 22050)
    torch.testing.assert_close(data[1]["sources"][0], expected[CHUNK: 2 * CHUNK], atol=1e-5, rtol=0)


def test_an_unknown_class_is_an_error_not_an_empty_dataset(handmade):
    root, _ = handmade
    with pytest.raises(ValueError, match=r"class \['violin'\]"):
        SlakhMixtures(root, ("drums", "violin"), chunk_length=CHUNK)


def test_a_stem_rewritten_within_the_same_second_refreshes_the_manifest(handmade):
    import os

    from sepcore.data.slakh import folder_fingerprint

    root, _ = handmade
    track = root / "test" / "Track00001"
    before = folder_fingerprint([track])
    stem = next((track / "stems").iterdir())
    stat = stem.stat()
    os.utime(stem, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1000))      # one microsecond later
    assert folder_fingerprint([track]) != before
