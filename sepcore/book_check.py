"""Check the rendered HTML book the way a reader sees it, in headless Chromium.

::

    python -m sepcore.book_check [--html _build/html] [--screenshot _build/results.png]

For every page in ``_toc.yml`` the built HTML is opened in headless Chromium (Debian package
``chromium``) with ``--dump-dom``, and the check fails when

- the page is missing, or Chromium cannot load it;
- the page shows a Python traceback, an error output, or papermill's error marker, or
  markup that reached the reader unrendered (a ``:::{warning}`` directive, a glue role);
- an audio player's file (``<audio src=...>``) is missing or cannot be decoded, or a
  player has no sound at all (neither a ``src`` nor an embedded ``<source>``);
- a chapter page (``book/executed/...``) shows no figure (``<img>``) although its executed
  notebook produced one, likewise for tables (``<table>``) and audio players (``<audio>``),
  or it shows none of the three at all.

It also takes a screenshot of the results page (``book/executed/12_results``; the last
chapter page while there is none) as an artifact of the build, and writes
``<html>/../book_check.json`` with the counts per page. Chromium runs with a fresh profile,
no network services and no sandbox (containers run as root)::

    chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run
             --disable-background-networking --disable-component-update --disable-sync
             --user-data-dir=<fresh temporary folder> --dump-dom file:///.../page.html

Exit status: 0 when every page passes, 1 when one fails, 2 when Chromium is missing.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from sepcore.utils import REPO_ROOT

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--mute-audio",
)
RESULTS_PAGE = "book/executed/12_results"
CHAPTER_PREFIX = "book/executed/"
#: What on a page counts as an execution error shown to the reader.
ERROR_PATTERNS = {
    "a Python traceback": re.compile(r"Traceback \(most recent call last\)"),
    "an error output": re.compile(r'class="[^"]*\boutput\b[^"]*\btraceback\b'),
    "papermill's error marker": re.compile(r'id="papermill-error-cell"|An Exception was encountered at'),
}
#: Markup that should have been rendered but reached the reader as text (outside code blocks).
UNRENDERED_PATTERNS = {
    "an unrendered MyST directive": re.compile(r":::\s*\{[a-z-]+\}"),
    "an unrendered glue role": re.compile(r"\{glue:[a-z]*\}`"),
}


@dataclass
class PageReport:
    """What one rendered page shows, and why it fails (``problems`` empty when it passes)."""

    page: str
    chapter: bool
    images: int = 0
    tables: int = 0
    audio: int = 0
    expected: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def toc_pages(toc_path: Path) -> list[str]:
    """Every document of a Jupyter Book 1 ``_toc.yml``, root first, in order (no suffix)."""
    toc = yaml.safe_load(toc_path.read_text())
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(str(entry["file"]))
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return [re.sub(r"\.(md|ipynb)$", "", page) for page in pages]


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run_chromium(chromium: str, url: str, *extra: str, timeout: float = 90.0) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="sepcore-chromium-") as profile:
        command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def dump_dom(chromium: str, page: Path) -> str:
    """The DOM of ``page`` after Chromium has loaded it (scripts run, offline)."""
    result = _run_chromium(chromium, page.resolve().as_uri(), "--virtual-time-budget=3000", "--dump-dom")
    if result.returncode != 0 or "<html" not in result.stdout.lower():
        raise RuntimeError(f"Chromium could not load {page} (exit {result.returncode}): {result.stderr.strip()[-500:]}")
    return result.stdout


def screenshot(chromium: str, page: Path, target: Path, width: int = 1280, height: int = 2400) -> Path:
    """A PNG of ``page`` at ``width`` x ``height`` pixels."""
    target.parent.mkdir(parents=True, exist_ok=True)
    result = _run_chromium(chromium, page.resolve().as_uri(), "--virtual-time-budget=3000",
                           f"--window-size={width},{height}", f"--screenshot={target.resolve()}")
    if result.returncode != 0 or not target.exists():
        raise RuntimeError(f"Chromium could not screenshot {page}: {result.stderr.strip()[-500:]}")
    return target


def article(dom: str) -> str:
    """The page's main content (the theme's ``<article>``), or the whole DOM when there is none."""
    match = re.search(r"<article\b.*?</article>", dom, flags=re.S | re.I)
    return match.group(0) if match else dom


def count_elements(dom: str) -> dict[str, int]:
    """Figures, tables and audio players in the page's main content."""
    body = article(dom)
    return {
        "images": len(re.findall(r"<img\b", body, flags=re.I)),
        "tables": len(re.findall(r"<table\b", body, flags=re.I)),
        "audio": len(re.findall(r"<audio\b", body, flags=re.I)),
    }


