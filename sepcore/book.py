"""Run the book's chapters with papermill and build the HTML with Jupyter Book.

Command line::

    python -m sepcore.book run   [--profile quick|default|full] [CHAPTER ...]
    python -m sepcore.book build
    python -m sepcore.book sync      # regenerate the paired .ipynb files from the .md sources
    python -m sepcore.book list

Chapters are jupytext MyST notebooks ``notebooks/NN_name.md``. ``run`` converts each one,
executes it with papermill (the one executor), and writes the executed notebook to
``book/executed/NN_name.ipynb``, which the book renders without executing it again. A chapter
whose cache key (:mod:`sepcore.book_cache`: its source, the package, the checkpoints, the data
manifests, the profile) matches the one stored in its executed notebook is not executed again;
``run --force`` executes it anyway.

Inside a chapter, :func:`chapter` returns a :class:`Chapter` that knows the profile, the
device, where data and tables go, and writes tables with their provenance.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from sepcore.paths import BUILD, REPOSITORY_BRANCH, REPOSITORY_URL, colab_url
from sepcore.paths import tables_root as table_root  # noqa: F401  (the chapters' name for it)
from sepcore.profiles import PROFILES, check_profile
from sepcore.tables import write_table
from sepcore.utils import REPO_ROOT, quiet, resolve_device, seed_everything

NOTEBOOKS = REPO_ROOT / "notebooks"
EXECUTED = REPO_ROOT / "book" / "executed"
AUDIO = REPO_ROOT / "book" / "audio"          # the executed chapters' clips (book/audio/<chapter>/*.ogg)

def default_data_root() -> Path:
    """``$SEPCORE_DATA`` or ``<repo>/data`` (:func:`sepcore.paths.data_root`)."""
    from sepcore.paths import data_root

    return data_root()


@dataclass
class Chapter:
    """What a chapter needs from its parameters cell, resolved once."""

    name: str
    profile: str = "default"
    seed: int = 0
    device: torch.device = field(default_factory=lambda: resolve_device("auto"))
    data_root: Path = field(default_factory=default_data_root)
    tables_dir: Path = REPO_ROOT / "tables"
    work_dir: Path = BUILD / "work"
    started: float = field(default_factory=time.time)

    @property
    def is_smoke_test(self) -> bool:
        return self.profile == "quick"

    def table(
        self,
        frame: pd.DataFrame,
        name: str,
        *,
        parameters: dict | None = None,
        manifest_hash: str | None = None,
        n_mixtures: int | None = None,
        notes: str = "",
        glue: bool = True,
        float_format: str = ".2f",
    ) -> pd.DataFrame:
        """Write ``tables/<chapter>/<name>.{csv,md,json}`` and glue the table as ``<name>``."""
        parameters = {"seed": self.seed, "device": str(self.device), **(parameters or {})}
        write_table(
            frame, self.tables_dir / name, profile=self.profile, parameters=parameters,
            started=self.started, manifest_hash=manifest_hash, n_mixtures=n_mixtures,
            notes=notes, float_format=float_format,
        )
        if glue:
            self.glue(name, frame, display=False)
        return frame

    def glue(self, name: str, value, display: bool = False) -> None:
        """Make ``value`` available to the prose as ``{glue:}`name```."""
        try:
            from myst_nb import glue as myst_glue
        except ImportError:  # plain python use, outside a notebook build
            return
        myst_glue(name, value, display=display)

    def glue_all(self, values: dict) -> None:
        """Glue every ``{name: value}`` of a section at once (:meth:`glue`, not displayed)."""
        for name, value in values.items():
            self.glue(name, value, display=False)

    def banner(self) -> None:
        """Show the run's settings, a smoke-test warning under ``quick``, and the Colab link."""
        from IPython.display import Markdown, display

        colab = colab_url(f"notebooks/{self.notebook_stem}.ipynb")
        lines = [
            f"Profile **{self.profile}**, seed {self.seed}, device `{self.device}`. "
            f"[Open this chapter in Colab]({colab})."
        ]
        if self.is_smoke_test:
            lines += [
                "", ":::{warning}",
                "This page was executed with the **quick** profile: tiny models and few mixtures. "
                "Its numbers are a smoke test of the code, not results. The committed tables come "
                "from the `default` profile.", ":::",
            ]
        display(Markdown("\n".join(lines)))

    @property
    def notebook_stem(self) -> str:
        matches = sorted(NOTEBOOKS.glob(f"*_{self.name}.md"))
        return matches[0].stem if matches else self.name


def chapter(
    name: str,
    profile: str = "default",
    seed: int = 0,
    device: str = "auto",
    data_root: str = "",
    out_dir: str = "",
) -> Chapter:
    """Resolve a chapter's parameters cell into a :class:`Chapter` and seed everything."""
    check_profile(profile)
    seed_everything(seed)
    tables = Path(out_dir) if out_dir else table_root(profile)
    ch = Chapter(
        name=name,
        profile=profile,
        seed=seed,
        device=resolve_device(device),
        data_root=Path(data_root) if data_root else default_data_root(),
        tables_dir=tables / name,
        work_dir=BUILD / profile / "work" / name,
    )
    ch.work_dir.mkdir(parents=True, exist_ok=True)
    stem = os.environ.get("SEPCORE_AUDIO_FILES")  # set by run_chapters to the executing notebook's stem
    if stem:                                       # clips as files beside the book, not base64
        from sepcore import viz

        shutil.rmtree(AUDIO / stem, ignore_errors=True)
        viz.set_audio_files(AUDIO / stem, f"../audio/{stem}")
    return ch


