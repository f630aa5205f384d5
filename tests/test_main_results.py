"""The results chapter's package functions (sepcore.experiments.main_results)."""

import numpy as np
import pandas as pd
import pytest
import torch

from sepcore.experiments import main_results
from sepcore.results import TableRow, main_table, oracle_label


class Chunks(list):
    """A test set of two-source chunks: sources of white noise at two levels, the mixture their sum."""

    classes = ("drums", "bass")
    sample_rate = 8000

    def __init__(self, n):
        g = torch.Generator().manual_seed(0)
        super().__init__()
        for i in range(n):
            sources = torch.randn(2, 16000, generator=g) * torch.tensor([[1.0], [0.5]])
            self.append({"id": f"c{i}", "sources": sources, "mixture": sources.sum(0)})


def test_score_methods_runs_each_row_on_its_pairs_and_budget():
    data = {"drums/bass": Chunks(4), "guitar/bass": Chunks(4)}
    indices = {pair: [0, 1, 2, 3] for pair in data}
    halves = TableRow("halves", "baseline", lambda d: (lambda m: torch.stack([m / 2, m / 2])))
    truth_like = TableRow("oracle split", "generative",
                          lambda d: None if d is data["guitar/bass"] else (lambda m: torch.stack([m * 0.8, m * 0.2])))
    scores = main_results.score_methods(data, indices, [halves, truth_like], profile="default", n_generative_chunks=2)
    counts = scores.drop_duplicates(["method", "pair", "id"]).groupby(["method", "pair"]).size().to_dict()
    assert counts == {("halves", "drums/bass"): 4, ("halves", "guitar/bass"): 4, ("oracle split", "drums/bass"): 2}
    assert set(scores.family) == {"baseline", "generative"}
    # the better split scores higher on the louder source, as the SDR says it must
    by = scores[scores.source == "drums"].groupby("method").sdr.mean()
    assert by["oracle split"] > by["halves"]


def test_score_methods_reads_other_chapters_rows_once(tmp_path):
    data = {"drums/bass": Chunks(2)}
    halves = TableRow("halves", "baseline", lambda d: (lambda m: torch.stack([m / 2, m / 2])))
    (tmp_path / "other").mkdir()
    pd.DataFrame([{"method": "halves", "pair": "drums/bass", "id": "c0", "source": "drums", "sdr": 99.0},
                  {"method": "extra", "pair": "drums/bass", "id": "c0", "source": "drums", "sdr": 1.0}]
                 ).to_csv(tmp_path / "other" / "per_chunk.csv", index=False)
    scores = main_results.score_methods(data, {"drums/bass": [0, 1]}, [halves], profile="default",
                                        n_generative_chunks=None, tables_root=tmp_path)
    assert 99.0 not in scores.sdr.values                   # a method run here is not read again
    assert scores[scores.method == "extra"].family.item() == "generative"


def test_speed_table_counts_each_chunk_once():
    scores = pd.DataFrame({"method": ["m"] * 4, "family": ["blind"] * 4, "pair": ["drums/bass"] * 4,
                           "id": ["a", "a", "b", "b"], "source": ["drums", "bass"] * 2, "sdr": [1.0, 3.0, 5.0, 7.0],
                           "seconds": [1.0, 1.0, 3.0, 3.0], "audio_seconds": [2.0, 2.0, 2.0, 2.0]})
    row = main_results.speed_table(scores).iloc[0]
    assert row.sdr_mean == 4.0 and row.n_chunks == 2
    assert row.seconds_per_second == pytest.approx(4.0 / 4.0)


def test_drums_bass_verdicts_compare_the_right_rows():
    rows = [("mixture (ŝ = m)", "baseline", 2.0), ("HPSS", "blind", 5.0), ("NMF", "blind", 1.0),
            ("Conv-TasNet (supervised)", "supervised", 8.0), (oracle_label("IRM"), "oracle", 11.0),
            (oracle_label("IBM"), "oracle", 12.0), (oracle_label("LQ-VAE codes"), "oracle", 6.0),
            (oracle_label("VQ-VAE codes"), "oracle", 9.5), ("LASS (beam, 10 beams)", "generative", 4.0),
            ("latent Bayes", "generative", 3.0)]
    scores = pd.DataFrame([{"method": m, "family": f, "pair": "drums/bass", "id": f"c{i}", "source": s,
                            "sdr": v + (0.5 if s == "drums" else -0.5), "si_sdr": np.nan, "seconds": 0.0,
                            "audio_seconds": 1.0} for m, f, v in rows for i in range(3) for s in ("drums", "bass")])
    _, numeric = main_table(scores)
    values = main_results.drums_bass_verdicts(numeric, scores)
    assert values["best_blind"] == "HPSS" and values["worst_blind"] == "NMF"
    assert values["target_latent"] == "8.00" and values["target_lass"] == "9.00"
    assert values["latent_target_vs_ceiling"] == "2.00 dB above"        # LQ-VAE ceiling 6
    assert values["lass_target_vs_ceiling"] == "only 0.50 dB below"     # VQ-VAE ceiling 9.5
    assert values["lass_below_ceiling"] == "5.50"
    assert values["oracle_min"] == oracle_label("IRM") and values["oracle_bound"] == "holds"
    assert values["sup_vs_blind"] == "holds"
    assert values["best_gen"] == "LASS (beam, 10 beams)" and values["gen_vs_blind"] == "does not hold"
    assert values["gen_margin"] == "-1.00" and values["best_gen_n"] == 3
