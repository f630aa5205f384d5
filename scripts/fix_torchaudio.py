"""Make torchaudio import beside a CPU-only torch build.

Why: the newest torchaudio on PyPI (2.11.0) ships compiled extensions
(``torchaudio/lib/*.so``) that link against CUDA torch (``libc10_cuda.so``). Installed with
``--no-deps`` beside the CPU build of torch, ``import torchaudio`` then fails while loading
them. The parts the project uses (resampling, spectrograms, Griffin-Lim, filters) are pure
Python on top of torch, so removing those libraries lets torchaudio import and run; only
forced alignment, the RNN-T loss and the CTC decoder are lost.

What it does: nothing when torchaudio already imports (Colab, CUDA torch); otherwise it
removes the extension libraries of the installed torchaudio and checks the import again.
Run with the environment's python: ``python scripts/fix_torchaudio.py``.
"""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys


def imports() -> tuple[bool, str]:
    probe = subprocess.run(
        [sys.executable, "-c", "import torchaudio, torchaudio.functional, torchaudio.transforms"],
        capture_output=True, text=True,
    )
    return probe.returncode == 0, probe.stderr.strip().splitlines()[-1:] and probe.stderr.strip().splitlines()[-1]


def main() -> int:
    ok, message = imports()
    if ok:
        print("torchaudio imports as installed; nothing to do.")
        return 0
    spec = importlib.util.find_spec("torchaudio")
    if spec is None or spec.origin is None:
        print("torchaudio is not installed.", file=sys.stderr)
        return 1
    lib = pathlib.Path(spec.origin).parent / "lib"
    removed = sorted(lib.glob("*.so"))
    for path in removed:
        path.unlink()
    print(f"removed {len(removed)} CUDA-linked extension(s) from {lib} after: {message}")
    ok, message = imports()
    if not ok:
        print(f"torchaudio still fails to import: {message}", file=sys.stderr)
        return 1
    print("torchaudio now imports (pure-Python transforms on CPU torch).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
