"""The separator contract (sepcore.separation.base) and the registry's loaders that build separators."""

import math

import pytest
import torch

from sepcore import api
from sepcore.separation.base import MaskedOutput, Separator

blind = pytest.importorskip("sepcore.separation.blind", reason="the blind baselines are not on this branch")


class Halves(Separator):
    """A separator that writes only separate_batch: every source is half the mixture."""

    def separate_batch(self, mixtures):
        return torch.stack([mixtures / 2, mixtures / 2], dim=1)


class Ramp(Separator):
    """One that writes only separate: source 0 is the mixture times a ramp, source 1 the rest."""

    def separate(self, mixture):
        ramp = torch.linspace(0, 1, mixture.shape[-1])
        return torch.stack([mixture * ramp, mixture * (1 - ramp)])


def test_the_base_derives_separate_and_separate_batch_from_each_other():
    mixtures = torch.randn(3, 100)
    assert torch.equal(Halves()(mixtures[1]), mixtures[1].expand(2, -1) / 2)
    batch = Ramp().separate_batch(mixtures)
    assert batch.shape == (3, 2, 100)
    assert torch.allclose(batch.sum(1), mixtures)
    assert torch.equal(batch[2], Ramp()(mixtures[2]))


def test_a_separator_must_write_one_of_the_two():
    with pytest.raises(TypeError, match="separate"):
        type("Nothing", (Separator,), {})


def test_masked_output_mixes_back_to_the_mixture():
    rate = 22050
    t = torch.arange(rate) / rate
    mixture = 0.5 * (torch.sin(2 * math.pi * 110 * t) + 0.3 * torch.randn(rate))
    masked = MaskedOutput(Ramp().described(("a", "b"), rate))
    estimates = masked(mixture)
    assert masked.classes == ("a", "b") and masked.sample_rate == rate
    assert torch.allclose(estimates.mean(0), mixture, atol=1e-5)           # mean mixing: w = 1/2


def test_blind_baseline_through_the_api_equals_the_direct_call():
    rate = 22050
    t = torch.arange(3 * rate) / rate
    mixture = 0.5 * (0.4 * torch.sin(2 * math.pi * 55 * t) + (torch.rand(3 * rate) - 0.5) * (torch.sin(2 * math.pi * 2 * t) > 0.9))
    estimates = api.separate(mixture, method="repet", sample_rate=rate, show_progress=False)
    direct = blind.BlindSeparator("repet", ("drums", "bass"), rate)(mixture)
    assert torch.equal(estimates, direct)


def test_blind_baselines_are_available_when_their_module_is():
    for name in api.BLIND_METHODS:
        assert api.get_method(name).availability() == (True, "")
        assert "method" not in api.get_method(name).knobs()              # a fixed argument, not a knob


@pytest.mark.parametrize("name", ["average", "crossover", "hpss", "conv-tasnet", "langevin", "langevin-slakh",
                                  "langevin-score", "variational-slakh", "latent-bayes", "lass", "lass-spectral"])
def test_every_loader_builds_a_separator_that_names_its_classes_and_rate(name):
    spec = api.get_method(name)
    separator = api.build_separator(name, ("drums", "bass") if spec.sample_rate != 14700 else ("sine", "square"),
                                    sample_rate=spec.sample_rate or 22050, device="cpu")
    assert isinstance(separator, Separator)
    assert separator.sample_rate == (spec.sample_rate or 22050)
    assert separator.classes in (("drums", "bass"), ("sine", "square"))
    assert separator.last is None or separator.last == []
