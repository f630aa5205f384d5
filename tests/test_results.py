"""The results table: its rows come from the one registry (sepcore.api), labels, chunk selection and the
aggregation's numbers; no second registry."""

import numpy as np
import pandas as pd
import pytest
import torch

from sepcore import api
from sepcore.results import (
    ORACLES,
    TABLE_METHODS,
    collect_external,
    main_table,
    spread_indices,
    table_rows,
)


def test_spread_indices_are_even_and_cover_the_ends():
    assert spread_indices(10, 4) == [0, 3, 6, 9]
    assert spread_indices(5, 10) == [0, 1, 2, 3, 4]
    assert spread_indices(7, None) == list(range(7))


def test_rows_come_from_the_registry_labelled_by_family_with_the_oracles():
    rows = {row.label: row for row in table_rows("quick", device="cpu")}
    assert rows["HPSS"].family == "blind" and rows["mixture (ŝ = m)"].family == "baseline"
    assert rows["Conv-TasNet (supervised)"].family == "supervised"
    assert rows["IRM (oracle)"].family == "oracle" and rows["VQ-VAE codes (oracle)"].family == "oracle"
    assert rows["LASS (beam, 10 beams)"].family == "generative"
    assert len(rows) == len(TABLE_METHODS) + len(ORACLES)
    assert api.get_method("conv-tasnet").label == "Conv-TasNet (supervised)"
    with pytest.raises(ValueError, match="family"):
        api.register_method("x-magic", "a.b:c", description="", needs_checkpoint=False, family="magic")
    assert "x-magic" not in {m.name for m in api.list_methods()}
    assert {m.name for m in api.list_methods("blind")} == set(api.BLIND_METHODS)


def test_a_row_builds_the_registered_separator_and_skips_pairs_without_models():
    class Data:
        classes, sample_rate = ("drums", "guitar"), 22050

    rows = {row.label: row for row in table_rows("quick", device="cpu")}
    assert rows["LASS (beam, 10 beams)"].build(Data()) is None                 # priors for drums/bass only
    mixture = torch.randn(22050)
    expected = api.build_separator("average", Data.classes, sample_rate=22050)(mixture)
    assert torch.equal(rows["mixture (ŝ = m)"].build(Data())(mixture), expected)


def test_there_is_one_method_registry():
    """Only sepcore.api registers methods: no other module defines a MethodSpec or a registry of specs."""
    import ast
    from pathlib import Path

    package = Path(api.__file__).parent
    offenders = []
    for path in package.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name == "MethodSpec" and path.name != "api.py":
                offenders.append(f"{path.name}: class MethodSpec")
            if isinstance(node, ast.FunctionDef) and node.name in ("register", "register_method") and path.name != "api.py":
                offenders.append(f"{path.name}: def {node.name}")
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and path.name != "api.py":
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                offenders += [f"{path.name}: {t.id}" for t in targets if isinstance(t, ast.Name) and "REGISTRY" in t.id]
    assert offenders == []


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
