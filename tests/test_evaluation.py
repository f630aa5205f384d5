"""``sepcore.evaluation``: batched separation scored in the dataset's order; the methods-by-sources table."""

import pandas as pd
import torch

from sepcore.data.toy import ToyConfig, ToyDataset
from sepcore.evaluation import evaluate, evaluate_batched, wide_table


def test_batched_separation_is_scored_like_one_mixture_at_a_time():
    dataset = ToyDataset(ToyConfig.quick().replace(length=256, waveforms=("sine", "square")), "test", n_items=5)
    weights = torch.tensor([0.3, 0.7])

    def one(mixture):                                        # (T,) -> (K, T)
        return weights[:, None] * mixture

    scores, seconds_per_second, estimates = evaluate_batched(
        dataset, lambda batch: weights[None, :, None] * batch[:, None], method="scaled", batch_size=2)
    assert estimates.shape == (5, 2, 256)
    for i in range(5):
        assert torch.equal(estimates[i], one(dataset[i]["mixture"]))
    expected = evaluate(dataset, one, method="scaled")
    assert scores[["id", "source", "sdr"]].equals(expected[["id", "source", "sdr"]])
    assert seconds_per_second > 0


def test_wide_table_keeps_the_methods_in_order_of_appearance_and_the_classes_in_the_order_asked():
    rows = [("z last", "c1", "drums", 1.0), ("z last", "c1", "bass", 3.0), ("a first?", "c1", "drums", 5.0),
            ("a first?", "c1", "bass", 7.0), ("z last", "c2", "drums", 2.0), ("z last", "c2", "bass", 4.0)]
    scores = pd.DataFrame(rows, columns=["method", "id", "source", "sdr"]).assign(si_sdr=0.0)
    wide = wide_table(scores, ("bass", "drums"))
    assert list(wide.index) == ["z last", "a first?"] and list(wide.columns) == ["bass", "drums"]
    assert wide.loc["z last", "drums"] == 1.5 and wide.loc["a first?", "bass"] == 7.0
