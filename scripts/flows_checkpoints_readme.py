"""Write checkpoints/flows/README.md from the checkpoints' own metadata (sizes, steps, CPU time, losses)."""

from pathlib import Path

import torch

from sepcore.checkpoints import checkpoints_in

FOLDER = Path(__file__).resolve().parent.parent / "checkpoints" / "flows"
FIT = ("OMP_NUM_THREADS=1 python -m sepcore.train.flow --profile default --dataset {dataset} --source {source} "
       "--cpu-minutes {minutes:g}")
OLD = ("OMP_NUM_THREADS=1 nice -n 5 python -m sepcore.train.flow --profile default --dataset {dataset} --source {source} "
       "--steps {steps} --max-minutes {minutes:g}")


def fit_row(path, payload, command) -> str:
    meta = payload["metadata"]
    last = meta["history"][-1]
    return (f"| `{path.relative_to(FOLDER)}` | {path.stat().st_size / 2**20:.2f} MB | {meta['step']:,} of "
            f"{meta['planned_steps']:,} | {meta['best_step']:,} | {meta['cpu_seconds'] / 60:.1f} | {meta['best_val']:.4f} | "
            f"{last.get('nll_clean', float('nan')):.3f} / {last.get('nll_noisy', float('nan')):.3f} | "
            f"{meta.get('stopped_by', 'running (checkpoint written during training)')} | `{command}` |")


def main():
    fit_rows, old_rows, ablation_rows = [], [], []
    for path, payload in checkpoints_in(FOLDER / "ablation"):
        dataset, source = path.stem.removesuffix("_actnorm").split("_", 1)
        command = (FIT.format(dataset=dataset, source=source, minutes=payload["metadata"]["plan"]["cpu_minutes"])
                   + f" --steps {payload['metadata']['plan']['steps']} --conditioned-actnorm")
        ablation_rows.append(fit_row(path, payload, command))
    for path, payload in checkpoints_in(FOLDER):
        meta = payload["metadata"]
        dataset, source = path.stem.split("_", 1)
        last = meta["history"][-1]
        size = f"{path.stat().st_size / 2**20:.2f} MB"
        if "planned_steps" in meta:                                   # sepcore.train.fit (validated loop)
            command = FIT.format(dataset=dataset, source=source, minutes=meta["plan"]["cpu_minutes"])
            fit_rows.append(fit_row(path, payload, command))
            continue
        train = meta["train_config"]
        command = OLD.format(dataset=dataset, source=source, steps=train["steps"], minutes=train["max_minutes"])
        old_rows.append(f"| `{path.name}` | {size} | {meta['steps_done']:,} | {meta['wall_seconds'] / 60:.1f} | "
                        f"{last['nll_clean']:.3f} / {last['nll_noisy']:.3f} | `{command}` |")
    config = torch.load(next(FOLDER.glob("*.pt")), map_location="cpu", weights_only=True)["config"]
    text = """# Flow priors

One noise-conditioned FloWaveNet-style prior per source class (`sepcore.models.flow.FlowPrior`), trained
by `sepcore.train.flow` on `x + sigma * eps` with `sigma = 0` for a quarter of each batch and
`log sigma ~ U[log 0.01, log 1]` otherwise (batch 8, crops of 2048 samples, Adam, lr 2e-3).
Config of every prior (`FlowConfig.default()`; the Slakh priors at 22050 Hz): """ + ", ".join(
        f"{k}={v}" for k, v in config.items() if k not in ("source", "sample_rate")) + """.

## Trained with the validated, CPU-budgeted loop (`sepcore.train.fit`)

One process per prior, `OMP_NUM_THREADS=1`. The budget is CPU time: the speed over the first 30
steps plans the step count and the cosine learning-rate schedule (100 warm-up steps). Every 200
steps the NLL of 32 fixed validation crops (a quarter clean, the rest at σ = 0.01, 0.1 and 1, fixed
noise) is evaluated; the file holds the best-validation weights, and the run stops early after 10
evaluations without a gain of 1e-3. `<out>.state.pt` (not committed) resumes the same command.
Learning curves: `tables/training/flow_<dataset>_<source>.csv`. NLLs are in nats per sample.

| file | size | steps (done of planned) | best step | CPU minutes | best validation NLL | validation NLL clean / noisy | stopped by | command |
|---|---|---|---|---|---|---|---|---|
""" + "\n".join(fit_rows) + """

## Ablation: noise-conditioned ActNorm (`ablation/`)

The toy flows again with ActNorm's shift and scale made functions of σ (`FlowConfig.conditioned_actnorm`),
trained with the same loop for **the same number of steps** as the plain flows above (the step count
binds; the CPU budget is only a cap), so the learning-rate schedules match. Compared in the Langevin
chapter (`tables/langevin/escapes`, `tables/langevin/escapes_denoising`).

| file | size | steps (done of planned) | best step | CPU minutes | best validation NLL | validation NLL clean / noisy | stopped by | command |
|---|---|---|---|---|---|---|---|---|
""" + "\n".join(ablation_rows) + """

## Earlier checkpoints (wall-clock budgets, training loss only)

Trained by an earlier release with a step budget and a wall-clock cap; the last column pair is the
**training** loss of the last logging window (no validation split was used). That loop has since
been replaced by `sepcore.train.fit` (its `--max-minutes` option is gone): the command recorded
here is what ran; today's equivalent is `--steps 20000 --cpu-minutes 35`, with validation and a
cosine schedule, so its weights would differ.

| file | size | steps | wall minutes | training NLL clean / noisy | command |
|---|---|---|---|---|---|
""" + "\n".join(old_rows) + "\n"
    (FOLDER / "README.md").write_text(text)


if __name__ == "__main__":
    main()
