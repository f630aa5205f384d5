"""Write checkpoints/latents/README.md from the checkpoints' own metadata (sizes, steps, CPU time, losses)."""

from pathlib import Path

import torch

from sepcore.checkpoints import run_device, training_runs
from sepcore.experiments.latent_variants import CONTINUATIONS
from sepcore.experiments.latents import LIN_WEIGHT_FOLDER
from sepcore.utils import file_sha256

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "checkpoints" / "latents"
TRAINING = ROOT / "tables" / "training"
COMMANDS = {
    "lqvae": "nice -n 10 env OMP_NUM_THREADS=1 python -m sepcore.train.vqvae --profile default --lin-weight 1.0 --max-minutes 20 --out checkpoints/latents/lqvae.pt",
    "vqvae": "nice -n 10 env OMP_NUM_THREADS=1 python -m sepcore.train.vqvae --profile default --lin-weight 0 --max-minutes 20 --out checkpoints/latents/vqvae.pt",
}
OLD_PRIOR = ("nice -n 10 env OMP_NUM_THREADS=1 python -m sepcore.train.prior extract --profile default --vqvae checkpoints/latents/{kind}.pt "
             "--source-class {cls} --out checkpoints/latents/codes_{kind}_{cls}.pt && nice -n 10 env OMP_NUM_THREADS=1 python -m "
             "sepcore.train.prior train --profile default --codes checkpoints/latents/codes_{kind}_{cls}.pt --max-minutes 12 "
             "--out checkpoints/latents/prior_{kind}_{cls}.pt")
NEW_PRIOR = ("OMP_NUM_THREADS=1 python -m sepcore.train.prior_fit --codec checkpoints/latents/{kind}.pt --source-class {cls} "
             "{budget} --out checkpoints/latents/prior_{kind}_{cls}.pt")
#: Continuations whose weights were lost before they could be promoted (kept outside checkpoints/ on a
#: machine that was reset); their curves stay as evidence, and the next run started from the committed file.
LOST = {("lqvae", "bass", "continued4")}


def budget_flags(run: dict) -> str:
    """A run's budget as prior_fit flags: CPU minutes, or the planned steps of a run on a GPU."""
    if run_device(run) == "cuda":
        return f"--steps {run['planned_steps']} --device cuda"
    return f"--cpu-minutes {run['plan']['cpu_minutes']:g}"
SPECTRAL = "OMP_NUM_THREADS=1 python -m sepcore.train.spectral_codec --cpu-minutes {minutes:g} --out checkpoints/latents/spectral.pt"
WAVEFORM = ("OMP_NUM_THREADS=1 python -m sepcore.train.vqvae --lin-weight {lin:g} --cpu-minutes {minutes:g} "
            "--out checkpoints/latents/{name}.pt")
CHOOSE = " && python scripts/choose_lin_weight.py (copies the validation-chosen candidate to checkpoints/latents/lqvae.pt)"


def collapse_note() -> str:
    """The L_lin weight's choice on validation (``scripts/choose_lin_weight.py`` wrote the table)."""
    import pandas as pd

    table = ROOT / "tables" / "latents" / "lin_weight_validation.csv"
    if not table.exists():
        return ""
    rows = pd.read_csv(table)
    lines = "\n".join(f"| {r.model} | {r.rec_sdr_drums:.2f} / {r.rec_sdr_bass:.2f} | {r.code_sum_sdr:.2f} | "
                       f"{r['linearity_%']:.1f} | {r.perplexity:.1f} | {'**chosen**' if r.chosen else ''} |"
                       for _, r in rows.iterrows())
    text = ("\nThe LQ-VAE's L_lin weight was chosen on the validation split among three candidates "
            f"(`checkpoints/latents/{LIN_WEIGHT_FOLDER}/`; criterion: the SDR of the decoded code table M[z1, z2] "
            "against the mixture, `sepcore.experiments.latents.choose_lin_weight`; table "
            "`tables/latents/lin_weight_validation`). At Eq. 8's weight 1 (a sum over the 32 channels) the "
            "codebook collapsed onto a few codes, where L_lin is trivially small; 1/32 is the effective weight "
            "of the reference code (a mean over the channels).\n\n"
            "| candidate | reconstruction SDR drums / bass (dB) | code-sum SDR (dB) | linearity (%) | codebook perplexity | |\n"
            "|---|---|---|---|---|---|\n" + lines + "\n")
    retry = TRAINING / "lqvae_lr3e-4.csv"
    if retry.exists():
        curve = pd.read_csv(retry)
        text += (f"\nA retry of weight 1 at learning rate 3e-4 diverged (validation objective {curve.val_loss.max():.3g} "
                 f"at step {int(curve.step.max())}; `tables/training/lqvae_lr3e-4.csv`) and was discarded.\n")
    return text


