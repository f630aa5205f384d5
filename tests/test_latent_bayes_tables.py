"""The latent Bayes chapter's table helpers: rows, pair means and ablations read the wide table right."""

import pandas as pd
import pytest

from sepcore.experiments import latent_bayes_tables as lbt


@pytest.fixture
def wide():
    return pd.DataFrame({"drums": [1.0, 3.0, 5.0], "bass": [2.0, 4.0, 8.0]}, index=pd.Index(["a", "b", "c"], name="method"))


def test_pair_rows_give_each_source_and_the_mean(wide):
    rows = lbt.pair_rows(("drums", "bass"), wide, 7, ["c", "a"])
    assert [r["method"] for r in rows] == ["c", "a"]
    assert rows[0]["SDR 1"] == 5.0 and rows[0]["SDR 2"] == 8.0 and rows[0]["mean SDR"] == 6.5 and rows[0]["n_chunks"] == 7


def test_ablation_keeps_the_order_and_adds_the_setting_and_mean(wide):
    table = lbt.ablation(wide, ["b", "a"], "sigma", [0.4, 0.1], ("drums", "bass"))
    assert list(table.columns) == ["method", "sigma", "drums", "bass", "mean SDR"]
    assert list(table["method"]) == ["b", "a"] and list(table["mean SDR"]) == [3.5, 1.5]


def test_the_first_run_is_the_one_scored_for_every_alpha():
    assert next(iter(lbt.RUNS)) == "LQ-VAE σ=0.4" and lbt.ALPHAS[0] == 0.0

