"""Choose the LQ-VAE's L_lin weight on the validation split and promote that candidate to
``checkpoints/latents/lqvae.pt``.

    python scripts/choose_lin_weight.py

The candidates are ``checkpoints/latents/lin_weight/lqvae_lin*.pt``, each trained by
``python -m sepcore.train.vqvae --lin-weight W --cpu-minutes 20 --out ...``; the criterion is
:func:`sepcore.experiments.latents.choose_lin_weight` (the SDR of the decoded code table
``M[z_1, z_2]`` against the mixture) on the latents chapter's validation chunks of drums + bass,
and writes ``tables/latents/lin_weight_validation`` (the latents chapter scores the candidates again
and rewrites it with the same numbers).
"""

import argparse
import shutil
import time

from sepcore.data.slakh import resolve_root
from sepcore.experiments import latents
from sepcore.paths import CHECKPOINTS, data_root, tables_root
from sepcore.tables import write_table


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="print the choice, promote nothing")
    args = parser.parse_args(argv)
    started = time.time()
    folder = CHECKPOINTS / "latents"
    config = latents.LatentsChapterConfig.for_profile("default")
    validation = latents.validation_set(config, resolve_root("default", data_root()))
    candidates = latents.lin_weight_candidates(folder / latents.LIN_WEIGHT_FOLDER)
    chosen, summary = latents.choose_lin_weight(candidates, validation)
    print(summary.to_string())
    source = candidates[chosen].checkpoint_info["path"]
    print(f"chosen: {chosen} ({source})")
    if args.dry_run:
        return
    write_table(summary, tables_root("default") / "latents" / "lin_weight_validation", profile="default", started=started,
                parameters={"n_chunks": len(validation), "split": "validation", "criterion": "code_sum_sdr"},
                manifest_hash=validation.manifest_hash, n_mixtures=len(validation),
                notes="LQ-VAE candidates (L_lin weights) on validation chunks; the chosen one is checkpoints/latents/lqvae.pt")
    shutil.copyfile(source, folder / "lqvae.pt")
    print(f"wrote {folder / 'lqvae.pt'}")


if __name__ == "__main__":
    main()
