"""Install this project on Colab (or any machine with its own CUDA torch), keeping that torch.

    python scripts/colab_setup.py /content/sepcore            # what each chapter's Colab cell runs
    SEPCORE_COLAB_DRY_RUN=1 python scripts/colab_setup.py DIR  # print the commands, run nothing

Steps: the system packages that render the embedded Slakh-format dataset (FluidSynth, a General
MIDI SoundFont, ffmpeg) when they are missing and ``apt-get`` is there; then
``pip install -e DIR[audio,book]`` under a constraints file that pins ``torch`` and
``torchaudio`` to the versions already installed, so pip never swaps Colab's CUDA build for
another wheel. Standard library only: it runs before the package is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata

KEPT = ("torch", "torchaudio")
SYSTEM_PACKAGES = ("fluidsynth", "fluid-soundfont-gm", "ffmpeg")
SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"


def installed_pins(names=KEPT) -> list[str]:
    """``name==version`` for each of ``names`` that is installed (the builds pip must keep)."""
    pins = []
    for name in names:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return pins


def commands(target: str, constraints: str) -> list[list[str]]:
    """The commands that install the project at ``target`` under ``constraints`` (a file path)."""
    steps = []
    missing_system = shutil.which("fluidsynth") is None or not os.path.exists(SOUNDFONT) or shutil.which("ffmpeg") is None
    if missing_system and shutil.which("apt-get"):
        steps.append(["apt-get", "install", "-y", "-qq", *SYSTEM_PACKAGES])
    steps.append([sys.executable, "-m", "pip", "install", "-q", "-c", constraints, "-e", f"{target}[audio,book]"])
    return steps


def main(argv=None) -> list[list[str]]:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not os.path.isdir(args[0]):
        raise SystemExit("usage: python scripts/colab_setup.py PROJECT_DIR (a clone of the repository)")
    target = os.path.abspath(args[0])
    dry_run = bool(os.environ.get("SEPCORE_COLAB_DRY_RUN"))
    with tempfile.NamedTemporaryFile("w", suffix="-constraints.txt", delete=False) as handle:
        handle.write("\n".join(installed_pins()) + "\n")
    print("constraints:", ", ".join(installed_pins()) or "none", flush=True)
    steps = commands(target, handle.name)
    for step in steps:
        print("$", " ".join(step), flush=True)
        if not dry_run:
            subprocess.run(step, check=True)
    return steps


if __name__ == "__main__":
    main()