# --------------------------------------------------------------------------- runner

def list_chapters() -> list[Path]:
    """The chapter sources, in book order (their ``NN_`` prefix)."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.md"))


def select_chapters(names: list[str]) -> list[Path]:
    chapters = list_chapters()
    if not names:
        return chapters
    selected = []
    for name in names:
        hits = [p for p in chapters if p.stem == name or p.stem.split("_", 1)[1] == name or p.stem.startswith(name)]
        if not hits:
            known = ", ".join(p.stem for p in chapters)
            raise SystemExit(f"no chapter matches {name!r}; known chapters: {known}")
        selected += [h for h in hits if h not in selected]
    return selected


def _to_ipynb(source: Path, target: Path) -> None:
    import jupytext

    notebook = jupytext.read(source)
    notebook.metadata.pop("jupytext", None)
    for index, cell in enumerate(notebook.cells):  # stable ids: re-syncing changes nothing
        cell["id"] = f"cell-{index:03d}"
    target.parent.mkdir(parents=True, exist_ok=True)
    jupytext.write(notebook, target, fmt="ipynb")


COLAB_CELL_FIRST_LINE = "# Colab set-up: on Colab, clone and install this project (keeping Colab's CUDA torch); elsewhere, nothing."


def colab_cell() -> str:
    """The source of every chapter's hidden first code cell, from :data:`sepcore.paths.REPOSITORY_URL`.

    On Colab (or with ``SEPCORE_FORCE_COLAB`` set, as the tests do) it clones the repository
    (``SEPCORE_REPOSITORY`` overrides the address, ``SEPCORE_COLAB_DIR`` the folder), installs it
    with ``scripts/colab_setup.py`` and moves into its ``notebooks/`` folder.
    """
    return "\n".join([
        COLAB_CELL_FIRST_LINE,
        "import os, subprocess, sys",
        f'REPOSITORY_URL = "{REPOSITORY_URL}"',
        'if "google.colab" in sys.modules or os.environ.get("SEPCORE_FORCE_COLAB"):',
        '    project = os.environ.get("SEPCORE_COLAB_DIR", "/content/sepcore")',
        "    if not os.path.isdir(project):",
        '        subprocess.run(["git", "clone", "--depth=1", "--branch", "' + REPOSITORY_BRANCH + '",',
        '                        os.environ.get("SEPCORE_REPOSITORY", REPOSITORY_URL), project], check=True)',
        '    subprocess.run([sys.executable, os.path.join(project, "scripts", "colab_setup.py"), project], check=True)',
        "    sys.path.insert(0, project)",
        '    os.chdir(os.path.join(project, "notebooks"))',
    ])


def _write_colab_cell(source: Path) -> bool:
    """Replace the Colab cell of chapter ``source`` (MyST) with :func:`colab_cell`; True if it changed."""
    text = source.read_text()
    start = text.find("# Colab set-up")
    if start < 0:
        raise ValueError(f"{source.name}: no Colab set-up cell (its first line starts with '# Colab set-up')")
    end = text.index("\n```", start)
    updated = text[:start] + colab_cell() + text[end:]
    if updated != text:
        source.write_text(updated)
    return updated != text


def _write_repository_settings(config: Path = REPO_ROOT / "_config.yml") -> None:
    """``repository.url`` / ``branch`` of the book's ``_config.yml`` from :mod:`sepcore.paths`."""
    text = config.read_text()
    text = re.sub(r"(?m)^(repository:\n  url: ).*$", lambda m: m.group(1) + REPOSITORY_URL, text)
    text = re.sub(r"(?m)^(  branch: ).*$", lambda m: m.group(1) + REPOSITORY_BRANCH, text)
    config.write_text(text)


def sync_pairs() -> list[Path]:
    """Write each chapter's Colab cell and the book's repository settings from :mod:`sepcore.paths`,
    then regenerate ``notebooks/NN_name.ipynb`` (no outputs) from each ``.md`` source."""
    written = []
    _write_repository_settings()
    for source in list_chapters():
        _write_colab_cell(source)
        target = source.with_suffix(".ipynb")
        _to_ipynb(source, target)
        written.append(target)
    return written


def _finish_executed(path: Path, key: dict) -> None:
    """Tag papermill's injected-parameters cell ``remove-cell`` (the banner already states the profile)
    and store the chapter's cache key (:func:`sepcore.book_cache.store_key`)."""
    import nbformat

    from sepcore.book_cache import store_key

    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    store_key(notebook, key)
    nbformat.write(notebook, path)


