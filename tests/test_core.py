"""Mixing convention, profiles, tables with provenance, checkpoints."""

import json
from dataclasses import dataclass

import pandas as pd
import pytest
import torch

from sepcore.checkpoints import CheckpointError, load_model, read_checkpoint, save_checkpoint
from sepcore.mixing import get_mixing, mix, mixing_weight, set_mixing
from sepcore.profiles import ProfileConfig
from sepcore.tables import read_table, write_table


def test_mix_mean_and_sum():
    s = torch.arange(6.0).reshape(1, 2, 3)  # (batch, n_sources, time)
    torch.testing.assert_close(mix(s), s.mean(1))
    torch.testing.assert_close(mix(s, "sum"), s.sum(1))
    with set_mixing("sum"):
        assert get_mixing() == "sum"
        assert mixing_weight(4) == 1.0
    assert get_mixing() == "mean" and mixing_weight(4) == 0.25
    with pytest.raises(ValueError, match="mixing must be one of"):
        mix(s, "max")


@dataclass
class TinyConfig(ProfileConfig):
    width: int = 4
    sample_rate: int = 22050
    classes: tuple[str, ...] = ("drums", "bass")

    @classmethod
    def quick(cls):
        return cls(width=2)


class TinyModel(torch.nn.Module):
    def __init__(self, config: TinyConfig):
        super().__init__()
        self.config = config
        self.linear = torch.nn.Linear(config.width, config.width)


def test_profile_config_round_trip_and_errors():
    assert TinyConfig.for_profile("quick").width == 2
    assert TinyConfig.for_profile("full") == TinyConfig.default()
    cfg = TinyConfig.for_profile("default", width=8)
    assert TinyConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="profile must be one of"):
        TinyConfig.for_profile("huge")
    with pytest.raises(ValueError, match="unknown fields"):
        TinyConfig.from_dict({"width": 3, "depth": 2})


def test_checkpoint_round_trip(tmp_path):
    model = TinyModel(TinyConfig())
    path = save_checkpoint(tmp_path / "tiny.pt", model, manifest_hash="abc", metadata={"trained_steps": 3})
    loaded = load_model(path, expect={"sample_rate": 22050, "classes": ("drums", "bass")}, expect_class=TinyModel)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
    assert loaded.checkpoint_info["manifest_hash"] == "abc"
    assert read_checkpoint(path)["metadata"]["trained_steps"] == 3


def test_checkpoint_errors_name_the_problem(tmp_path):
    path = save_checkpoint(tmp_path / "tiny.pt", TinyModel(TinyConfig()))
    with pytest.raises(CheckpointError, match="expected sample_rate=44100"):
        load_model(path, expect={"sample_rate": 44100})
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_model(corrupt)
    with pytest.raises(CheckpointError, match="expected a"):
        load_model(path, expect_class=torch.nn.Linear)
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_write_table_with_provenance(tmp_path):
    frame = pd.DataFrame({"method": ["a", "b"], "sdr": [1.234, float("nan")]})
    prov = write_table(frame, tmp_path / "chapter" / "scores", profile="quick",
                       parameters={"steps": 3, "sigma": (0.1, 0.4)}, manifest_hash="h", n_mixtures=2)
    assert prov["smoke_test"] and prov["n_mixtures"] == 2
    meta = json.loads((tmp_path / "chapter" / "scores.json").read_text())
    assert meta["parameters"] == {"steps": 3, "sigma": [0.1, 0.4]} and "torch" in meta["versions"]
    assert "smoke test" in (tmp_path / "chapter" / "scores.md").read_text()
    pd.testing.assert_frame_equal(read_table(tmp_path / "chapter" / "scores"), frame)
    with pytest.raises(FileNotFoundError, match="run the chapter"):
        read_table(tmp_path / "nothing")
