"""The digits models of chapter 10 train through the package's one loop, on held-out validation."""

import pandas as pd
import torch

from sepcore.train.lass import DigitsLASSConfig, digit_training_images, train_digits


def test_validation_digits_are_held_out_of_training():
    config = DigitsLASSConfig.for_profile("quick")
    images, validation = digit_training_images(config)
    originals = images[: len(images) // config.n_shifted_copies]                 # unshifted copies first
    assert len(validation) > 100
    flat = originals.flatten(1)
    assert not any(torch.equal(v, flat[(flat - v).abs().sum(1).argmin()]) for v in validation.flatten(1)[:50])


def test_train_digits_writes_models_counts_and_curves(tmp_path, monkeypatch):
    import sepcore.paths as paths

    monkeypatch.setattr(paths, "training_tables", lambda profile: tmp_path / "training")
    config = DigitsLASSConfig.for_profile("quick").replace(vq_steps=24, prior_steps=24, n_count_pairs=200)
    times = train_digits(config, tmp_path / "models")
    assert set(times) == {"vqvae_s", "prior_s", "counts_s"}
    for name in ("digits_vqvae.pt", "digits_prior.pt", "digits_counts.pt"):
        assert (tmp_path / "models" / name).exists()
    for name in ("digits_vqvae", "digits_prior"):
        curve = pd.read_csv(tmp_path / "training" / f"{name}.csv")
        assert curve.step.iloc[-1] == 24 and curve.val_loss.notna().all()
    prior_curve = pd.read_csv(tmp_path / "training" / "digits_prior.csv")
    assert prior_curve.val_loss.iloc[-1] < prior_curve.val_loss.iloc[0]        # the prior learns