def run_chapters(profile: str, names: list[str], parameters: dict | None = None, *, force: bool = False) -> int:
    """Execute chapters with papermill, skipping those whose executed notebook is fresh
    (:mod:`sepcore.book_cache`) unless ``force``; return the number of failures."""
    import papermill

    from sepcore.book_cache import COLLECTORS, cache_key, is_fresh

    check_profile(profile)
    env_path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    os.environ["PYTHONPATH"] = env_path  # the kernel inherits it and imports this checkout
    # Figures must render inline (as PNG) even when the caller set a non-interactive backend
    # such as Agg: with Agg, glued figures would carry only their text repr.
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    staging = BUILD / "staging"
    failed_dir = BUILD / "failed"
    summary = {}
    failures = 0
    executed_any = False
    data_root = (parameters or {}).get("data_root")
    for source in select_chapters(names):
        target = EXECUTED / f"{source.stem}.ipynb"
        key = cache_key(source, profile, parameters, data_root=Path(data_root) if data_root else None)
        if not force and is_fresh(target, key) and not (source.stem in COLLECTORS and executed_any):
            summary[source.stem] = {"status": "cached", "seconds": 0.0}
            print(f"[sepcore.book] {source.stem}: inputs unchanged, reusing {target.name}", flush=True)
            continue
        executed_any = True
        staged = staging / f"{source.stem}.ipynb"
        _to_ipynb(source, staged)
        target.parent.mkdir(parents=True, exist_ok=True)
        print(f"[sepcore.book] running {source.name} (profile={profile})", flush=True)
        os.environ["SEPCORE_AUDIO_FILES"] = source.stem  # its clips go to book/audio/<stem>/ (the kernel inherits it)
        started = time.time()
        try:
            papermill.execute_notebook(
                str(staged), str(target), parameters={"profile": profile, **(parameters or {})},
                cwd=str(NOTEBOOKS), kernel_name="python3", progress_bar=not quiet(),
                log_output=quiet(), request_save_on_cell_execute=True,
            )
            _finish_executed(target, key)
            status = "ok"
        except Exception as error:  # papermill raises PapermillExecutionError and friends
            failures += 1
            status = f"failed: {type(error).__name__}: {str(error).strip().splitlines()[-1] if str(error).strip() else ''}"
            failed_dir.mkdir(parents=True, exist_ok=True)
            if target.exists():
                shutil.move(str(target), failed_dir / target.name)
            print(f"[sepcore.book] {source.name} FAILED; executed notebook kept at {failed_dir / target.name}\n{error}", file=sys.stderr, flush=True)
        summary[source.stem] = {"status": status, "seconds": round(time.time() - started, 1)}
        print(f"[sepcore.book] {source.stem}: {status} in {summary[source.stem]['seconds']} s", flush=True)
    out = BUILD / profile / "run_summary.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    return failures


def build_book() -> int:
    """Build the HTML strictly: warnings are errors, and every page is attempted."""
    missing = [p.stem for p in list_chapters() if not (EXECUTED / f"{p.stem}.ipynb").exists()]
    if missing:
        print(f"[sepcore.book] not executed yet: {', '.join(missing)}. Run `python -m sepcore.book run` first.", file=sys.stderr)
        return 1
    beside_python = Path(sys.executable).parent / "jupyter-book"  # works without an activated venv
    executable = str(beside_python) if beside_python.exists() else "jupyter-book"
    command = [executable, "build", str(REPO_ROOT), "-W", "-n", "--keep-going"]
    print("[sepcore.book] " + " ".join(command), flush=True)
    status = subprocess.call(command, cwd=REPO_ROOT)
    if AUDIO.is_dir():   # the pages' <audio src="../audio/..."> live beside book/executed/ in the HTML too
        shutil.copytree(AUDIO, BUILD / "html" / "book" / "audio", dirs_exist_ok=True)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sepcore.book", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute chapters with papermill")
    run.add_argument("--profile", default="default", choices=PROFILES)
    run.add_argument("--seed", type=int, default=None)
    run.add_argument("--device", default=None)
    run.add_argument("--data-root", default=None)
    run.add_argument("--force", action="store_true", help="execute even the chapters whose cache key is unchanged")
    run.add_argument("chapters", nargs="*", help="chapter names (e.g. elbo or 02_elbo); all when omitted")
    sub.add_parser("build", help="build the HTML book from the executed chapters")
    sub.add_parser("sync", help="regenerate the paired .ipynb files from the .md chapters")
    sub.add_parser("list", help="list the chapters in book order")
    args = parser.parse_args(argv)
    if args.command == "run":
        extra = {k: v for k, v in {"seed": args.seed, "device": args.device, "data_root": args.data_root}.items() if v is not None}
        failures = run_chapters(args.profile, args.chapters, extra, force=args.force)
        if failures:
            print(f"[sepcore.book] {failures} chapter(s) failed", file=sys.stderr)
        return 1 if failures else 0
    if args.command == "build":
        return build_book()
    if args.command == "sync":
        for path in sync_pairs():
            print(path.relative_to(REPO_ROOT))
        return 0
    for path in list_chapters():
        print(path.stem)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
