"""Registry adapters: through sepcore.separate a blind baseline gives what its own class gives."""

import math

import pytest
import torch

from sepcore import api

blind = pytest.importorskip("sepcore.separation.blind", reason="the blind baselines are not on this branch")


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
