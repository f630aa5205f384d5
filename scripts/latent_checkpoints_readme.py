"""Write checkpoints/latents/README.md from the checkpoints' own metadata (sizes, steps, wall times, data)."""

from pathlib import Path

import torch

FOLDER = Path(__file__).resolve().parent.parent / "checkpoints" / "latents"
COMMANDS = {
    "lqvae": "nice -n 10 env OMP_NUM_THREADS=1 python -m sepcore.train.vqvae --profile default --lin-weight 1.0 --max-minutes 20 --out checkpoints/latents/lqvae.pt",
    "vqvae": "nice -n 10 env OMP_NUM_THREADS=1 python -m sepcore.train.vqvae --profile default --lin-weight 0 --max-minutes 20 --out checkpoints/latents/vqvae.pt",
}
PRIOR = ("nice -n 10 env OMP_NUM_THREADS=1 python -m sepcore.train.prior extract --profile default --vqvae checkpoints/latents/{kind}.pt "
         "--source-class {cls} --out checkpoints/latents/codes_{kind}_{cls}.pt && nice -n 10 env OMP_NUM_THREADS=1 python -m "
         "sepcore.train.prior train --profile default --codes checkpoints/latents/codes_{kind}_{cls}.pt --max-minutes 12 "
         "--out checkpoints/latents/prior_{kind}_{cls}.pt")


def main():
    rows = []
    for path in sorted(FOLDER.glob("*.pt")):
        if path.name.startswith("codes_") or path.name.endswith(".state.pt"):
            continue
        payload = torch.load(path, map_location="cpu", weights_only=True)
        meta = payload["metadata"]
        name = path.stem
        if name in COMMANDS:
            command = COMMANDS[name]
        else:
            _, kind, cls = name.split("_")
            command = PRIOR.format(kind=kind, cls=cls)
        steps = meta.get("steps_done", "not recorded (see note)")
        losses = meta.get("final_losses") or {"final_loss_nats": meta.get("final_loss_nats")}
        losses = ", ".join(f"{k}={v:.4g}" for k, v in losses.items() if v is not None)
        rows.append(f"| `{path.name}` | {path.stat().st_size / 2**20:.2f} MB | {payload['model_class'].rsplit('.', 1)[1]} | "
                    f"{steps} | {meta.get('wall_time_s')} s | {meta.get('data')} | {losses} | `{command}` |")
    text = """# Latent-model checkpoints (paper 003; default profile)

Trained on the shared 2-core machine of this project, each process with `OMP_NUM_THREADS=1` under
`nice -n 10`: the two autoencoders side by side while other jobs ran (load average 13-18), the five
priors side by side afterwards (five processes on two cores). Each process got a fraction of a core.
Every run was stopped by a **wall-clock budget** (`--max-minutes`: 20 min per autoencoder, 12 min per
prior), not by its step count; `steps done` is the number of optimisation steps that fitted. The
training loop's wall time is below (data loading adds 1-3 min). `scripts/train_latents.sh`
runs all of them; each stage resumes from `<out>.state.pt`. Code extraction (`extract`, 128 crops
of 3 s per class) took about 2 min per class.

The VQ-VAE checkpoints predate the `steps_done` field. From the resumable state files written every
250 steps: the LQ-VAE did at least 500 and fewer than 750 steps, the plain VQ-VAE at least 250 and
fewer than 500 (same 20-minute budget, different CPU share).

Priors: 3-layer GPT (width 96, 4 heads, block 1024 codes = 3 s), trained on 128 random 3 s crops of
one class encoded by their autoencoder (`extract`), in windows of 512 codes at random positions.
A few hundred steps is far from convergence: the chapters' numbers describe these small, briefly
trained models. Data: the embedded Slakh-format `default` dataset (`python -m sepcore.data.render
--profile default`, seed 0), training split.

| file | size | model | steps done | training wall time | data | final losses | command |
|---|---|---|---|---|---|---|---|
""" + "\n".join(rows) + "\n"
    (FOLDER / "README.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
