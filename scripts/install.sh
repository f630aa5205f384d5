#!/usr/bin/env bash
# Install everything the project needs on a fresh Debian machine (no GPU needed).
#   bash scripts/install.sh            # system packages + .venv with the package and all extras
# Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# System packages: ffmpeg (museval imports stempeg, which looks for it), FluidSynth and a
# General MIDI SoundFont (the embedded Slakh-format dataset is rendered with them), and
# headless Chromium with a font (python -m sepcore.book_check opens the built book in it).
need_apt=0
for bin in ffmpeg fluidsynth chromium; do command -v "$bin" >/dev/null || need_apt=1; done
[ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || need_apt=1
if [ "$need_apt" = 1 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    ffmpeg fluidsynth fluid-soundfont-gm libsndfile1 chromium fonts-dejavu-core >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then "$PYTHON" -m venv .venv; fi
. .venv/bin/activate
python -m pip install -q --upgrade pip

# torch first and pinned: an unpinned torch (asked for by any package) would pull GBs of
# CUDA wheels. The package itself only asks for torch>=2.4, so Colab keeps its own build.
python -c "import torch" 2>/dev/null || python -m pip install -q "torch==2.13.0"
# torchaudio declares no dependencies; --no-deps keeps pip from touching torch.
python -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('torchaudio') is None)" \
  || python -m pip install -q --no-deps "torchaudio==2.11.0"
python scripts/fix_torchaudio.py

python -m pip install -q -e ".[audio,book,dev]"
python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" >/dev/null
echo "install: done ($(python -c 'import torch; print("torch", torch.__version__)'))"
