"""Is the best LASS row limited by its sampler? Three checks on validation chunks (not the test split).

    OMP_NUM_THREADS=1 python scripts/lass_posterior_checks.py [--chunks 16] [--rows 96] [--no-write]

With the settings chosen on validation (``checkpoints/lass/lass_spectral_settings.json``: counts x
magnitudes, ancestral samples at the chosen temperature, the posterior mean of the masks at the
chosen power), on every third of the chapter's 48 drums + bass validation chunks:

1. **more samples**: the posterior mean of the first 16, 32, 64 and ``--rows`` samples of one search;
2. **weighted samples**: the mean of 32 samples weighted by ``softmax(beta * score)`` (their joint
   log-posterior score), between the plain mean (beta = 0) and the best row (beta large);
3. **EM Wiener iterations** (only where ``norbert`` is installed): the masked posterior mean refined
   by ``norbert.expectation_maximization``, the multichannel Wiener filter's EM, for 1-3 iterations.

Prints SDR (dB) per check and writes ``tables/lass/posterior_checks`` (chapter 11 shows it). If none beats the plain 32-sample mean, the sampler is not what limits
the estimate, and the error lies in the likelihood and the codec (chapter 11's diagnostics).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import pandas as pd
import torch

from sepcore.data.slakh import SlakhMixtures, resolve_root
from sepcore.experiments.latent_variants import VariantSettings
from sepcore.metrics import sdr
from sepcore.paths import CHECKPOINTS, data_root, tables_root
from sepcore.results import spread_indices
from sepcore.separation import masking
from sepcore.separation.blind.stft import istft, stft
from sepcore.separation.lass_search import LASSSeparator
from sepcore.tables import write_table


def em_wiener(estimates: torch.Tensor, iterations: int) -> torch.Tensor:
    """``(N, T)`` masked estimates -> ``(N, T)`` after ``iterations`` of norbert's EM on their sum."""
    import norbert

    Y = stft(estimates, masking.MASK_STFT)                                    # (N, F, S)
    y = Y.permute(2, 1, 0).unsqueeze(2).numpy()                               # (S, F, 1, N)
    x = Y.sum(0).T.unsqueeze(2).numpy()                                       # (S, F, 1)
    out, _, _ = norbert.expectation_maximization(y, x, iterations=iterations)
    return istft(torch.from_numpy(out[:, :, 0, :]).permute(2, 1, 0), estimates.shape[-1], masking.MASK_STFT).float()


def validation_setup(chunks: int):
    """The drums + bass validation set, every third of the chapter's 48 validation chunks (at most
    ``chunks``) and LASS on the spectral codec with the settings chosen on validation, on one frame grid."""
    validation = SlakhMixtures(resolve_root("default", data_root()), classes=("drums", "bass"), split="validation")
    indices = spread_indices(len(validation), 48)[::3][:chunks]
    separator = LASSSeparator.from_spectral(("drums", "bass"), checkpoint=CHECKPOINTS / "latents", device="cpu",
                                            n_shifts=1)          # one frame grid: the checks read one search's rows
    return validation, indices, separator


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=16, help="every third of the 48 validation chunks")
    parser.add_argument("--rows", type=int, default=96)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.rows < 32:
        parser.error("--rows must be at least 32: the checks compare against the mean of 32 samples")
    started = time.time()
    settings = VariantSettings.chosen_on_validation("default", CHECKPOINTS)
    validation, indices, separator = validation_setup(args.chunks)
    separator.config = dataclasses.replace(separator.config, n_rows=args.rows)
    power = settings.posterior_power or settings.mask_power
    try:
        import norbert  # noqa: F401
        em = (1, 2, 3)
    except ImportError:
        em = ()
    rows = []
    for index in indices:
        item = validation[index]
        mixture, sources = item["mixture"], item["sources"]
        separator.separate(mixture)
        codes, score = separator.last.codes[0], separator.last.score[0].double()
        estimates = {f"mean of {n} samples": masking.mean_masked_sources(separator.vqvae, codes[:n], mixture, power)
                     for n in sorted({16, 32, 64, args.rows}) if n <= args.rows}
        for beta in (0.01, 0.03, 0.1, 0.3):
            weights = torch.softmax(beta * score[:32], 0)
            estimates[f"32 samples weighted, beta = {beta:g}"] = masking.mean_masked_sources(
                separator.vqvae, codes[:32], mixture, power, weights=weights)
        for iterations in em:
            estimates[f"mean of 32 samples + {iterations} EM iterations"] = em_wiener(estimates["mean of 32 samples"],
                                                                                      iterations)
        for name, estimate in estimates.items():
            value = sdr(sources, estimate, validation.sample_rate)
            rows.append({"check": name, "drums": float(value[0]), "bass": float(value[1])})
        print(f"chunk {index} done", flush=True)
    table = pd.DataFrame(rows).groupby("check", sort=False)[["drums", "bass"]].mean()
    table["mean"] = table.mean(axis=1)
    table = table.reset_index()
    print(table.round(3).to_string(index=False))
    if not args.no_write:
        write_table(table, tables_root("default") / "lass" / "posterior_checks", profile="default",
                    parameters={**vars(args), "posterior_power": power, "settings": settings.__dict__,
                                "em_iterations": list(em)},
                    started=started, manifest_hash=validation.manifest_hash, n_mixtures=len(indices),
                    notes="validation chunks; SDR (dB) of the masked posterior estimates of one LASS search per chunk "
                          "(spectral codec, counts x magnitudes, the sampler chosen on validation)")
    return table


if __name__ == "__main__":
    main()
