"""Every available method on the same N test mixtures: SDR, speed and peak memory.

    python -m benchmarks.methods --profile quick|default [--n-mixtures N] [--data-root DIR]

For each method of :data:`sepcore.results.REGISTRY` (blind, supervised, oracle and any
registered generative method) on the same ``N`` drums/bass test chunks (evenly spread over
the test split, :func:`sepcore.results.spread_indices`), on this CPU and, when present, on
the GPU for torch methods:

- ``sdr_drums``, ``sdr_bass``: mean SDR over the chunks (:func:`sepcore.evaluation.evaluate`:
  museval v4 image SDR, 2 s windows, median over frames);
- ``seconds_per_second``: wall time of ``separate`` divided by the audio's duration, after one
  untimed warm-up call (librosa's numba compilation, lazy imports, CUDA context; on the first
  second only for the generative methods, and on the whole chunk for the oracles, which look
  their references up by the mixture);
- ``n_mixtures``: the chunks a method was scored on: all ``N``, except Langevin, which takes
  minutes per chunk on a CPU and runs on the first ones (:data:`sepcore.results.GENERATIVE_CHUNKS`);
- memory, measured in one more call on the first chunk, separately from the timed calls so
  that tracing does not slow them down:
  ``peak_python_mb``: the peak of Python and numpy allocations during a call (``tracemalloc``;
  torch CPU tensors are not traced by it), ``peak_rss_delta_mb``: the peak resident memory
  above the level before the call (sampled every 2 ms with ``psutil``), and on CUDA
  ``peak_cuda_mb`` (``torch.cuda.max_memory_allocated``).

Tables: ``tables/benchmarks/methods.{csv,md,json}`` under ``default``; a scratch folder under
``quick`` (as for the chapters).
"""

from __future__ import annotations

import argparse
import os
import platform
import threading
import time
import tracemalloc

import pandas as pd
import torch

from sepcore.book import default_data_root, table_root
from sepcore.evaluation import evaluate
from sepcore.profiles import PROFILES
from sepcore.results import (
    REGISTRY,
    chunk_budget,
    register_generative,
    register_supervised,
    spread_indices,
)
from sepcore.tables import write_table
from sepcore.utils import REPO_ROOT, resolve_device, seed_everything

N_MIXTURES = {"quick": 3, "default": 12, "full": 50}


class MemoryMeter:
    """Wraps a separator; records the peak memory of each call (see the module docstring)."""

    def __init__(self, separate, device: torch.device):
        self.separate, self.device = separate, device
        self.peak_python_mb = self.peak_rss_delta_mb = self.peak_cuda_mb = 0.0

    def _rss(self):
        try:
            import psutil

            return psutil.Process(os.getpid()).memory_info().rss
        except ImportError:  # psutil comes with ipykernel; without it, no RSS column
            return None

    def __call__(self, mixture):
        base = self._rss()
        peak = [base or 0]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], self._rss() or 0)
                time.sleep(0.002)

        sampler = threading.Thread(target=sample, daemon=True) if base is not None else None
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        tracemalloc.start()
        if sampler:
            sampler.start()
        try:
            out = self.separate(mixture)
        finally:
            _, python_peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            stop.set()
            if sampler:
                sampler.join()
        self.peak_python_mb = max(self.peak_python_mb, python_peak / 2**20)
        if base is not None:
            self.peak_rss_delta_mb = max(self.peak_rss_delta_mb, (peak[0] - base) / 2**20)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_cuda_mb = max(self.peak_cuda_mb, torch.cuda.max_memory_allocated(self.device) / 2**20)
        return out


def supervised_checkpoint(profile: str, data_root) -> str:
    """The committed checkpoint under ``default``; a tiny model trained on the fly under ``quick``."""
    if profile != "quick":
        return str(REPO_ROOT / "checkpoints" / "supervised" / "convtasnet.pt")
    from sepcore.data.slakh import resolve_root
    from sepcore.models.convtasnet import ConvTasNetConfig
    from sepcore.train.supervised import train

    path = REPO_ROOT / "_build" / "quick" / "work" / "convtasnet-quick.pt"
    if not path.exists():
        train(ConvTasNetConfig.quick(), resolve_root("quick", data_root), path, device="cpu", log=lambda *_: None)
    return str(path)


