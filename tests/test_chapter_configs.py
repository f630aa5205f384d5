"""The chapter configs of chapters 2 and 5: sizes per profile, and the ELBO chapter's checks."""

import pytest

from sepcore.experiments.elbo_checks import ElboChapterConfig, NumericalChecks
from sepcore.experiments.flows_chapter import FlowsChapterConfig
from sepcore.models.flow import FlowConfig


def test_a_check_holds_within_its_tolerance_and_an_inequality_only_one_way():
    checks = NumericalChecks()
    checks.record("equal within tolerance", 1.0005, 1.0, 1e-3)
    checks.record("equal outside tolerance", 1.01, 1.0, 1e-3)
    checks.record("above the bound", 2.0, 1.0, 0.0, relation=">=")
    checks.record("below the bound", 0.5, 1.0, 0.1, relation=">=")
    table = checks.table()
    assert table.holds.tolist() == [True, False, True, False]
    assert table.difference.tolist() == pytest.approx([0.0005, 0.01, 1.0, -0.5])
    with pytest.raises(ValueError, match="relation"):
        checks.record("unknown relation", 1.0, 1.0, 0.0, relation="<")


@pytest.mark.parametrize("profile", ["quick", "default", "full"])
def test_flow_samples_fit_the_squeeze_of_the_profiles_flows(profile):
    config, multiple = FlowsChapterConfig.for_profile(profile), 2 ** FlowConfig.for_profile(profile).n_blocks
    for length in (config.sample_length, config.crop_length, config.music_sample_length):
        assert length % multiple == 0


def test_the_elbo_chapter_grows_with_the_profile():
    quick, default, full = (ElboChapterConfig.for_profile(p) for p in ("quick", "default", "full"))
    assert quick.n_mc < default.n_mc < full.n_mc and quick.n_random_q < default.n_random_q < full.n_random_q
