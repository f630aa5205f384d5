"""Rewrite the count sections of checkpoints/lass/README.md from the files themselves: the paper recipe's
tables (``audio_counts_*.pt``) and the counts of every training track (``counts_*.pt``)."""

from pathlib import Path

import torch

FOLDER = Path(__file__).resolve().parent.parent / "checkpoints" / "lass"
START, END = "<!-- counts: start -->", "<!-- counts: end -->"
PAPER_START, PAPER_END = "<!-- paper counts: start -->", "<!-- paper counts: end -->"


def paper_section() -> str:
    """Rows for the paper recipe's count files, read from the files (positions and entries from the tables)."""
    from sepcore.separation.count_files import load_counts

    rows = []
    for path in sorted(FOLDER.glob("audio_counts_*.pt")):
        meta = torch.load(path, map_location="cpu", weights_only=True)["metadata"]
        likelihood = load_counts(path)
        classes = meta.get("classes", ["drums", "bass"])
        config = meta["config"]
        extra = " --classes " + " ".join(classes) if classes != ["drums", "bass"] else ""
        rows.append(f"| `{path.name}` | {path.stat().st_size / 2**20:.1f} MB | `{meta['vqvae']}` (sha256 in the file) | "
                    f"{', '.join(classes)} | {config['n_crops']} random training crops of {config['crop_length']} samples "
                    f"per class, mean mixture | {likelihood.n_positions:,} | {likelihood.nnz:,} | "
                    f"{meta['density_percent']:.4f} % | `OMP_NUM_THREADS=1 python -m sepcore.train.lass audio-counts "
                    f"--profile default --vqvae checkpoints/latents/{meta['vqvae']}{extra}` |")
    return f"""{PAPER_START}
Count likelihoods of the paper's recipe (`sepcore.train.lass audio-counts`; each position counted in
every order of its source codes):

| file | size | codec | classes | data | positions | entries | density | command |
|---|---|---|---|---|---|---|---|---|
""" + "\n".join(rows) + f"\n{PAPER_END}"


def main():
    rows = []
    for path in sorted(FOLDER.glob("counts_*.pt")):
        meta = torch.load(path, map_location="cpu", weights_only=True)["metadata"]
        grid = meta.get("smoothing_grid") or [{}]
        smoothed = max((r["held_out_nats"] for r in grid[1:]), default=float("nan"))
        smoothing = meta.get("smoothing") or {}
        backoff = f"beta {smoothing['beta']}, sigma {smoothing['sigma']:.3g}" if smoothing else "none (raw ratios)"
        rows.append(f"| `{path.name}` | {path.stat().st_size / 2**20:.1f} MB | `{meta['codec']}` | {', '.join(meta['classes'])} | "
                    f"{meta['pairings']} | {meta['train_positions']:,} | {meta['nnz']:,} | {meta['density_percent']:.4f} % | "
                    f"{grid[0].get('unseen_percent', float('nan')):.1f} % | {grid[0].get('held_out_nats', float('nan')):.2f} / "
                    f"{smoothed:.2f} | {backoff} | "
                    f"{meta['cpu_s'] / 60:.1f} | `OMP_NUM_THREADS=1 {meta['command']}` |")
    section = f"""{START}
## Counts from every training track, smoothed (`sepcore.train.counts`)

Pairing 0 mixes the classes' stems of the same training track; each further pairing mixes every
track of the first class with a random track of the second at a random offset. `unseen` is the
share of validation triples (pairing 0 and one re-pairing of the validation split) whose count is
zero; the held-out log-likelihood (nats per position) is that of the raw ratios (unseen triples at
log 1e-16) and of the smoothed table with the back-off chosen on the same validation triples. The
file stores the counts compactly (key gaps and counts as uint8, rare large values beside them);
`log p` is recomputed at load.

| file | size | codec | classes | pairings | positions | entries | density | unseen (validation) | held-out nats raw / smoothed | back-off | CPU minutes | command |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
""" + "\n".join(rows) + f"\n{END}"
    readme = FOLDER / "README.md"
    text = readme.read_text()
    text = text[: text.index(PAPER_START)] + paper_section() + text[text.index(PAPER_END) + len(PAPER_END):]
    if START in text:
        text = text[: text.index(START)] + section + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    readme.write_text(text)


if __name__ == "__main__":
    main()
