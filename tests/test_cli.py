"""The sepcore command: stems and settings on disk, determinism, list-methods, info, errors."""

import json
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest
import soundfile
import torch

from sepcore import api
from sepcore.checkpoints import save_checkpoint
from sepcore.cli import main
from sepcore.profiles import ProfileConfig
from sepcore.separation.naive import average
from sepcore.utils import REPO_ROOT

RATE = 8000


@pytest.fixture
def mixture_file(tmp_path):
    t = np.arange(2 * RATE) / RATE
    x = (0.3 * np.sin(2 * np.pi * 60 * t) + 0.3 * np.sin(2 * np.pi * 1500 * t)).astype(np.float32)
    path = tmp_path / "mix.wav"
    soundfile.write(path, x, RATE, subtype="FLOAT")
    return path, x


def read(path):
    data, rate = soundfile.read(path, dtype="float32")
    return data, rate


def test_separate_writes_one_wav_per_source_and_the_settings(mixture_file, tmp_path):
    path, x = mixture_file
    out = tmp_path / "stems"
    assert main(["separate", str(path), "--method", "average", "--sources", "drums", "bass", "--out", str(out), "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["bass.wav", "drums.wav", "settings.json"]
    for name in ("drums", "bass"):
        data, rate = read(out / f"{name}.wav")
        assert rate == RATE and np.array_equal(data, x)            # mean mixing: the equal share is the mixture
    settings = json.loads((out / "settings.json").read_text())
    assert settings["method"] == "average" and settings["sources"] == ["drums", "bass"]
    assert settings["seed"] == 0 and settings["conversions"] == [] and settings["n_samples"] == len(x)
    assert settings["command"].startswith("sepcore separate")


def test_stereo_input_at_another_rate_is_converted_and_stated(tmp_path):
    t = np.arange(RATE) / RATE
    stereo = np.stack([0.4 * np.sin(2 * np.pi * 50 * t), 0.2 * np.sin(2 * np.pi * 2000 * t)], axis=1)
    soundfile.write(tmp_path / "st.wav", stereo.astype(np.float32), RATE, subtype="FLOAT")
    out = tmp_path / "stems"
    code = main(["separate", str(tmp_path / "st.wav"), "--method", "crossover", "--knob", "cutoff_hz=300",
                 "--out", str(out), "--quiet"])
    assert code == 0
    settings = json.loads((out / "settings.json").read_text())
    assert settings["knobs"]["cutoff_hz"] == 300.0 and settings["input_channels"] == 2
    assert "mean of the channels" in settings["conversions"][0]
    bass, _ = read(out / "bass.wav")
    drums, _ = read(out / "drums.wav")
    # the mono mixture is the channel mean; the crossover gives the 50 Hz channel to bass (x2 undoes mean mixing)
    inner = slice(2048, -2048)
    assert np.allclose(bass[inner], 2 * 0.5 * stereo[inner, 0], atol=5e-3)
    assert np.allclose(drums[inner], 2 * 0.5 * stereo[inner, 1], atol=5e-3)


def _noisy(sources, *, seed=0, scale: float = 0.05, **_unused):
    generator = torch.Generator().manual_seed(seed)
    return lambda m: average(m, len(sources)) + scale * torch.randn(len(sources), m.shape[-1], generator=generator)


def test_same_seed_gives_byte_identical_stems(mixture_file, tmp_path):
    api.register_method("noisy-cli", _noisy, description="test", needs_checkpoint=False, chunk_seconds=0.5)
    try:
        path, _ = mixture_file
        outs = {}
        for label, seed in (("a", 7), ("b", 7), ("c", 8)):
            outs[label] = tmp_path / label
            assert main(["separate", str(path), "--method", "noisy-cli", "--seed", str(seed), "--out", str(outs[label]), "--quiet"]) == 0
        for name in ("drums.wav", "bass.wav"):
            assert (outs["a"] / name).read_bytes() == (outs["b"] / name).read_bytes()
            assert (outs["a"] / name).read_bytes() != (outs["c"] / name).read_bytes()
    finally:
        api._REGISTRY.pop("noisy-cli", None)


def test_user_errors_exit_2_with_one_line_and_leave_no_output(mixture_file, tmp_path, capsys):
    path, _ = mixture_file
    (tmp_path / "broken.wav").write_bytes(b"RIFF garbage")
    cases = [
        (["separate", str(tmp_path / "broken.wav"), "--out", str(tmp_path / "o1")], "could not be read as audio"),
        (["separate", str(path), "--method", "nope", "--out", str(tmp_path / "o2")], "unknown method 'nope'"),
        (["separate", str(path), "--method", "crossover", "--knob", "sigma=1", "--out", str(tmp_path / "o3")], "no knob 'sigma'"),
        (["separate", str(path), "--method", "crossover", "--sources", "a", "b", "c", "--out", str(tmp_path / "o4")], "exactly two sources"),
        (["info", str(tmp_path / "broken.wav")], "corrupt or not a checkpoint"),
    ]
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("sepcore: error:") and message in err, err
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 5))


@dataclass
class TinyConfig(ProfileConfig):
    sample_rate: int = 22050
    classes: tuple = ("drums", "bass")
    width: int = 3


class TinyModel(torch.nn.Module):
    def __init__(self, config: TinyConfig):
        super().__init__()
        self.config = config
        self.linear = torch.nn.Linear(config.width, 1)


def test_info_prints_config_versions_and_manifest_hash(tmp_path, capsys):
    path = save_checkpoint(tmp_path / "tiny.pt", TinyModel(TinyConfig()), manifest_hash="abc123", metadata={"steps": 5})
    assert main(["info", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["config"] == {"sample_rate": 22050, "classes": ["drums", "bass"], "width": 3}
    assert summary["manifest_hash"] == "abc123" and summary["n_parameters"] == 4
    assert summary["versions"]["torch"] == torch.__version__ and summary["metadata"] == {"steps": 5}
    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    assert "manifest hash  abc123" in text and "sample_rate" in text and "TinyModel" in text


def test_python_dash_m_sepcore_lists_methods():
    result = subprocess.run([sys.executable, "-m", "sepcore", "list-methods", "--json"], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=True)
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["average"]["available"] and rows["crossover"]["knobs"] == {"cutoff_hz": 150.0, "low_source": "bass"}
