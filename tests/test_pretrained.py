"""One load-or-train policy (sepcore.pretrained): the default profile loads what is committed."""

import pytest

from sepcore import pretrained
from sepcore.separation.supervised import DEFAULT_CHECKPOINT


def test_variational_encoders_come_with_the_priors_they_were_trained_against():
    run = pretrained.get_variational("toy", profile="default")
    sources = run.separator.config.sources
    assert [prior.config.source for prior in run.priors] == list(sources)
    assert run.history and run.history[-1]["step"] == run.separator.checkpoint_info["metadata"]["steps_done"]
    assert run.train_config.batch_size > 0 and not run.separator.training


def test_variational_refuses_an_unknown_dataset():
    with pytest.raises(ValueError, match="toy.*slakh"):
        pretrained.get_variational("digits", profile="default")


def test_the_default_supervised_model_is_the_committed_file():
    path = pretrained.get_supervised(profile="default")
    assert path == DEFAULT_CHECKPOINT and path.exists()


@pytest.mark.parametrize("profile, retrain", [("quick", False), ("full", False), ("default", True)])
def test_priors_trained_here_go_through_fit_beside_their_codec(monkeypatch, tmp_path, profile, retrain):
    import sepcore.train.prior_fit as prior_fit
    from sepcore.train.prior import PriorTrainConfig

    calls = []

    def fake_fit(codec_path, source_class, out, *, config, plan, data_root, curve_path, log, device):
        calls.append((codec_path, source_class, out, config.profile, plan.steps, curve_path))

    monkeypatch.setattr(prior_fit, "fit_prior", fake_fit)
    monkeypatch.setattr(pretrained, "load_model", lambda path, **kwargs: path)
    codec = type("Codec", (), {})()                                  # trained here: no checkpoint_info
    got = pretrained.get_prior("vqvae", "bass", codec, profile=profile, retrain=retrain, work_dir=tmp_path)
    folder = tmp_path / f"latent-models-{profile}"
    assert got == folder / "prior_vqvae_bass.pt" and pretrained.LATENTS not in got.parents
    codec_path, source_class, out, config_profile, steps, curve = calls[0]
    assert (codec_path, source_class, out, config_profile) == (folder / "vqvae.pt", "bass", got, profile)
    assert steps == PriorTrainConfig.for_profile(profile).steps and curve == got.with_suffix(".csv")


def test_default_counts_are_the_committed_table_of_the_committed_codec():
    codec = pretrained.get_vqvae("vqvae", profile="default")
    likelihood = pretrained.get_counts("vqvae", ("drums", "bass"), codec, profile="default")
    assert likelihood.K == codec.config.codebook_size and likelihood.n_sources == 2
    three = pretrained.get_counts("lqvae", ("drums", "bass", "guitar"), pretrained.get_vqvae("lqvae", profile="default"),
                                  profile="default")
    assert three.n_sources == 3


@pytest.mark.parametrize("profile, retrain", [("quick", False), ("default", True)])
def test_counts_fitted_here_are_saved_beside_the_models_and_reused(monkeypatch, tmp_path, profile, retrain):
    import torch

    import sepcore.train.lass as train_lass
    from sepcore.separation.lass import CountLikelihood

    calls = []
    K = 4
    table = CountLikelihood.fit([(torch.tensor([[0, 1, 1]]), torch.tensor([[1, 1, 2]]), torch.tensor([[2, 3, 3]]))], K)

    def fake_fit(vqvae, config, *, profile, data_root, classes):
        calls.append((profile, classes))
        return table, ""

    monkeypatch.setattr(train_lass, "fit_audio_counts", fake_fit)
    first = pretrained.get_counts("vqvae", ("drums", "bass"), object(), profile=profile, retrain=retrain, work_dir=tmp_path)
    again = pretrained.get_counts("vqvae", ("drums", "bass"), object(), profile=profile, retrain=retrain, work_dir=tmp_path)
    assert calls == [(profile, ("drums", "bass"))]                       # counted once, then read back
    assert (tmp_path / f"latent-models-{profile}" / "audio_counts_vqvae.pt").exists()
    assert torch.equal(first.log_p, again.log_p) and first.K == again.K == K


@pytest.mark.parametrize("profile, retrain, trains", [("default", False, False), ("default", True, True),
                                                      ("quick", False, True), ("full", False, True)])
def test_digit_models_load_the_committed_files_only_under_default(monkeypatch, tmp_path, profile, retrain, trains):
    import sepcore.train.lass as train_lass
    from sepcore.paths import CHECKPOINTS

    trained, loaded = [], []

    def fake_train(config, folder, device):
        trained.append((config, folder))
        for name in ("digits_vqvae.pt", "digits_prior.pt", "digits_counts.pt"):
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(b"")

    monkeypatch.setattr(train_lass, "train_digits", fake_train)
    monkeypatch.setattr(pretrained, "load_model", lambda path, **kwargs: loaded.append(path) or type("M", (), {"eval": lambda self: path})())
    monkeypatch.setattr(pretrained, "load_counts", lambda path: path)
    vqvae, prior, counts = pretrained.get_digit_models(profile=profile, retrain=retrain, work_dir=tmp_path)
    folder = tmp_path / f"lass-models-{profile}" if trains else CHECKPOINTS / "lass"
    assert (vqvae, prior, counts) == tuple(folder / n for n in ("digits_vqvae.pt", "digits_prior.pt", "digits_counts.pt"))
    assert trained == ([(train_lass.DigitsLASSConfig.for_profile(profile), folder)] if trains else [])
    pretrained.get_digit_models(profile=profile, retrain=retrain, work_dir=tmp_path)
    assert len(trained) == int(trains)                               # files trained here are reused
