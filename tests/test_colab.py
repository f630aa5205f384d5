"""The Colab set-up: one repository setting everywhere, and the cell's Colab branch run for real
against a local clone (installing in dry-run mode: the commands are printed, not run)."""

import os
import shutil
import subprocess
import sys

import pytest
import torch

from sepcore.book import colab_cell, list_chapters
from sepcore.paths import REPOSITORY_BRANCH, REPOSITORY_URL, colab_url
from sepcore.utils import REPO_ROOT


def test_repository_url_is_one_setting():
    config = (REPO_ROOT / "_config.yml").read_text()
    assert f"repository:\n  url: {REPOSITORY_URL}\n  branch: {REPOSITORY_BRANCH}\n" in config
    cell = colab_cell()
    assert f'REPOSITORY_URL = "{REPOSITORY_URL}"' in cell
    for chapter in list_chapters():
        assert cell in chapter.read_text(), f"{chapter.name}: Colab cell out of date (run python -m sepcore.book sync)"
    assert colab_url("notebooks/02_elbo.ipynb") in (REPO_ROOT / "README.md").read_text()


def test_every_chapter_page_gets_a_colab_launch_button():
    """The book's launch button opens the page's executed notebook on Colab: it needs the Colab address
    and every chapter of the table of contents committed under book/executed/."""
    import yaml

    config = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    toc = (REPO_ROOT / "_toc.yml").read_text()
    for chapter in list_chapters():
        assert f"book/executed/{chapter.stem}" in toc
        assert (REPO_ROOT / "book" / "executed" / f"{chapter.stem}.ipynb").exists(), f"{chapter.stem} not executed"


@pytest.mark.skipif(shutil.which("git") is None or not (REPO_ROOT / ".git").exists(), reason="needs a git checkout")
def test_colab_cell_clones_installs_and_enters_the_notebooks(tmp_path):
    project = tmp_path / "project"
    env = {**os.environ, "SEPCORE_FORCE_COLAB": "1", "SEPCORE_COLAB_DIR": str(project),
           "SEPCORE_REPOSITORY": str(REPO_ROOT), "SEPCORE_COLAB_DRY_RUN": "1"}
    script = colab_cell() + "\nprint('cwd:', os.getcwd())\n"
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert (project / "scripts" / "colab_setup.py").exists()                  # the clone happened
    assert f"-e {project}[audio,book]" in done.stdout
    assert f"torch=={torch.__version__}" in done.stdout                        # Colab's torch is pinned, kept
    assert done.stdout.strip().endswith(f"cwd: {project / 'notebooks'}")


def test_colab_cell_does_nothing_elsewhere(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEPCORE_")}
    done = subprocess.run([sys.executable, "-c", colab_cell() + "\nprint('cwd:', os.getcwd())\n"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"cwd: {tmp_path}"
