"""Write checkpoints/score/README.md from the checkpoints' own metadata (sizes, steps, CPU time, losses)."""

import json
from pathlib import Path

from sepcore.checkpoints import checkpoints_in

FOLDER = Path(__file__).resolve().parent.parent / "checkpoints" / "score"
COMMAND = ("OMP_NUM_THREADS=1 python -m sepcore.train.score_prior --dataset {dataset} --sources {source} "
           "--cpu-minutes {minutes:g}{extra}")


def main():
    rows = []
    for path, payload in checkpoints_in(FOLDER):
        meta, config = payload["metadata"], payload["config"]
        dataset, source = path.stem.split("_", 1)
        extra = "" if dataset == "toy" else f" --channels {config['channels']} --max-dilation {config['max_dilation']}"
        if config.get("n_sources", 1) > 1:                       # a joint model over every class of its name
            source = " ".join(config["source"].split("+"))
            extra = f" --joint --channels {config['channels']}"
        command = COMMAND.format(dataset=dataset, source=source, minutes=meta["plan"]["cpu_minutes"], extra=extra)
        n_params = sum(v.numel() for k, v in payload["state_dict"].items() if k != "frequencies")
        rows.append(f"| `{path.name}` | {path.stat().st_size / 2**20:.2f} MB | {n_params:,} | {config['channels']} x "
                    f"{config['n_blocks']} (dilation ≤ {config['max_dilation']}) | {meta['step']:,} of {meta['planned_steps']:,} | "
                    f"{meta['best_step']:,} | {meta['cpu_seconds'] / 60:.1f} | {meta['best_val']:.4f} | "
                    f"{config['sigma_data']:.4f}; {config['sigma_min']:.2g} to {config['sigma_max']:.3g} | "
                    f"{meta.get('stopped_by', 'running (checkpoint written during training)')} | `{command}` |")
    settings = FOLDER / "langevin_settings.json"
    choice = json.loads(settings.read_text()) if settings.exists() else None
    text = """# Score priors (default profile)

One noise-conditioned denoiser per class (`sepcore.models.score_prior.ScorePrior`: a dilated residual
convolution stack with FiLM noise conditioning and the EDM preconditioning), trained by denoising
score matching (`sepcore.train.score_prior`). Toy: the four waveforms of `sepcore.data.toy`; Slakh:
the embedded dataset's drums, bass and guitar stems. `toy_joint.pt` is one **joint** model over the
four toy classes (MSDM's route, `n_sources = 4`): each training item stacks one crop of every class,
drawn independently, and the model denoises all four channels at once. Each run is one process with `OMP_NUM_THREADS=1`
under `sepcore.train.fit`: a **CPU-time** budget (the speed measured over the first 30 steps plans
the step count and the cosine learning-rate schedule), validation every 200 steps on fixed crops of
the validation split with fixed noise at 8 fixed levels, a plateau stop (10 evaluations without a
gain of 1e-4), best-validation weights rewritten while the run goes on, resumable from
`<out>.state.pt` (not committed). Learning curves: `tables/training/score_<dataset>_<source>.csv`.
The noise range is scaled to each class: `sigma_data` is the RMS of 256 training crops, and the
range is 0.008 to 3 times it.

The validation loss is the EDM-weighted DSM loss (the MSE of the network's unit-variance target;
1 for an untrained network, which is already the Wiener denoiser of the class's RMS).

| file | size | parameters | channels x blocks | steps (done of planned) | best step | CPU minutes | best validation | sigma_data; range | stopped by | command |
|---|---|---|---|---|---|---|---|---|---|---|
""" + "\n".join(rows) + "\n"
    if choice:
        text += ("\n`langevin_settings.json`: the sampler and output that the API method `langevin-score` uses, "
                 f"chosen on {choice['chosen_on']}: **{choice['sampler']}**, **{choice['output']}** output "
                 "(`python -m sepcore.experiments.langevin_slakh --profile default` rewrites it).\n")
    (FOLDER / "README.md").write_text(text)


if __name__ == "__main__":
    main()
