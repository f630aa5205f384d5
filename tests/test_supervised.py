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


class _NoiseStems:
    """Stand-in for ``SlakhStems``: random crops of white noise at a class-specific level."""

    def __init__(self, level):
        self.level, self.manifest_hash = level, f"noise{level}"

    def random_crops(self, n, length, generator):
        return self.level * torch.randn(n, length, generator=generator)


def test_training_goes_through_the_validated_loop_and_resumes(tmp_path):
    from sepcore.checkpoints import load_model
    from sepcore.train.fit import ConfigMismatch
    from sepcore.train.supervised import pair_loss, train, training_plan

    config = ConvTasNetConfig.quick().replace(n_filters=8, bottleneck=8, hidden=8, n_blocks=2, steps=6, batch_size=2,
                                              segment_length=512)
    stems = {c: _NoiseStems(0.1 * (k + 1)) for k, c in enumerate(config.classes)}
    g = torch.Generator().manual_seed(1)
    sources = torch.stack([stems["drums"].random_crops(2, 512, g), stems["bass"].random_crops(2, 512, g)], 1)
    val = [(sources.mean(1), sources, torch.tensor([[0, 1], [0, 1]]))]
    plan = training_plan(config)
    assert plan.steps == 6 and plan.eval_every == 1 and plan.grad_clip == 5.0
    out, logs = tmp_path / "sup.pt", []
    model, metadata = train(config, tmp_path, out, "cpu", logs.append, profile="quick", stems=stems, val_batches=val)
    assert metadata["steps_done"] == 6 and metadata["finished"] and metadata["validation_sdr"] == {}
    saved = load_model(out)                                       # the best-validation weights are what is saved
    with torch.no_grad():
        val_loss = float(pair_loss(saved, *val[0]))
    assert abs(val_loss - metadata["val_loss"]) < 1e-3
    for key, value in model.state_dict().items():
        torch.testing.assert_close(saved.state_dict()[key], value)
    train(config, tmp_path, out, "cpu", logs.append, profile="quick", stems=stems, val_batches=val)
    assert any("resuming at step 6" in line for line in logs)
    with pytest.raises(ConfigMismatch):
        train(config.replace(hidden=16), tmp_path, out, "cpu", logs.append, profile="quick", stems=stems, val_batches=val)