def attempt_row(codec: str, cls: str, flags: str, first, curve, best: dict, lost: bool = False) -> str:
    """One continuation's README row; ``best`` holds each prior's best validation NLL so far (a
    continuation is promoted when it goes below it, as in ``scripts/promote_continued_prior.py``;
    a ``lost`` one never was)."""
    before = best.setdefault((codec, cls), first.val_loss.min())
    after = curve.val_loss.min()
    promoted = after < before and not lost
    if promoted:
        best[(codec, cls)] = after
    verdict = "yes" if promoted else "no (weights lost before promotion)" if lost and after < before else "no"
    return (f"| `prior_{codec}_{cls}` | {flags} | {before:.3f} | {after:.3f} | {int(curve.step.max()):,} | "
            f"{curve.cpu_s.max() / 60:.1f} | {curve.train_loss.iloc[-1]:.3f} | {verdict} |")


GPU_STEPS = "--device cuda --steps N"
ON_GPU = (", on one H200 GPU, every prior at once, N planned for 300 s from the measured speed (10,000-28,000); "
          "the CPU-min column is the GPU process's CPU time")
ON_GPU2 = (", from the GPU run where it was promoted (else from the committed file), on the same GPU, N planned "
           "for 190 s")


def continuation_note() -> str:
    """Every attempt to continue a prior from its committed weights (curves kept as evidence): the
    spectral priors at a higher learning rate and with dropout, the waveform VQ-VAE and LQ-VAE priors."""
    import pandas as pd

    flags = {("spectral", "continued"): "`--warm-start --lr 5e-4 --cpu-minutes 50`",
             ("spectral", "dropout"): "`--warm-start --lr 3e-4 --dropout 0.1 --cpu-minutes 18`",
             ("vqvae", "continued"): "`--warm-start --lr 5e-4 --cpu-minutes 40`",
             ("vqvae", "continued2"): "`--warm-start --lr 2e-4 --cpu-minutes 18`, from the first continuation",
             ("vqvae", "continued3"): "`--warm-start --lr 1e-4 --cpu-minutes 33`, from the second continuation",
             ("vqvae", "continued4"): "`--warm-start --lr 1e-4 --cpu-minutes 40`, from the third (bass only)",
             ("lqvae", "continued"): "`--warm-start --lr 5e-4 --cpu-minutes 40` (drums 35, guitar 25)",
             ("lqvae", "continued2"): "`--warm-start --lr 3e-4 --cpu-minutes 16` (drums 25), from the first continuation",
             ("lqvae", "continued3"): "`--warm-start --lr 3e-4 --cpu-minutes 25`, from the second continuation (bass only)",
             ("lqvae", "continued4"): "`--warm-start --lr 2e-4 --cpu-minutes 24`, from the third continuation (bass only)",
             ("spectral", "continued2"): "`--warm-start --lr 2e-4 --dropout 0.2 --cpu-minutes 24`, from the dropout run "
                                         "(drums only)",
             ("spectral", "gpu"): f"`--warm-start --lr 2e-4 --dropout 0.1 {GPU_STEPS}`{ON_GPU}",
             ("vqvae", "gpu"): f"`--warm-start --lr 3e-4 {GPU_STEPS}`{ON_GPU}",
             ("lqvae", "gpu"): f"`--warm-start --lr 3e-4 {GPU_STEPS}`{ON_GPU}",
             ("spectral", "gpu2"): f"`--warm-start --lr 1e-4 --dropout 0.1 {GPU_STEPS}`{ON_GPU2}",
             ("vqvae", "gpu2"): f"`--warm-start --lr 1e-4 {GPU_STEPS}`{ON_GPU2}",
             ("lqvae", "gpu2"): f"`--warm-start --lr 1e-4 {GPU_STEPS}`{ON_GPU2}"}
    rows, best = [], {}
    for codec in ("spectral", "vqvae", "lqvae"):
        for suffix in CONTINUATIONS:                  # the order the continuations ran in
            for cls in ("drums", "bass", "guitar"):
                curve, first = TRAINING / f"prior_{codec}_{cls}_{suffix}.csv", TRAINING / f"prior_{codec}_{cls}.csv"
                if (codec, suffix) in flags and curve.exists() and first.exists():
                    rows.append(attempt_row(codec, cls, flags[(codec, suffix)], pd.read_csv(first), pd.read_csv(curve), best,
                                            lost=(codec, cls, suffix) in LOST))
    if not rows:
        return ""
    return ("\nContinuations from the committed weights (fresh optimiser, 100 warm-up steps, written to a copy outside "
            "`checkpoints/`, COPY in the commands below, and promoted by `scripts/promote_continued_prior.py` only when their validation NLL is "
            f"lower; curves: `tables/training/prior_<codec>_<class>_<{'|'.join(sorted(CONTINUATIONS))}>.csv`):\n\n"
            "| prior | flags | best validation NLL before | after | steps | CPU-min | last training NLL | promoted |\n"
            "|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\nThe spectral priors' training NLL falls well "
            "below their validation NLL (516,600 training codes per class): they are limited by data more than by steps. "
            "With dropout 0.1 they improved again (the dropout rows' training NLL is measured with dropout on). "
            "The waveform priors see four times as many codes per class (hop 64 against 256). The LQ-VAE priors had "
            "stopped on their 20-minute budgets while still improving; their rows above give what a continuation at "
            "a higher learning rate bought. A second warm restart (lr 3e-4) stopped the drums prior on a plateau above "
            "its committed loss (not promoted); the bass prior was still falling at the end of its third continuation. "
            "The GPU rows (`gpu`, then `gpu2` at a third of the learning rate) ran every prior until its validation "
            "NLL stopped falling: each run ended on a plateau, none on its step budget, and no `gpu2` run went below "
            "the best before it. Every prior is now at a plateau of this model size and data; the spectral priors' "
            "gain came with the same dropout 0.1 (data-limited, as above). The CPU-min column of a GPU row is the GPU "
            "process's CPU time, not CPU training time.\n")


