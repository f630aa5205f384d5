"""What sepcore promises about your files: the input is never replaced, outputs are kept unless
--overwrite, stale stems go, interrupts and internal errors leave no partial output and one line."""

import numpy as np
import pytest
import soundfile

from sepcore import cli
from sepcore.cli import main

RATE = 8000


@pytest.fixture
def folder(tmp_path):
    t = np.arange(RATE) / RATE
    x = (0.3 * np.sin(2 * np.pi * 60 * t)).astype(np.float32)
    soundfile.write(tmp_path / "bass.wav", x, RATE, subtype="FLOAT")
    return tmp_path


def run(folder, *extra, sources=("drums", "bass"), out=None):
    return main(["separate", str(folder / "bass.wav"), "--method", "average", "--sources", *sources,
                 "--out", str(out or folder / "stems"), "--quiet", *extra])


CASES = [
    # (name, setup, arguments, expected exit code, expected message)
    ("output named like the input, in its folder", None, dict(out="."), 2, "would replace the input"),
    ("existing outputs without --overwrite", "previous", {}, 2, "--overwrite"),
]


@pytest.mark.parametrize("name, setup, kwargs, code, message", CASES, ids=[c[0] for c in CASES])
def test_refusals_are_one_line_and_change_nothing(folder, capsys, name, setup, kwargs, code, message):
    if setup == "previous":
        assert run(folder) == 0
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    out = folder if kwargs.get("out") == "." else None
    assert run(folder, out=out) == code
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    after = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert after == before


def test_overwrite_replaces_and_removes_stale_stems(folder):
    assert run(folder, sources=("drums", "bass", "guitar")) == 0
    assert (folder / "stems" / "guitar.wav").exists()
    assert run(folder, "--overwrite") == 0
    assert sorted(p.name for p in (folder / "stems").iterdir()) == ["bass.wav", "drums.wav", "settings.json"]


def test_interrupt_and_internal_errors_leave_nothing_and_print_one_line(folder, capsys, monkeypatch):
    import sepcore.api

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sepcore.api, "separate_with_info", interrupted)
    assert run(folder) == 130
    assert not (folder / "stems").exists()
    assert capsys.readouterr().err.strip() == "sepcore: interrupted; nothing was written"

    def broken(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(sepcore.api, "separate_with_info", broken)
    assert run(folder) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("sepcore: internal error: ZeroDivisionError: boom") and len(err.splitlines()) == 1
    assert not (folder / "stems").exists()
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "separate", str(folder / "bass.wav"), "--out", str(folder / "stems"), "--quiet"])


def test_sigterm_is_turned_into_an_interrupt():
    with pytest.raises(KeyboardInterrupt):
        cli._terminate(15, None)


def test_notes_tell_of_truncation_range_and_resampling(tmp_path):
    from sepcore.audio import load_audio

    t = np.arange(RATE) / RATE
    loud = (3.0 * np.sin(2 * np.pi * 60 * t)).astype(np.float32)
    soundfile.write(tmp_path / "loud.wav", loud, RATE, subtype="FLOAT")
    assert any("beyond full scale" in note for note in load_audio(tmp_path / "loud.wav").notes)
    whole = (tmp_path / "loud.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(whole[: len(whole) // 2])
    audio = load_audio(tmp_path / "cut.wav")
    assert any("truncated" in note for note in audio.notes) and audio.samples.shape[0] < RATE
    assert not any("truncated" in note for note in load_audio(tmp_path / "loud.wav").notes)
    soundfile.write(tmp_path / "hi.wav", (0.3 * np.sin(2 * np.pi * 60 * np.arange(44100) / 44100)).astype(np.float32),
                    44100, subtype="FLOAT")
    assert main(["separate", str(tmp_path / "hi.wav"), "--method", "hpss", "--out", str(tmp_path / "o"), "--quiet"]) == 0
    import json

    notes = json.loads((tmp_path / "o" / "settings.json").read_text())["conversions"]
    assert any("nothing above 11 kHz" in note for note in notes)


CLI_CASES = [
    # (case, extra arguments, expected exit code, expected message fragment)
    ("chunk-seconds inf", ["--chunk-seconds", "inf"], 2, "chunk_seconds"),
    ("chunk-seconds negative", ["--chunk-seconds", "-1"], 2, "chunk_seconds"),
    ("overlap negative", ["--overlap-seconds", "-1"], 2, "overlap_seconds"),
    ("knob out of range", ["--method", "lass", "--knob", "n_beams=0"], 2, "must lie in"),
    ("knob NaN", ["--method", "latent-bayes", "--knob", "sigma=nan"], 2, "finite"),
    ("knob not a number", ["--method", "latent-bayes", "--knob", "n_candidates=many"], 2, "n_candidates"),
    ("knob without a value", ["--method", "lass", "--knob", "n_beams"], 2, "NAME=VALUE"),
    ("unknown knob", ["--method", "hpss", "--knob", "power=2"], 2, "no knob"),
    ("unknown method", ["--method", "magic"], 2, "unknown method"),
    ("duplicate sources", ["--sources", "bass", "bass"], 2, "distinct"),
    ("checkpoint for a method without one", ["--method", "hpss", "--checkpoint", "x.pt"], 2, "uses no checkpoint"),
    ("missing checkpoint", ["--method", "lass", "--checkpoint", "/nonexistent/folder"], 2, "does not exist"),
]


@pytest.mark.parametrize("case, extra, code, message", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_settings_are_one_line_errors(folder, capsys, case, extra, code, message):
    assert run(folder, *extra) == code
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (folder / "stems").exists()


def test_a_one_sample_input_is_padded_for_the_method_and_cropped_back(tmp_path):
    import json

    soundfile.write(tmp_path / "one.wav", np.array([0.5], np.float32), 22050, subtype="FLOAT")
    assert main(["separate", str(tmp_path / "one.wav"), "--min-seconds", "0", "--method", "hpss", "--out",
                 str(tmp_path / "o"), "--quiet"]) == 0
    data, _ = soundfile.read(tmp_path / "o" / "drums.wav")
    assert np.asarray(data).size == 1
    assert any("zero-padded" in n for n in json.loads((tmp_path / "o" / "settings.json").read_text())["conversions"])


def test_a_new_output_folder_appears_whole_or_not_at_all(tmp_path, monkeypatch):
    import sepcore.audio as audio

    stems = {"a": np.zeros(100, np.float32), "b": np.zeros(100, np.float32)}
    written = audio.write_outputs(tmp_path / "new", stems, RATE, settings={"x": 1})
    assert sorted(p.name for p in written) == ["a.wav", "b.wav", "settings.json"]
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["a.wav", "b.wav", "settings.json"]
    calls = []
    original = audio._write_wav_file

    def failing(path, samples, sample_rate, subtype):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        original(path, samples, sample_rate, subtype)

    monkeypatch.setattr(audio, "_write_wav_file", failing)
    with pytest.raises(OSError):
        audio.write_outputs(tmp_path / "other", stems, RATE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]         # no folder, no staging left behind


def test_argparse_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["separate", "x.wav", "--out", "o", "--seed", "1e23"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sepcore: error:") and len(err.splitlines()) == 1
