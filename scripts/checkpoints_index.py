"""Write the table of checkpoints/README.md (every committed .pt file, its size, its family README)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "checkpoints"
HEADER = """# Checkpoints

Small models trained by the project's own training commands, loaded by the `default` profile of
the chapters (a chapter's `retrain=True` parameter, or the `quick` profile, trains anew). Each
family's README gives, per checkpoint, the exact command that trained it, its steps, its CPU or
wall time, the data and the final losses; every `.pt` file also stores its config, the software
versions and its metadata (`python -m sepcore info CHECKPOINT` prints them). Training state files
(`*.state.pt`: optimiser and curve, for resuming) are not committed.
"""


def main():
    files = sorted(p for p in ROOT.rglob("*.pt") if not p.name.endswith(".state.pt"))
    total = sum(p.stat().st_size for p in files) / 2**20
    family = {p: p.relative_to(ROOT).parts[0] for p in files}          # the README of the top folder (flows/ablation -> flows)
    rows = [f"| `checkpoints/{p.relative_to(ROOT)}` | {p.stat().st_size / 2**20:.2f} | "
            f"[{family[p]}/README.md]({family[p]}/README.md) |" for p in files]
    text = (HEADER + f"\nTotal: {total:.1f} MB in {len(files)} files (budget: 20 MB per file, 150 MB in all).\n\n"
            "| checkpoint | size (MB) | command, time, data |\n|---|---|---|\n" + "\n".join(rows) + "\n")
    (ROOT / "README.md").write_text(text)


if __name__ == "__main__":
    main()
