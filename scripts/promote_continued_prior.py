"""Replace a committed prior by its warm-started continuation when, and only when, the continuation
reached a lower validation NLL; the earlier runs' records are kept in the metadata (``continued_from``,
oldest first), so a prior can be continued more than once.

    python scripts/promote_continued_prior.py checkpoints/latents/prior_vqvae_bass.pt /path/prior_vqvae_bass_continued.pt

The continuation is trained with ``python -m sepcore.train.prior_fit ... --warm-start --out <copy of
the committed file outside checkpoints/>``, so the committed file is never overwritten by a run whose
best is worse than what it holds.
"""

import argparse
from pathlib import Path

from sepcore.checkpoints import load_model, save_checkpoint, training_runs
from sepcore.models.transformer import TransformerPrior

RECORD = ("step", "planned_steps", "best_step", "best_val", "cpu_seconds", "wall_seconds", "plan", "stopped_by", "device")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("committed")
    parser.add_argument("continued")
    args = parser.parse_args(argv)
    committed = load_model(args.committed, expect_class=TransformerPrior)
    continued = load_model(args.continued, expect_class=TransformerPrior)
    first, second = committed.checkpoint_info["metadata"], continued.checkpoint_info["metadata"]
    if first.get("codec_sha256") != second.get("codec_sha256") or first.get("train_config") != second.get("train_config"):
        raise SystemExit("the two priors were trained on different codecs or data; not a continuation")
    print(f"validation NLL: committed {first['best_val']:.4f}, continued {second['best_val']:.4f}")
    if second["best_val"] >= first["best_val"]:
        print(f"kept {args.committed}: the continuation is not better")
        return
    earlier = training_runs(first)[:-1]                                    # the runs before, oldest first
    metadata = {**second, "continued_from": [*earlier, {key: first.get(key) for key in RECORD}]}
    save_checkpoint(Path(args.committed), continued, manifest_hash=continued.checkpoint_info.get("manifest_hash"),
                    metadata=metadata)
    print(f"wrote {args.committed} (the continuation; the earlier runs are in its metadata, continued_from)")


if __name__ == "__main__":
    main()