def find_errors(dom: str) -> list[str]:
    """Execution errors and unrendered markup visible in the page's main content."""
    body = article(dom)
    found = [name for name, pattern in ERROR_PATTERNS.items() if pattern.search(body)]
    prose = re.sub(r"<pre\b.*?</pre>", "", body, flags=re.S | re.I)
    found += [name for name, pattern in UNRENDERED_PATTERNS.items() if pattern.search(prose)]
    return found


def broken_audio(dom: str, page_path: Path) -> list[str]:
    """The page's audio players whose sound would not load: a ``src`` file that is missing or
    that libsndfile cannot decode (or holds no samples), or a player with no source at all."""
    import soundfile

    problems = []
    for player in re.findall(r"<audio\b.*?</audio>|<audio\b[^>]*/>", article(dom), flags=re.S | re.I):
        sources = re.findall(r'\bsrc="([^"]+)"', player)
        if not sources:
            problems.append("an audio player without a source")
        for src in sources:
            if src.startswith("data:"):
                continue
            path = (page_path.parent / src.split("?")[0]).resolve()
            try:
                if soundfile.info(str(path)).frames <= 0:
                    problems.append(f"an empty audio file {src}")
            except (RuntimeError, OSError, soundfile.LibsndfileError):
                problems.append(f"an audio file that does not load: {src}")
    return problems


def notebook_expectations(notebook: Path) -> dict[str, int]:
    """How many images, tables and audio players the executed notebook produced (glued ones too)."""
    counts = {"images": 0, "tables": 0, "audio": 0, "errors": 0}
    if not notebook.exists():
        return counts
    cells = json.loads(notebook.read_text()).get("cells", [])
    for cell in cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                counts["errors"] += 1
            for mime, value in output.get("data", {}).items():
                text = "".join(value) if isinstance(value, list) else str(value)
                if mime.endswith("image/png") or mime.endswith("image/svg+xml") or mime.endswith("image/jpeg"):
                    counts["images"] += 1
                if mime.endswith("text/html"):
                    counts["tables"] += len(re.findall(r"<table\b", text, flags=re.I))
                    counts["audio"] += len(re.findall(r"<audio\b", text, flags=re.I))
    return counts


def judge_page(page: str, dom: str, expected: dict[str, int] | None) -> PageReport:
    """Apply the rules of the module docstring to one page's DOM."""
    report = PageReport(page=page, chapter=page.startswith(CHAPTER_PREFIX), **count_elements(dom))
    for error in find_errors(dom):
        report.problems.append(f"shows {error}")
    if report.chapter:
        expected = expected or {}
        report.expected = expected
        if expected.get("errors"):
            report.problems.append(f"its notebook holds {expected['errors']} error output(s)")
        for kind, label in (("images", "figure"), ("tables", "table"), ("audio", "audio player")):
            if expected.get(kind, 0) > 0 and getattr(report, kind) == 0:
                report.problems.append(f"shows no {label} although its notebook produced {expected[kind]}")
        if report.images + report.tables + report.audio == 0:
            report.problems.append("shows no figure, table or audio player at all")
    return report


