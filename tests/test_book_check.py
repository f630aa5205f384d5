"""The rendered-book check: its page rules on synthetic pages, and one real headless Chromium run."""

import json

import pytest

from sepcore import book_check
from sepcore.book_check import (
    count_elements,
    find_errors,
    judge_page,
    notebook_expectations,
    toc_pages,
)

GOOD = """<html><body><nav><img src="logo.png"></nav><article class="bd-article">
<h1>Chapter</h1><img src="fig.png"><table><tr><td>1</td></tr></table>
<audio controls><source src="data:audio/wav;base64,UklGRg==" type="audio/wav"></audio>
<pre>code with :::{warning} inside a code block is fine</pre></article></body></html>"""
TRACEBACK = GOOD.replace("<h1>Chapter</h1>", '<div class="output traceback highlight-ipythontb"><pre>'
                         "Traceback (most recent call last):\n ValueError</pre></div>")
UNRENDERED = GOOD.replace("<h1>Chapter</h1>", "<p>:::{warning} This page was executed ... :::</p>")


def test_counts_only_the_main_content():
    assert count_elements(GOOD) == {"images": 1, "tables": 1, "audio": 1}      # the navbar logo is not counted


def test_errors_and_unrendered_markup_are_found():
    assert find_errors(GOOD) == []
    assert set(find_errors(TRACEBACK)) == {"a Python traceback", "an error output"}
    assert find_errors(UNRENDERED) == ["an unrendered MyST directive"]
    assert find_errors(GOOD.replace("<h1>", '<div id="papermill-error-cell"></div><h1>')) == ["papermill's error marker"]


def test_chapter_rules():
    page = "book/executed/05_flows"
    assert judge_page(page, GOOD, {"images": 3, "tables": 1, "audio": 2}).ok
    no_figure = judge_page(page, GOOD.replace('<img src="fig.png">', ""), {"images": 1})
    assert no_figure.problems == ["shows no figure although its notebook produced 1"]
    empty = judge_page(page, "<html><article><p>text</p></article></html>", {})
    assert empty.problems == ["shows no figure, table or audio player at all"]
    assert judge_page("book/intro", "<html><article><p>text</p></article></html>", None).ok   # prose pages may be bare
    assert not judge_page(page, GOOD, {"errors": 1}).ok


def test_toc_pages_and_notebook_expectations(tmp_path):
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nparts:\n  - caption: A\n    chapters:\n"
        "      - file: book/executed/03_toy\n        sections:\n          - file: book/executed/03b.ipynb\n"
        "  - caption: B\n    chapters:\n      - file: book/references\n")
    assert toc_pages(tmp_path / "_toc.yml") == ["book/intro", "book/executed/03_toy", "book/executed/03b", "book/references"]
    notebook = {"cells": [{"cell_type": "code", "outputs": [
        {"output_type": "display_data", "data": {"application/papermill.record/image/png": "iVBOR"}},
        {"output_type": "execute_result", "data": {"text/html": ["<table>", "<tr><td><audio></audio><audio></audio>"]}},
        {"output_type": "error", "ename": "ValueError"},
    ]}]}
    (tmp_path / "nb.ipynb").write_text(json.dumps(notebook))
    assert notebook_expectations(tmp_path / "nb.ipynb") == {"images": 1, "tables": 1, "audio": 2, "errors": 1}
    (tmp_path / "notebooks").mkdir()
    for stem in ("03_toy", "13_explore"):
        (tmp_path / "notebooks" / f"{stem}.md").write_text("# chapter")
    assert book_check.chapters_outside_toc(tmp_path / "_toc.yml", tmp_path / "notebooks") == ["13_explore"]


