"""Conv-TasNet upper bound: shapes, the SDR loss's value, class selection and the checkpoint round trip."""

import math

import pytest
import torch

from sepcore.checkpoints import save_checkpoint
from sepcore.models.convtasnet import ConvTasNet, ConvTasNetConfig, GlobalLayerNorm, sdr_loss
from sepcore.separation.supervised import SupervisedSeparator, load_supervised


def _tiny():
    torch.manual_seed(0)
    return ConvTasNet(ConvTasNetConfig.quick().replace(n_filters=8, bottleneck=8, hidden=8, n_blocks=2))


def test_sdr_loss_known_values():
    reference = torch.randn(3, 2, 1000)
    # half the amplitude: error = s/2, SDR = 10 log10(4) dB exactly
    assert sdr_loss(0.5 * reference, reference).item() == pytest.approx(-10 * math.log10(4.0), abs=1e-4)
    assert sdr_loss(reference, reference).item() < -70.0


@pytest.mark.parametrize("length", [8192, 8191, 1000, 65537])
def test_forward_keeps_length_and_class_axis(length):
    model = _tiny()
    out = model(torch.randn(2, length))
    assert out.shape == (2, 4, length)


def test_global_layer_norm_normalises_each_item():
    x = 3.0 + 5.0 * torch.randn(2, 6, 50)
    y = GlobalLayerNorm(6)(x)
    torch.testing.assert_close(y.mean(dim=(1, 2)), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.var(dim=(1, 2), unbiased=False), torch.ones(2), atol=1e-4, rtol=0)


def test_separator_reads_the_requested_classes_in_order(tmp_path):
    model = _tiny().eval()
    mixture = torch.randn(4096)
    with torch.no_grad():
        full = model(mixture[None])[0]
    separator = SupervisedSeparator(model, ("bass", "drums"), device="cpu")
    torch.testing.assert_close(separator(mixture), full[[1, 0]])
    with pytest.raises(ValueError, match="cannot separate"):
        SupervisedSeparator(model, ("drums", "vocals"))


def test_checkpoint_round_trip(tmp_path):
    model = _tiny().eval()
    path = save_checkpoint(tmp_path / "m.pt", model, metadata={"steps_done": 1})
    separator = load_supervised(path, ("guitar", "bass"), device="cpu")
    mixture = torch.randn(4096)
    with torch.no_grad():
        expected = model(mixture[None])[0, [2, 1]]
    torch.testing.assert_close(separator(mixture), expected)
    assert separator.model.config == model.config
