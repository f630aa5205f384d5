"""``sepcore.evaluation.evaluate_batched``: batched separation scored in the dataset's order."""

import torch

from sepcore.data.toy import ToyConfig, ToyDataset
from sepcore.evaluation import evaluate, evaluate_batched


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