def main():
    new_rows, old_rows = [], []
    candidates = sorted((FOLDER / LIN_WEIGHT_FOLDER).glob("*.pt"))
    chosen = {file_sha256(path): path for path in candidates}.get(file_sha256(FOLDER / "lqvae.pt"))
    for path in [*sorted(FOLDER.glob("*.pt")), *candidates]:
        if path.name.startswith("codes_") or path.name.endswith(".state.pt"):
            continue
        payload = torch.load(path, map_location="cpu", weights_only=True)
        meta = payload["metadata"]
        name = path.stem
        model = payload["model_class"].rsplit(".", 1)[1]
        size = f"{path.stat().st_size / 2**20:.2f} MB"
        if "planned_steps" in meta:                              # sepcore.train.fit
            minutes = meta["plan"]["cpu_minutes"]
            if name == "spectral":
                command, loss = SPECTRAL.format(minutes=minutes), f"feature MSE {meta['best_val']:.4f}"
                data = meta.get("data")
            elif name == "vqvae" or name.startswith("lqvae"):
                lin = meta["train_config"]["lin_weight"]
                trained_as = path if name != "lqvae" or chosen is None else chosen
                command = WAVEFORM.format(lin=lin, minutes=minutes, name=trained_as.relative_to(FOLDER).with_suffix(""))
                if name == "lqvae" and chosen is not None:
                    command += CHOOSE
                loss = (f"objective {meta['best_val']:.4f} (reconstruction MSE {meta.get('val_rec', float('nan')):.5f}, "
                        f"Eq. 8 L_lin {meta.get('val_lin', float('nan')):.4f})")
                data = f"{meta.get('data')}; validation: 48 fixed pairs of two classes"
            else:
                _, kind, cls = name.split("_")
                command, loss = NEW_PRIOR.format(kind=kind, cls=cls, budget=budget_flags(meta)), f"NLL {meta['best_val']:.4f} nats/code"
                data = (f"{meta['train_codes']:,} training codes ({meta['train_tracks']} tracks); validation bigram "
                        f"{meta['bigram_nll']:.3f}, unigram {meta['unigram_nll']:.3f}")
            steps, best_step, cpu = f"{meta['step']:,} of {meta['planned_steps']:,}", f"{meta['best_step']:,}", f"{meta['cpu_seconds'] / 60:.1f}"
            earlier = training_runs(meta)[:-1]
            if earlier:                               # warm-started continuations: every run, in order
                first, rest = earlier[0], [*earlier[1:], meta]
                target = f"checkpoints/latents/prior_{kind}_{cls}.pt"
                command = NEW_PRIOR.format(kind=kind, cls=cls, budget=budget_flags(first)) + "".join(
                    f", then cp {target} COPY && "
                    + NEW_PRIOR.format(kind=kind, cls=cls, budget=budget_flags(run)).replace(f"--out {target}", "--out COPY")
                    + f" --warm-start --lr {run['plan']['lr']:g}"
                    + (f" --dropout {payload['config']['dropout']:g}" if run is meta and payload["config"].get("dropout") else "")
                    + f" && python scripts/promote_continued_prior.py {target} COPY" for run in rest)
                steps = " + ".join([*(f"{run['step']:,}" for run in earlier), steps])
                best_step = " + ".join([*(f"{run['best_step']:,}" for run in earlier), best_step])   # each run began at the best before
                cpu = " + ".join([*(f"{run['cpu_seconds'] / 60:.1f}" for run in earlier), cpu])
                loss += " (earlier runs " + ", ".join(f"{run['best_val']:.4f}" for run in earlier) + ")"
            if run_device(meta) == "cuda":
                cpu += " (the last on a GPU)"
            new_rows.append(f"| `{path.relative_to(FOLDER)}` | {size} | {model} | {steps} | {best_step} | {cpu} | {loss} | "
                            f"{meta.get('stopped_by', 'running (checkpoint written during training)')} | {data} | `{command}` |")
            continue
        command = COMMANDS.get(name) or OLD_PRIOR.format(kind=name.split("_")[1], cls=name.split("_")[2])
        steps = meta.get("steps_done", "not recorded (see note)")
        losses = meta.get("final_losses") or {"final_loss_nats": meta.get("final_loss_nats")}
        losses = ", ".join(f"{k}={v:.4g}" for k, v in losses.items() if v is not None)
        old_rows.append(f"| `{path.name}` | {size} | {model} | {steps} | {meta.get('wall_time_s')} s | {meta.get('data')} | "
                        f"{losses} | `{command}` |")
    earlier = "" if not old_rows else """

## Earlier checkpoints (wall-clock budgets; kept as they were)

Trained by an earlier release on the shared 2-core machine under `nice -n 10`, several processes per
core, each stopped by a **wall-clock budget** (`--max-minutes`), so `steps done` is what fitted.

| file | size | model | steps done | training wall time | data | final losses | command |
|---|---|---|---|---|---|---|---|
""" + "\n".join(old_rows)
    text = """# Latent-model checkpoints (papers 003 and 004; default profile)

## Trained with the CPU-budgeted loop (`sepcore.train.fit`)

Each run is one process with `OMP_NUM_THREADS=1`, at most two side by side on the 2-core machine.
The budget is **CPU time**: the loop measures its speed over the first 30 steps and plans the step
count (and the cosine learning-rate schedule) for the budget; it stops at the planned step or on a
validation plateau (8 evaluations, 250 steps apart, without a gain of 1e-3 nats; 10 evaluations
for the codec). The file holds the **best-validation** weights, rewritten at every checkpoint while
the run goes on; `<out>.state.pt` (not committed) lets the same command resume ("resuming at step
N"), and a changed config is refused. Learning curves: `tables/training/<name>.csv`. A later
session can continue a prior from the committed weights with `--warm-start` (fresh optimiser,
100 warm-up steps).

Priors: the 3-layer GPT of the earlier release (width 96, 4 heads, block 1024 codes), now trained on
**every** training code of the class (whole tracks encoded once and cached under the data root),
windows of 512 codes at random offsets and random positions of the block, batch 8; validation:
96 fixed windows of the validation split. The spectral codec: `sepcore.models.spectral_codec`
(log-magnitude STFT frames, 1024 / 256, K = 256, D = 32), trained on independent random 3 s crops of
drums, bass and guitar and their mean mixtures; validation: 32 fixed crops per class. The waveform
VQ-VAE and LQ-VAEs (`sepcore.models.vqvae`, K = 256, D = 32, hop 64): batches of 8 crops of 8192
samples, pairs of two different classes and their mean mixtures reconstructed too, the LQ-VAEs with
L_lin of paper 003's Eq. 8 at weights 1, 1/8 and 1/32 and the VQ-VAE without; the same seed and data;
the objective (plateau and best weights) is the whole loss on 48 fixed validation pairs.
""" + collapse_note() + "\n" + continuation_note() + """

| file | size | model | steps (done of planned) | best step | CPU minutes | best validation | stopped by | data | command |
|---|---|---|---|---|---|---|---|---|---|
""" + "\n".join(new_rows) + earlier + "\n"
    (FOLDER / "README.md").write_text(text)


if __name__ == "__main__":
    main()
