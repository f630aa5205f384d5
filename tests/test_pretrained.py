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