def run(profile: str, n_mixtures: int | None = None, data_root: str = "", methods=None) -> pd.DataFrame:
    from sepcore.data.slakh import SlakhMixtures, resolve_root

    started = time.time()
    seed_everything(0)
    data_root = data_root or default_data_root()
    root = resolve_root(profile, data_root)
    dataset = SlakhMixtures(root, classes=("drums", "bass"), split="test")
    indices = spread_indices(len(dataset), n_mixtures or N_MIXTURES[profile])
    register_supervised(supervised_checkpoint(profile, data_root), device="cpu")
    register_generative(profile, device="cpu")
    devices = [torch.device("cpu")] + ([resolve_device("cuda")] if torch.cuda.is_available() else [])
    rows = []
    for name, spec in REGISTRY.items():
        if methods and name not in methods:
            continue
        for device in devices:
            if device.type == "cuda" and spec.family != "supervised" and not getattr(spec, "uses_torch", False):
                continue                                  # numpy/librosa methods run on the CPU only
            separator = spec.build(dataset, dataset.classes, dataset.sample_rate)
            if separator is None:                         # no priors for drums/bass
                continue
            chosen = indices[:chunk_budget(name, profile, len(indices))]
            if hasattr(separator, "model"):
                separator.model.to(device)
                separator.device = device
            warm_up = dataset[chosen[0]]["mixture"]           # untimed; 1 s for the slow generative methods
            separator(warm_up[: dataset.sample_rate] if spec.family == "generative" else warm_up)
            frame = evaluate(dataset, separator, method=spec.label, indices=chosen)
            meter = MemoryMeter(separator, device)
            meter(dataset[indices[0]]["mixture"])          # memory, in its own call
            per_chunk = frame.drop_duplicates("id")
            rows.append({
                "method": spec.label, "family": spec.family, "device": device.type,
                "sdr_drums": frame.loc[frame.source == "drums", "sdr"].mean(),
                "sdr_bass": frame.loc[frame.source == "bass", "sdr"].mean(),
                "seconds_per_second": per_chunk["seconds"].sum() / per_chunk["audio_seconds"].sum(),
                "peak_python_mb": meter.peak_python_mb, "peak_rss_delta_mb": meter.peak_rss_delta_mb,
                "peak_cuda_mb": meter.peak_cuda_mb if device.type == "cuda" else float("nan"),
                "n_mixtures": len(chosen),
            })
            print(f"{spec.label:28s} {device.type:4s} SDR drums {rows[-1]['sdr_drums']:6.2f} bass {rows[-1]['sdr_bass']:6.2f} "
                  f"{rows[-1]['seconds_per_second']:.4f} s/s", flush=True)
    table = pd.DataFrame(rows)
    machine = {"cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
               "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "torch_threads": torch.get_num_threads(),
               "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    write_table(table, table_root(profile) / "benchmarks" / "methods", profile=profile,
                parameters={"indices": indices, "classes": list(dataset.classes), "machine": machine},
                started=started, manifest_hash=dataset.manifest_hash, n_mixtures=len(indices),
                notes="SDR: museval v4 image SDR, 2 s windows, frame median, mean over chunks. Timing after one "
                      "warm-up call. IRM/IBM are oracles and Conv-TasNet is supervised: upper bounds.",
                float_format=".3f")
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.methods", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default", choices=PROFILES)
    parser.add_argument("--n-mixtures", type=int, default=None)
    parser.add_argument("--data-root", default="")
    parser.add_argument("--methods", nargs="*", default=None, help="method names (default: all registered)")
    args = parser.parse_args(argv)
    table = run(args.profile, args.n_mixtures, args.data_root, args.methods)
    print(table.to_markdown(index=False, floatfmt=".3f"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
