"""Write checkpoints/variational/README.md from the checkpoints' own metadata (steps, CPU time, final terms)."""

import math
from pathlib import Path

from sepcore.checkpoints import checkpoints_in

FOLDER = Path(__file__).resolve().parent.parent / "checkpoints" / "variational"


def _fmt(value, digits=3):
    return "n/a (score priors have no density)" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.{digits}f}"


def main():
    rows = []
    for path, payload in checkpoints_in(FOLDER):
        meta, config = payload["metadata"], payload["config"]
        last = meta["history"][-1]
        prior = meta.get("prior", "flow")
        dataset = meta["dataset"]
        train = meta["train_config"]
        command = (f"OMP_NUM_THREADS=1 python -m sepcore.train.variational --profile default --dataset {dataset}"
                   f" --prior {prior} --steps {train['steps']} --max-minutes {train['max_minutes']:g}")
        if "cpu_seconds" in meta:
            budget = f"{meta['cpu_seconds'] / 60:.1f} CPU"
        else:
            budget = f"{meta['wall_seconds'] / 60:.1f} wall (an earlier release's wall-clock budget)"
        hashes = meta.get("prior_checkpoints")
        hashes = ", ".join(f"{k} `{v}`" for k, v in hashes.items()) if hashes else "not recorded"
        n_params = sum(v.numel() for v in payload["state_dict"].values())
        rows.append(f"| `{path.name}` | {path.stat().st_size / 2**20:.2f} MB | {n_params:,} | {', '.join(config['sources'])} "
                    f"({config['posterior']}) | {prior} priors: {hashes} | {meta['steps_done']:,} of {train['steps']:,} | "
                    f"{budget} | {_fmt(last.get('elbo'))} / {_fmt(last['reconstruction'])} / {_fmt(last.get('kl'))} | "
                    f"`{command}` |")
    text = """# Variational separation encoders

One non-causal WaveNet encoder per source (`sepcore.separation.variational.VariationalSeparator`),
trained by `sepcore.train.variational` to maximise the one-sample ELBO of paper 002 (Eq. 21, corrected
Eq. 23; notebooks/07_variational.md) against fixed priors: the flows `checkpoints/flows/<dataset>_<source>.pt`
(the reproduction) or the score priors `checkpoints/score/<dataset>_<source>.pt` (`--prior score`; a
score prior has no density, so the reparameterised gradient uses its score, and the ELBO and KL are
not known). Training sees random crops of the **training mixtures** only (toy: `ToyDataset` train
split; Slakh: the embedded dataset's drums + bass training mixtures); no loss term uses a source.
One process per run, `OMP_NUM_THREADS=1`; the budget is CPU time or the step count, whichever ends
first. The committed encoders were trained by the loop that preceded `sepcore.train.fit` (Adam,
an exponential learning-rate decay and a KL warm-up over the spent fraction of the budget, no
validation). The command now trains through `fit`: AdamW, a cosine, the KL warm-up over the
planned steps, the negative ELBO of fixed validation-mixture crops at intervals with a plateau
stop, and the curve in `tables/training/variational_<checkpoint>.csv`; rerunning it gives other
weights. `<out>.state.pt` (not committed) resumes the same command. The prior hashes are the first 16 hex digits of the
sha256 of the prior checkpoints the encoders were trained against.

| checkpoint | size | parameters | sources (posterior) | trained against | steps (done of planned) | minutes | final ELBO / reconstruction / KL (nats per sample) | command |
|---|---|---|---|---|---|---|---|---|
""" + "\n".join(rows) + "\n" + """
`slakh_truncnormal.pt` predates recorded prior hashes: the README of its release named the flow
priors `slakh_drums.pt` `1cff849f492f0bab` and `slakh_bass.pt` `ff943ec6ddeb1519`, still the
committed files. Its `minutes` are wall-clock minutes of a shared machine.
"""
    (FOLDER / "README.md").write_text(text)


if __name__ == "__main__":
    main()
