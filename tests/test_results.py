"""The results registry and the main table: labels, chunk selection and the aggregation's numbers."""

import numpy as np
import pandas as pd
import pytest

from sepcore.results import (
    REGISTRY,
    MethodSpec,
    collect_external,
    main_table,
    register,
    spread_indices,
)


def test_spread_indices_are_even_and_cover_the_ends():
    assert spread_indices(10, 4) == [0, 3, 6, 9]
    assert spread_indices(5, 10) == [0, 1, 2, 3, 4]
    assert spread_indices(7, None) == list(range(7))


def test_upper_bounds_are_labelled_and_families_checked():
    assert REGISTRY["IRM"].label == "IRM (oracle)"
    assert REGISTRY["IBM"].family == "oracle"
    assert REGISTRY["HPSS"].label == "HPSS"
    with pytest.raises(ValueError, match="family"):
        MethodSpec("x", "magic", lambda *a: None)
    with pytest.raises(ValueError, match="already registered"):
        register(MethodSpec("HPSS", "blind", lambda *a: None))


def test_main_table_mean_and_std_over_chunks():
    rows = []
    for chunk, (d, b) in enumerate([(1.0, 4.0), (3.0, np.nan), (5.0, 8.0)]):
        rows += [{"method": "A", "family": "blind", "pair": "drums/bass", "id": chunk, "source": "drums", "sdr": d},
                 {"method": "A", "family": "blind", "pair": "drums/bass", "id": chunk, "source": "bass", "sdr": b}]
    rows.append({"method": "O", "family": "oracle", "pair": "drums/bass", "id": 0, "source": "drums", "sdr": 9.0})
    wide, numeric = main_table(pd.DataFrame(rows))
    drums = numeric[(numeric.method == "A") & (numeric.source == "drums")].iloc[0]
    assert drums.sdr_mean == pytest.approx(3.0) and drums.sdr_std == pytest.approx(np.std([1.0, 3.0, 5.0]))
    bass = numeric[(numeric.method == "A") & (numeric.source == "bass")].iloc[0]
    assert bass.sdr_mean == pytest.approx(6.0) and bass.n_nan == 1
    assert wide.loc[wide.method == "A", "drums/bass: drums"].iloc[0] == "3.00 ± 1.63"
    assert wide.loc[wide.method == "O", "drums/bass: bass"].iloc[0] == "–"
    assert list(wide.method) == ["A", "O"]                          # blind rows before oracles
    assert "drums/piano: piano" in wide.columns


def test_collect_external_reads_per_chunk_tables(tmp_path):
    (tmp_path / "latent_bayes").mkdir()
    frame = pd.DataFrame({"method": ["LQ-VAE"], "pair": ["drums/bass"], "id": ["t0"], "source": ["drums"], "sdr": [4.0]})
    frame.to_csv(tmp_path / "latent_bayes" / "per_chunk_table1.csv", index=False)
    (tmp_path / "results").mkdir()
    frame.to_csv(tmp_path / "results" / "per_chunk.csv", index=False)   # its own output is skipped
    found = collect_external(tmp_path)
    assert len(found) == 1 and found.family.iloc[0] == "generative"
    frame.drop(columns="pair").to_csv(tmp_path / "latent_bayes" / "per_chunk_bad.csv", index=False)
    with pytest.raises(ValueError, match="pair"):
        collect_external(tmp_path)
