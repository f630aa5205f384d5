"""Checkpoints through the API: round trip, and mismatches that say what was expected."""

from dataclasses import dataclass

import pytest
import torch

from sepcore import api
from sepcore.checkpoints import CheckpointError, load_model, save_checkpoint
from sepcore.cli import main
from sepcore.profiles import ProfileConfig


@dataclass
class GainConfig(ProfileConfig):
    sample_rate: int = 8000
    classes: tuple = ("drums", "bass")


class GainModel(torch.nn.Module):
    """Source k = gains[k] * mixture: the smallest model with weights worth checkpointing."""

    def __init__(self, config: GainConfig):
        super().__init__()
        self.config = config
        self.gains = torch.nn.Parameter(torch.ones(len(config.classes)))

    def forward(self, mixture):                       # (time,) -> (n_sources, time)
        return self.gains[:, None] * mixture


def make_gain(sources, *, checkpoint=None, sample_rate=None, device="cpu", **_unused):
    """The factory pattern for trained methods: load_model with what the caller expects."""
    model = load_model(checkpoint, expect={"sample_rate": sample_rate, "classes": tuple(sources)},
                       expect_class=GainModel, device=device)
    return model


@pytest.fixture
def gain_checkpoint(tmp_path):
    model = GainModel(GainConfig())
    with torch.no_grad():
        model.gains.copy_(torch.tensor([0.25, 0.75]))
    path = save_checkpoint(tmp_path / "gain.pt", model, manifest_hash="m1")
    api.register_method("gain", make_gain, description="test", needs_checkpoint=True, sample_rate=8000, chunk_seconds=None)
    yield path
    api._REGISTRY.pop("gain", None)


def test_checkpoint_round_trip_through_separate(gain_checkpoint):
    mixture = torch.randn(8000)
    estimates = api.separate(mixture, method="gain", checkpoint=gain_checkpoint, sample_rate=8000)
    assert torch.allclose(estimates, torch.stack([0.25 * mixture, 0.75 * mixture]))
    model = load_model(gain_checkpoint, expect_class=GainModel)
    assert model.config == GainConfig() and model.checkpoint_info["manifest_hash"] == "m1"


def test_wrong_classes_wrong_rate_and_corrupt_files_say_what_was_expected(gain_checkpoint, tmp_path):
    with pytest.raises(CheckpointError, match=r"gain.pt: expected classes=\('drums', 'piano'\) but the checkpoint has classes=\('drums', 'bass'\)"):
        api.separate(torch.randn(8000), method="gain", sources=("drums", "piano"), checkpoint=gain_checkpoint, sample_rate=8000)
    with pytest.raises(CheckpointError, match="expected sample_rate=16000 but the checkpoint has sample_rate=8000"):
        load_model(gain_checkpoint, expect={"sample_rate": 16000}, expect_class=GainModel)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(gain_checkpoint.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="corrupt.pt could not be read"):
        load_model(corrupt)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="expected a"):
        load_model(gain_checkpoint, expect_class=torch.nn.Linear)
    with pytest.raises(CheckpointError, match="only sepcore classes"):   # no class the caller trusts
        load_model(gain_checkpoint)


def test_cli_reports_a_checkpoint_mismatch_in_one_line(gain_checkpoint, tmp_path, capsys):
    import soundfile

    soundfile.write(tmp_path / "mix.wav", (0.1 * torch.randn(8000)).numpy(), 8000)
    code = main(["separate", str(tmp_path / "mix.wav"), "--method", "gain", "--checkpoint", str(gain_checkpoint),
                 "--sources", "drums", "guitar", "--out", str(tmp_path / "stems"), "--quiet"])
    assert code == 2 and "expected classes=('drums', 'guitar')" in capsys.readouterr().err
    assert not (tmp_path / "stems").exists()
    code = main(["separate", str(tmp_path / "mix.wav"), "--method", "gain", "--out", str(tmp_path / "stems")])
    assert code == 2 and "needs a checkpoint" in capsys.readouterr().err


class _Payload:
    """Unpickling this runs ``touch <marker>``: a hostile checkpoint."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_hostile_pickle_is_refused_and_runs_no_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": "sepcore-checkpoint/1", "payload": _Payload(marker)}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_model(path)
    assert not marker.exists()
    assert main(["info", str(path)]) == 2
    assert not marker.exists()


def test_a_checkpoint_naming_a_class_outside_sepcore_is_refused(tmp_path):
    path = tmp_path / "other.pt"
    save_checkpoint(path, GainModel(GainConfig()))
    payload = torch.load(path, weights_only=True)
    payload["model_class"] = "os.system"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="only sepcore classes"):
        load_model(path)


def test_swapped_class_priors_are_refused(tmp_path):
    import shutil

    from sepcore.separation.lass_search import LASSSeparator
    from sepcore.utils import REPO_ROOT

    latents = REPO_ROOT / "checkpoints" / "latents"
    shutil.copy(latents / "vqvae.pt", tmp_path / "vqvae.pt")
    shutil.copy(latents / "prior_vqvae_drums.pt", tmp_path / "prior_vqvae_bass.pt")
    shutil.copy(latents / "prior_vqvae_bass.pt", tmp_path / "prior_vqvae_drums.pt")
    with pytest.raises(CheckpointError, match="expected source_class='drums'"):
        LASSSeparator.from_pretrained(("drums", "bass"), checkpoint=tmp_path, device="cpu")
