"""Write checkpoints/flows/README.md from the checkpoints' own metadata (size, command, wall time, data)."""

from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent / "checkpoints" / "flows"
lines = [
    "# Flow priors", "",
    "One noise-conditioned FloWaveNet-style prior per source class (`sepcore.models.flow.FlowPrior`), trained",
    "by `sepcore.train.flow` on `x + sigma * eps` with `sigma = 0` for a quarter of each batch and",
    "`log sigma ~ U[log 0.01, log 1]` otherwise. Each training ran on one CPU core of a shared 2-core",
    "machine (`OMP_NUM_THREADS=1 nice -n 10`), with a wall-time cap (`max_minutes`) as well as a step count:",
    "`steps` is what was reached. Wall times depend on the load of the shared machine: the four toy priors",
    "trained at the same time while the machine's load average was about 14, so each process got about 8 % of",
    "a core (ps showed 1 min 14 s of CPU time after 16 min 18 s of wall time), i.e. about 2 CPU-minutes per",
    "prior in 25 wall-minutes. On an idle core a step takes about 0.13 s, so the same 1,380 steps take about 3 min.", "",
    "| checkpoint | size (MB) | parameters | steps | wall time (min) | final NLL clean / noisy (nats/sample) | data | command |",
    "|---|---|---|---|---|---|---|---|",
]
for path in sorted(ROOT.glob("*.pt")):
    payload = torch.load(path, map_location="cpu", weights_only=True)
    meta, config = payload["metadata"], payload["config"]
    last = meta["history"][-1]
    n_params = sum(v.numel() for k, v in payload["state_dict"].items() if not k.endswith("initialized"))
    dataset = meta["dataset"]
    data = ("sepcore.data.toy.ToyDataset train split (5000 items, seed 0), random crops of "
            f"{meta['train_config']['segment_length']} samples") if dataset == "toy" else \
        f"embedded Slakh-format train split, class {config['source']}"
    command = (f"`OMP_NUM_THREADS=1 nice -n 10 python -m sepcore.train.flow --profile default --dataset {dataset} "
               f"--source {config['source']}`")
    lines.append(f"| `{path.name}` | {path.stat().st_size / 1e6:.2f} | {n_params:,} | {meta['steps_done']} | "
                 f"{meta['wall_seconds'] / 60:.1f} | {last['nll_clean']:.3f} / {last['nll_noisy']:.3f} | {data} | {command} |")
lines += ["", "Config of every prior (`FlowConfig.default()`): " + ", ".join(
    f"{k}={v}" for k, v in payload["config"].items() if k != "source"), ""]
(ROOT / "README.md").write_text("\n".join(lines))
print("\n".join(lines))
