"""The generative methods reach users through the one API, with the committed checkpoints."""

import pytest
import torch

import sepcore
from sepcore.checkpoints import CheckpointError
from sepcore.data.toy import ToyConfig, ToyDataset

TOY = ToyDataset(ToyConfig.quick(), "test")


def _toy_mixture(n=1024):
    return TOY[0]["mixture"][:n]


@pytest.mark.parametrize("method,knobs", [
    ("langevin", {"n_levels": 2, "steps_per_level": 3}),
    ("variational", {}),
])
def test_toy_methods_through_the_api(method, knobs):
    mixture = _toy_mixture()
    first = sepcore.separate(mixture, method=method, sources=TOY.classes, sample_rate=14700, seed=3, **knobs)
    again = sepcore.separate(mixture, method=method, sources=TOY.classes, sample_rate=14700, seed=3, **knobs)
    assert first.shape == (4, len(mixture)) and torch.isfinite(first).all()
    torch.testing.assert_close(first, again)  # the same seed gives the same stems


@pytest.mark.parametrize("method,knobs", [
    ("latent-bayes", {"n_candidates": 2}),
    ("lass", {"n_beams": 2}),
    ("lass-spectral", {"n_beams": 2}),
    ("langevin-slakh", {"n_levels": 2, "steps_per_level": 2}),
    ("langevin-score", {"n_levels": 2, "steps_per_level": 2}),
    ("variational-slakh", {}),
    ("variational-score-slakh", {}),
    ("variational-score-slakh", {"output": "raw"}),
])
def test_music_methods_through_the_api(method, knobs):
    g = torch.Generator().manual_seed(0)
    mixture = 0.1 * torch.randn(8192, generator=g)
    estimates = sepcore.separate(mixture, method=method, sources=("drums", "bass"), sample_rate=22050, **knobs)
    assert estimates.shape == (2, 8192) and torch.isfinite(estimates).all()


@pytest.mark.parametrize("method", ["lass", "latent-bayes"])
def test_three_sources_through_the_api(method):
    mixture = 0.1 * torch.randn(4096, generator=torch.Generator().manual_seed(1))
    knobs = {"n_beams": 2} if method == "lass" else {"n_candidates": 2}
    estimates = sepcore.separate(mixture, method=method, sources=("drums", "bass", "guitar"), sample_rate=22050, **knobs)
    assert estimates.shape == (3, 4096) and torch.isfinite(estimates).all()


def test_missing_prior_names_the_file():
    with pytest.raises(CheckpointError, match="toy_drums.pt"):
        sepcore.separate(_toy_mixture(), method="langevin", sources=("drums", "bass"), sample_rate=14700)


def test_results_rows_build_generative_methods_only_where_they_have_priors():
    from sepcore.results import chunk_budget, table_rows

    class DrumsGuitar:
        classes, sample_rate = ("drums", "guitar"), 22050

    generative = [row for row in table_rows("quick", device="cpu") if row.family == "generative"]
    assert {row.label for row in generative} >= {"Langevin (flow priors)", "LASS (beam, 10 beams)"}
    langevin = next(row for row in generative if row.label == "Langevin (flow priors)")
    assert langevin.build(DrumsGuitar()) is None                              # no guitar flow prior
    assert chunk_budget("Langevin (flow priors)", "default", 8) == 2
    assert chunk_budget("LASS (beam, 10 beams)", "default", 8) == 8


def test_spectral_lass_masked_stems_add_up_to_the_mixture():
    from sepcore.mixing import mix

    t = torch.arange(16384) / 22050
    mixture = 0.2 * torch.sin(2 * torch.pi * 55 * t) + 0.05 * torch.randn(16384, generator=torch.Generator().manual_seed(2))
    estimates = sepcore.separate(mixture, method="lass-spectral", sources=("drums", "bass"), sample_rate=22050, n_beams=2)
    assert torch.allclose(mix(estimates, dim=0), mixture, atol=1e-4)
    with pytest.raises(FileNotFoundError, match="drums and bass only"):
        sepcore.separate(mixture, method="lass-spectral", sources=("drums", "guitar"), sample_rate=22050, n_beams=2)


def test_score_langevin_masked_output_mixes_back_to_the_mixture():
    from sepcore.mixing import mix

    mixture = 0.1 * torch.randn(8192, generator=torch.Generator().manual_seed(2))
    estimates = sepcore.separate(mixture, method="langevin-score", sources=("drums", "bass"), sample_rate=22050,
                                 n_levels=2, steps_per_level=2, output="masked")
    assert torch.allclose(mix(estimates), mixture, atol=1e-4)
