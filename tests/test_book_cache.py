"""Executed chapters are reused exactly while their inputs are unchanged."""

import json

import nbformat
import pytest

from sepcore import book, book_cache


@pytest.fixture
def tree(tmp_path):
    """A miniature repository: one chapter, a package file, a checkpoint, a rendered dataset."""
    (tmp_path / "notebooks").mkdir()
    chapter = tmp_path / "notebooks" / "01_demo.md"
    chapter.write_text("# demo\n")
    (tmp_path / "sepcore").mkdir()
    (tmp_path / "sepcore" / "core.py").write_text("x = 1\n")
    (tmp_path / "checkpoints" / "flows").mkdir(parents=True)
    (tmp_path / "checkpoints" / "flows" / "toy.pt").write_bytes(b"weights")
    (tmp_path / "data" / "slakh-embedded-default" / "manifests").mkdir(parents=True)
    (tmp_path / "data" / "slakh-embedded-default" / "dataset.json").write_text(
        json.dumps({"fingerprint": "f", "config": {"n_workers": 2}, "tracks": [{"track": "T1", "sha256": "a"}]}))
    return tmp_path, chapter


REAL_KEY = book_cache.cache_key


def key(tree, **kwargs):
    root, chapter = tree
    return REAL_KEY(chapter, kwargs.pop("profile", "default"), kwargs.pop("parameters", None),
                                data_root=root / "data", root=root)


def test_the_key_follows_every_input_and_nothing_else(tree):
    root, chapter = tree
    base = key(tree)
    assert key(tree) == base                                              # deterministic
    (root / "checkpoints" / "flows" / "toy.pt.state.pt").write_bytes(b"resume")
    assert key(tree) == base                                              # resume states do not count
    (root / "checkpoints" / "lass").mkdir()
    (root / "checkpoints" / "lass" / "lass_spectral_settings.json").write_text("{}")
    assert key(tree) == base                                              # nor what a chapter writes there
    assert key(tree, profile="quick") != base
    assert key(tree, parameters={"seed": 1}) != base
    dataset = root / "data" / "slakh-embedded-default"
    (dataset / "manifests" / "train.csv").write_text("a\n")                # chunk manifests are derived: not counted
    (dataset / "dataset.json").write_text(
        json.dumps({"fingerprint": "f", "config": {"n_workers": 8}, "tracks": [{"track": "T1", "sha256": "a"}]}))
    (root / "data" / "slakh-embedded-quick").mkdir()
    (root / "data" / "slakh-embedded-quick" / "dataset.json").write_text("{}")   # another profile's data
    assert key(tree) == base
    changes = [lambda: chapter.write_text("# demo, edited\n"),
               lambda: (root / "sepcore" / "core.py").write_text("x = 2\n"),
               lambda: (root / "checkpoints" / "flows" / "toy.pt").write_bytes(b"retrained"),
               lambda: (dataset / "dataset.json").write_text(
                   json.dumps({"fingerprint": "f", "tracks": [{"track": "T1", "sha256": "b"}]})),   # re-rendered audio
               lambda: (dataset / "dataset.json").unlink()]
    seen = {json.dumps(base, sort_keys=True)}
    for change in changes:
        change()
        now = json.dumps(key(tree), sort_keys=True)
        assert now not in seen, change
        seen.add(now)


def test_fresh_chapters_are_skipped_and_stale_ones_executed(tree, tmp_path, monkeypatch):
    root, chapter = tree
    executed = tmp_path / "executed"
    executed.mkdir()
    monkeypatch.setattr(book, "EXECUTED", executed)
    monkeypatch.setattr(book, "BUILD", tmp_path / "build")
    monkeypatch.setattr(book, "select_chapters", lambda names: [chapter])
    monkeypatch.setattr(book_cache, "cache_key", lambda source, profile, parameters, data_root=None: key(tree, profile=profile))
    runs = []

    def fake_execute(staged, target, **kwargs):
        runs.append(target)
        nbformat.write(nbformat.v4.new_notebook(), target)

    import papermill
    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    monkeypatch.setattr(book, "_to_ipynb", lambda source, target: None)
    assert book.run_chapters("default", []) == 0 and len(runs) == 1      # nothing stored yet: executed
    assert book_cache.stored_key(executed / "01_demo.ipynb") == key(tree)
    assert book.run_chapters("default", []) == 0 and len(runs) == 1      # unchanged: reused
    assert book.run_chapters("default", [], force=True) == 0 and len(runs) == 2
    chapter.write_text("# demo, edited\n")
    assert book.run_chapters("default", []) == 0 and len(runs) == 3      # source changed: executed again
    assert book.run_chapters("quick", []) == 0 and len(runs) == 4        # another profile: executed again