def check_book(html: Path, toc: Path, executed: Path, chromium: str) -> list[PageReport]:
    reports = []
    for page in toc_pages(toc):
        path = html / f"{page}.html"
        if not path.exists():
            reports.append(PageReport(page=page, chapter=page.startswith(CHAPTER_PREFIX),
                                      problems=[f"missing: {path} was not built"]))
            continue
        try:
            dom = dump_dom(chromium, path)
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            reports.append(PageReport(page=page, chapter=page.startswith(CHAPTER_PREFIX), problems=[str(error)]))
            continue
        expected = notebook_expectations(executed / f"{Path(page).name}.ipynb") if page.startswith(CHAPTER_PREFIX) else None
        report = judge_page(page, dom, expected)
        report.problems += [f"shows {problem}" for problem in broken_audio(dom, path)]
        reports.append(report)
    return reports


def chapters_outside_toc(toc: Path, notebooks: Path) -> list[str]:
    """Chapter sources ``notebooks/NN_name.md`` that no ``_toc.yml`` entry renders (a note, not a failure)."""
    listed = {Path(page).name for page in toc_pages(toc)}
    return [p.stem for p in sorted(notebooks.glob("[0-9][0-9]_*.md")) if p.stem not in listed]


def screenshot_page(reports: list[PageReport], html: Path) -> Path | None:
    """The results page if it was built, else the last chapter page that exists."""
    if (html / f"{RESULTS_PAGE}.html").exists():
        return html / f"{RESULTS_PAGE}.html"
    chapters = [r.page for r in reports if r.chapter and (html / f"{r.page}.html").exists()]
    return html / f"{chapters[-1]}.html" if chapters else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sepcore.book_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", default=str(REPO_ROOT / "_build" / "html"), help="the built HTML book")
    parser.add_argument("--screenshot", default=str(REPO_ROOT / "_build" / "results.png"), help="where the PNG goes")
    parser.add_argument("--toc", default=str(REPO_ROOT / "_toc.yml"))
    parser.add_argument("--executed", default=str(REPO_ROOT / "book" / "executed"), help="executed notebooks")
    parser.add_argument("--notebooks", default=str(REPO_ROOT / "notebooks"), help="chapter sources")
    args = parser.parse_args(argv)
    html = Path(args.html)
    chromium = find_chromium()
    if chromium is None:
        print("book_check: Chromium not found; install it with `apt-get install -y --no-install-recommends chromium`.",
              file=sys.stderr)
        return 2
    if not html.is_dir():
        print(f"book_check: {html} does not exist; build the book first: python -m sepcore.book build", file=sys.stderr)
        return 1
    reports = check_book(html, Path(args.toc), Path(args.executed), chromium)
    shot = screenshot_page(reports, html)
    shot_path = None
    if shot is not None:
        try:
            shot_path = str(screenshot(chromium, shot, Path(args.screenshot)))
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            print(f"book_check: screenshot failed: {error}", file=sys.stderr)
    print(f"{'page':<34} {'img':>4} {'table':>5} {'audio':>5}  status")
    for report in reports:
        status = "ok" if report.ok else "FAIL: " + "; ".join(report.problems)
        print(f"{report.page:<34} {report.images:>4} {report.tables:>5} {report.audio:>5}  {status}")
    failed = [r for r in reports if not r.ok]
    orphans = chapters_outside_toc(Path(args.toc), Path(args.notebooks))
    for stem in orphans:
        print(f"book_check: note: notebooks/{stem}.md is not in {Path(args.toc).name}, so the book does not show it")
    summary = {"html": str(html), "screenshot": shot_path, "n_pages": len(reports), "n_failed": len(failed),
               "chapters_outside_toc": orphans, "pages": [{**asdict(r), "ok": r.ok} for r in reports]}
    (html.parent / "book_check.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"book_check: {len(reports) - len(failed)}/{len(reports)} pages pass; screenshot: {shot_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
