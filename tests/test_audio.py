"""Reading and writing audio: stated conversions, clear rejections, atomic outputs."""

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from sepcore.audio import (
    AudioError,
    check_signal,
    load_audio,
    resample,
    to_mono,
    write_outputs,
    write_wav,
)

RATE = 8000


def tone(seconds=1.0, freq=220.0, rate=RATE, amplitude=0.5):
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_mono_file_round_trips_exactly(tmp_path):
    x = tone()
    path = write_wav(tmp_path / "x.wav", torch.from_numpy(x), RATE)
    audio = load_audio(path)
    assert audio.sample_rate == RATE and audio.notes == []
    assert torch.equal(audio.samples, torch.from_numpy(x))               # 32-bit float WAV is lossless


def test_stereo_is_downmixed_by_the_mean_of_channels(tmp_path):
    left, right = tone(freq=220), tone(freq=330, amplitude=0.2)
    soundfile.write(tmp_path / "st.wav", np.stack([left, right], axis=1), RATE, subtype="FLOAT")
    audio = load_audio(tmp_path / "st.wav")
    assert audio.original_channels == 2 and "mean of the channels" in audio.notes[0]
    assert torch.allclose(audio.samples, torch.from_numpy((left + right) / 2), atol=1e-7)
    assert torch.equal(to_mono(torch.ones(3, 5) * torch.arange(3.0)[:, None]), torch.ones(5))


def test_other_rates_are_resampled_and_stated(tmp_path):
    soundfile.write(tmp_path / "hi.wav", tone(rate=16000, freq=440), 16000, subtype="FLOAT")
    audio = load_audio(tmp_path / "hi.wav", sample_rate=RATE)
    assert audio.sample_rate == RATE and audio.original_sample_rate == 16000
    assert audio.samples.shape == (RATE,) and "resampled from 16000 Hz to 8000 Hz" in audio.notes[0]
    # a 440 Hz tone is below both Nyquist rates: resampling preserves it (away from the edges)
    assert np.allclose(audio.samples.numpy()[100:-100], tone(freq=440)[100:-100], atol=1e-2)
    assert torch.equal(resample(torch.ones(10), RATE, RATE), torch.ones(10))


@pytest.mark.parametrize("samples,match", [
    (np.zeros(RATE, np.float32), "silent"),
    (np.full(RATE, 1e-6, np.float32), "silent"),                       # -120 dBFS
    (tone(seconds=0.1), "at least 0.25 s"),
])
def test_silence_and_too_short_files_are_rejected(tmp_path, samples, match):
    soundfile.write(tmp_path / "bad.wav", samples, RATE, subtype="FLOAT")
    with pytest.raises(AudioError, match=match) as error:
        load_audio(tmp_path / "bad.wav")
    assert "bad.wav" in str(error.value)                               # the message names the file


def test_nan_and_inf_are_rejected(tmp_path):
    samples = tone()
    samples[10], samples[20] = np.nan, np.inf
    soundfile.write(tmp_path / "nan.wav", samples, RATE, subtype="FLOAT")
    with pytest.raises(AudioError, match="2 NaN or infinite"):
        load_audio(tmp_path / "nan.wav")
    with pytest.raises(AudioError, match="NaN"):
        check_signal(torch.tensor([0.5, math.inf] * 2000), RATE)


def test_missing_and_unreadable_files_are_explained(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        load_audio(tmp_path / "missing.wav")
    (tmp_path / "song.mp4").write_bytes(b"this is not audio" * 100)
    with pytest.raises(AudioError, match="could not be read as audio.*ffmpeg -i song.mp4 song.wav"):
        load_audio(tmp_path / "song.mp4")


def test_unwritable_output_folder_gives_a_clear_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(AudioError, match="cannot write to the output folder.*--out"):
        write_outputs(blocker / "stems", {"bass": torch.zeros(10)}, RATE)


def test_a_failure_leaves_no_partial_output(tmp_path):
    good = torch.from_numpy(tone())
    out = tmp_path / "stems"
    with pytest.raises(AudioError, match="mono"):
        write_outputs(out, {"drums": good, "bass": torch.zeros(2, 10)}, RATE, settings={"a": 1})
    assert not out.exists() and list(tmp_path.iterdir()) == []        # no folder, no drums.wav, no temp file
    written = write_outputs(out, {"drums": good, "bass": -good}, RATE, settings={"a": 1})
    assert sorted(p.name for p in out.iterdir()) == ["bass.wav", "drums.wav", "settings.json"]
    assert [Path(p).name for p in written] == ["drums.wav", "bass.wav", "settings.json"]


def test_float_wavs_carry_no_timestamp(tmp_path):
    """libsndfile's float WAVs hold a PEAK chunk with the time of writing; ours hold none."""
    x = torch.from_numpy(tone())
    first = write_wav(tmp_path / "a.wav", x, RATE).read_bytes()
    second = write_wav(tmp_path / "b.wav", x, RATE).read_bytes()
    assert first == second and b"PEAK" not in first
