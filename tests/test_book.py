"""The chapters follow the book's contract: parameters first, kernelspec, paired notebooks in sync."""

import jupytext
import pytest

from sepcore.book import EXECUTED, list_chapters, select_chapters, table_root
from sepcore.utils import REPO_ROOT

CHAPTERS = list_chapters()
REQUIRED_PARAMETERS = ("profile", "seed", "device", "data_root", "out_dir")


def test_there_are_chapters_and_the_toc_lists_them():
    assert CHAPTERS, "no chapters found in notebooks/"
    toc = (REPO_ROOT / "_toc.yml").read_text()
    for path in CHAPTERS:
        assert f"book/executed/{path.stem}" in toc, f"{path.name} is missing from _toc.yml"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_first_code_cell_is_the_parameters_cell(path):
    notebook = jupytext.read(path)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    first = code[0]
    assert "parameters" in first.metadata.get("tags", []), f"{path.name}: first code cell must be tagged parameters"
    names = {line.split("=")[0].strip() for line in first.source.splitlines() if "=" in line}
    assert set(REQUIRED_PARAMETERS) <= names, f"{path.name}: parameters cell lacks {set(REQUIRED_PARAMETERS) - names}"
    assert "!pip" not in path.read_text(), f"{path.name}: no !pip cells (use the hidden Colab cell)"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_paired_notebook_is_in_sync(path):
    paired = path.with_suffix(".ipynb")
    assert paired.exists(), f"{paired.name} missing: run `python -m sepcore.book sync`"
    source = [(c.cell_type, c.source) for c in jupytext.read(path).cells]
    pair = [(c.cell_type, c.source) for c in jupytext.read(paired).cells]
    assert source == pair, f"{paired.name} is out of date: run `python -m sepcore.book sync`"


def test_quick_tables_never_overwrite_committed_ones():
    assert table_root("default") == REPO_ROOT / "tables"
    assert table_root("quick") != table_root("default")
    assert EXECUTED.parent.name == "book"


def test_chapter_selection():
    first = CHAPTERS[0]
    assert select_chapters([first.stem]) == [first]
    assert select_chapters([first.stem.split("_", 1)[1]]) == [first]
    with pytest.raises(SystemExit, match="no chapter matches"):
        select_chapters(["no-such-chapter"])


def test_book_build_reads_a_rerun_after_a_failure(tmp_path, monkeypatch):
    import pytest

    from benchmarks import book_build

    monkeypatch.setattr(book_build, "list_chapters", lambda: [tmp_path / "02_a.md", tmp_path / "03_b.md"])
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    first.write_text("[sepcore.book] 02_a: ok in 5.0 s\n[sepcore.book] 03_b: failed: Error in 1.0 s\n")
    second.write_text("[sepcore.book] 03_b: ok in 7.5 s\n")
    assert book_build.chapter_seconds([str(first), str(second)]) == {"02_a": 5.0, "03_b": 7.5}
    with pytest.raises(SystemExit, match="03_b"):
        book_build.chapter_seconds([str(second), str(first)])          # its last run failed
