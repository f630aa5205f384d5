"""The LASS audio chapter's helpers (sepcore.experiments.lass_audio_chapter): tables read the right rows."""

import re

import pandas as pd

from sepcore import pretrained
from sepcore.experiments import lass_audio_chapter as lac


def sampler_table():
    return pd.DataFrame({"method": [lac.MIXTURE, "greedy", "beam (10 beams)"], "seconds_per_separated_second": [0.0, 0.5, 2.0]})


def test_timing_leaves_the_mixture_out_and_labels_langevin_as_another_run(tmp_path):
    alone, note = lac.timing_table(sampler_table(), "cpu", tmp_path / "missing.csv")
    assert list(alone.method) == ["greedy", "beam (10 beams)"] and "LASS alone" in note
    pd.DataFrame({"method": ["langevin"], "seconds_per_separated_second": [7.5]}).to_csv(tmp_path / "l.csv", index=False)
    both, note = lac.timing_table(sampler_table(), "cpu", tmp_path / "l.csv")
    langevin = both[both.family == "Langevin"].iloc[0]
    assert langevin.seconds_per_separated_second == 7.5 and langevin.source != "this run" and "another run" in note


def test_prior_losses_count_whole_steps_and_every_class():
    codec = pretrained.get_vqvae("vqvae", profile="default")
    priors = [pretrained.get_prior("vqvae", c, codec, profile="default") for c in ("drums", "bass")]
    sentence = lac.prior_losses(priors, ("drums", "bass"))
    parts = sentence.split("; ")
    assert [p.split()[0] for p in parts] == ["drums", "bass"]
    assert all(re.search(r"after [\d,]+ steps \(\d+ CPU minutes", p) for p in parts), sentence


def test_counts_table_has_one_row_per_committed_table_and_smoothing_helps():
    table = lac.counts_table(pretrained.CHECKPOINTS / "lass")
    assert list(zip(table.codec, table.classes)) == [("vqvae", "drums + bass"), ("spectral", "drums + bass"),
                                                     ("lqvae", "drums + bass + guitar")]
    assert (table.held_out_nats_smoothed > table.held_out_nats_raw).all()


def checks_table(more: float, weighted: float, em: float) -> pd.DataFrame:
    rows = {"mean of 16 samples": 5.9, "mean of 32 samples": 6.0, "mean of 96 samples": 6.0 + more,
            "32 samples weighted, beta = 0.01": 6.0 + weighted, "32 samples weighted, beta = 0.3": 5.5,
            "mean of 32 samples + 1 EM iterations": 6.0 + em}
    return pd.DataFrame({"check": list(rows), "drums": list(rows.values()), "bass": list(rows.values()),
                         "mean": list(rows.values())})


def test_posterior_checks_say_the_sampler_limits_only_when_a_check_beats_the_mean():
    fine = lac.posterior_checks_sentence(checks_table(0.02, -0.01, -0.2))
    assert "does not limit" in fine and "more samples at best +0.02 dB (mean of 96 samples)" in fine
    assert "EM Wiener iterations at best -0.20 dB" in fine and "score-weighted samples at best -0.01 dB" in fine
    short = lac.posterior_checks_sentence(checks_table(0.3, 0.0, -0.2))
    assert "so the sampler limits the estimate" in short
    assert "not checked" in lac.posterior_checks_sentence(None)


def shift_table(gain2: float, gain4: float) -> pd.DataFrame:
    return pd.DataFrame({"shifts": [1, 2, 4], "sdr": [6.0, 6.0 + gain2, 6.0 + gain4],
                         "search_seconds_per_second": [1.0, 2.0, 4.0]})


def test_the_shifts_sentence_reports_the_chosen_grids_against_one_and_against_more_samples():
    chosen = lac.shifts_sentence(shift_table(0.06, 0.17), 4, checks_table(0.04, 0.0, -0.2))
    assert "2 grids +0.06 dB, 4 grids +0.17 dB" in chosen and "Validation chose 4 grids" in chosen
    assert "4.00 s of search per second of audio on this machine against 1.00 s" in chosen
    assert "gain less (the mean of 96 samples: +0.04 dB" in chosen and "frames fall" in chosen
    assert "act as more samples" in lac.shifts_sentence(shift_table(0.06, 0.17), 4, checks_table(0.15, 0.0, -0.2))
    kept = lac.shifts_sentence(shift_table(-0.01, -0.02), 1, checks_table(0.04, 0.0, -0.2))
    assert "keeps one grid" in kept and "frames fall" not in kept
    assert "keeps one grid" in lac.shifts_sentence(shift_table(0.0, 0.0).iloc[:0], 1)


def pair_table(decoded: float, fitted: float) -> pd.DataFrame:
    return pd.DataFrame({"fitted_pairs": [False, False, True, True], "magnitude_weight": [10.0, 100.0, 10.0, 100.0],
                         "spectral_beams": 10, "mask_power": 1.0, "sdr": [decoded - 0.5, decoded, fitted - 0.5, fitted]})


PAIR_FIT = {"n_pairs": 65536,
            "validation_decoded_atoms": {"true_pair_first_percent": 10.5, "true_pair_median_rank": 62.0, "residual_mse": 0.366},
            "validation_fitted": {"true_pair_first_percent": 15.5, "true_pair_median_rank": 16.0, "residual_mse": 0.260}}


def test_the_pair_features_sentence_gives_the_fit_evidence_and_the_verdict_of_validation():
    better = lac.pair_features_sentence(pair_table(6.40, 6.80), PAIR_FIT)
    assert "10.5 % of frames with the decoded atoms and at 15.5 %" in better and "65,536 pairs" in better
    assert "6.80 dB" in better and "(+0.40 dB)" in better and "use them" in better
    worse = lac.pair_features_sentence(pair_table(6.40, 6.30), PAIR_FIT)
    assert "(-0.10 dB)" in worse and "keep the atoms" in worse
    assert "one kind" in lac.pair_features_sentence(pair_table(6.4, 6.8).iloc[:2], PAIR_FIT)