@pytest.mark.skipif(book_check.find_chromium() is None, reason="Chromium is not installed")
def test_headless_chromium_checks_a_tiny_book(tmp_path):
    html = tmp_path / "html"
    (html / "book" / "executed").mkdir(parents=True)
    (html / "book" / "intro.html").write_text("<html><body><article><p>Welcome</p></article></body></html>")
    (html / "book" / "executed" / "03_toy.html").write_text(GOOD)
    (html / "book" / "executed" / "04_data.html").write_text(TRACEBACK)
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nchapters:\n  - file: book/executed/03_toy\n"
        "  - file: book/executed/04_data\n  - file: book/executed/05_missing\n")
    code = book_check.main(["--html", str(html), "--toc", str(tmp_path / "_toc.yml"),
                            "--executed", str(tmp_path / "none"), "--screenshot", str(tmp_path / "shot.png")])
    assert code == 1
    summary = json.loads((tmp_path / "book_check.json").read_text())
    status = {page["page"]: page["problems"] for page in summary["pages"]}
    assert status["book/intro"] == [] and status["book/executed/03_toy"] == []
    assert "shows a Python traceback" in status["book/executed/04_data"]
    assert status["book/executed/05_missing"][0].startswith("missing")
    assert (tmp_path / "shot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"              # the last chapter page


def test_broken_audio_finds_missing_undecodable_and_sourceless_players(tmp_path):
    import numpy as np
    import soundfile

    from sepcore.book_check import broken_audio

    (tmp_path / "audio").mkdir()
    soundfile.write(tmp_path / "audio" / "good.ogg", 0.1 * np.ones(2205, dtype=np.float32), 22050,
                    format="OGG", subtype="VORBIS")
    (tmp_path / "audio" / "junk.ogg").write_bytes(b"not audio")
    page = tmp_path / "executed" / "page.html"
    dom = ('<article><audio controls src="../audio/good.ogg"></audio>'
           '<audio controls><source src="data:audio/wav;base64,UklGRg==" type="audio/wav"></audio>'
           '<audio controls src="../audio/missing.ogg"></audio><audio controls src="../audio/junk.ogg"></audio>'
           "<audio controls></audio></article>")
    problems = broken_audio(dom, page)
    assert problems == ["an audio file that does not load: ../audio/missing.ogg",
                        "an audio file that does not load: ../audio/junk.ogg", "an audio player without a source"]


def test_listening_clips_become_files_at_matched_loudness(tmp_path):
    import numpy as np
    import soundfile

    from sepcore import viz

    loud, quiet = 0.5 * np.sin(np.linspace(0, 400, 22050)), 0.01 * np.sin(np.linspace(0, 300, 22050))
    for clip in (loud, quiet):
        matched = viz.match_loudness(clip.astype(np.float32))
        assert 20 * np.log10(np.sqrt(np.mean(matched ** 2))) == pytest.approx(viz.LISTENING_DBFS, abs=1e-3)
    viz.set_audio_files(tmp_path / "clips", "../audio/ch")
    try:
        html = viz.audio_table({"a": {"mixture": loud, "estimate": quiet}, "b": {"mixture": loud}}, 22050).data
    finally:
        viz.set_audio_files(None)
    files = sorted((tmp_path / "clips").glob("*.ogg"))
    assert len(files) == 2 and html.count("<audio") == 3 and "base64" not in html       # one file per distinct clip
    assert all(f'src="../audio/ch/{f.name}"' in html for f in files)
    assert all(soundfile.info(str(f)).frames == 22050 for f in files)
    assert "base64" in viz.audio(loud, 22050)._repr_html_()                               # embedded elsewhere


def test_listening_gives_a_table_per_chunk_and_one_spectrogram_figure():
    import matplotlib.pyplot as plt
    import torch

    from sepcore import viz

    class Chunks:
        classes, sample_rate = ("drums", "bass"), 8000

        def __getitem__(self, index):
            sources = torch.randn(2, 8000, generator=torch.Generator().manual_seed(index))
            return {"mixture": sources.mean(0), "sources": sources, "id": f"chunk{index}"}

    methods = {"zeros": lambda m: torch.zeros(2, m.shape[-1]), "copies": lambda m: torch.stack([m, m])}
    tables, fig = viz.listening(Chunks(), [0, 1], methods, max_seconds=0.5, max_hz=None)
    assert len(tables) == 2
    html = tables[0].data
    assert html.count("<tr>") == 1 + 4 and html.count("<audio") == 1 + 2 + 2 + 2   # mixture, stems, two methods
    shown = [ax for ax in fig.axes if ax.axison]
    assert len(shown) == 7 and fig.axes[1].axison is False                          # the mixture row: one panel
    plt.close(fig)
