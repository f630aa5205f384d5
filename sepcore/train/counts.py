"""Count likelihoods from every training track with random re-pairings, smoothed on validation.

    python -m sepcore.train.counts --codec checkpoints/latents/vqvae.pt --classes drums bass \
        --pairings 4 --out checkpoints/lass/counts_vqvae_drums_bass.pt

Pairing 0 mixes the classes' stems of the same track (aligned, as real songs); pairing ``r >= 1``
mixes every track of the first class with a random track of each other class at a random offset
(a multiple of the hop, circularly), so the counts see pairs no song contains. The sources' codes
are the cached whole-track codes (:func:`sepcore.train.prior_fit.class_codes`); only the mixtures
are encoded. The validation split gives held-out triples (pairing 0 and one re-pairing), on
which the smoothing's ``beta`` and ``sigma`` are chosen (:mod:`sepcore.separation.lass_smoothed`:
the dense table for two sources, the counted tuples only for three). The file holds the raw
counts, the chosen smoothing and its grid.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from sepcore.checkpoints import load_model
from sepcore.mixing import mix
from sepcore.separation.count_files import compact_counts
from sepcore.separation.lass import CountLikelihood
from sepcore.separation.lass_smoothed import fit_smoothing
from sepcore.train.prior_fit import class_codes, encode_long, file_digest
from sepcore.train.safe_paths import refuse_committed_path
from sepcore.utils import progress, save_atomic


def _class_audio(source_class: str, split: str, profile: str, data_root, sample_rate: int):
    from sepcore.book import default_data_root
    from sepcore.data.render import ensure_dataset
    from sepcore.data.slakh import SlakhStems

    root = ensure_dataset(profile, data_root or default_data_root())
    stems = SlakhStems(root, source_class, split=split, sample_rate=sample_rate)
    return dict(zip(stems.track_names, stems.audio))


@torch.no_grad()
def pairing_triples(codec, codec_path, classes, split: str, pairings: int, *, profile="default", data_root=None,
                    seed: int = 0, chunk_seconds: float = 30.0) -> torch.Tensor:
    """``(n, N + 1)`` long: the source codes and the mixture code of every position of every pairing."""
    hop = codec.config.hop
    sr = codec.config.sample_rate
    audio = [_class_audio(c, split, profile, data_root, sr) for c in classes]
    names = [list(a) for a in audio]
    # class_codes lists the tracks in the same order as SlakhStems (the track_names behind `names`)
    codes = [class_codes(codec_path, c, split, profile=profile, data_root=data_root) for c in classes]
    if [len(c) for c in codes] != [len(n) for n in names]:
        raise RuntimeError(f"cached codes of {codec_path} do not match the {split} tracks; delete the code cache")
    generator = torch.Generator().manual_seed(seed)
    rows = []
    first = names[0]
    for r in range(pairings):
        for a, name in enumerate(progress(first, desc=f"{split} pairing {r}")):
            parts, code_parts = [], []
            for n in range(len(classes)):
                if n == 0:
                    index, offset = a, 0
                elif r == 0:
                    if name not in audio[n]:
                        break
                    index, offset = names[n].index(name), 0
                else:
                    index = int(torch.randint(len(names[n]), (1,), generator=generator))
                    frames = codes[n][index].shape[0]
                    offset = int(torch.randint(max(frames, 1), (1,), generator=generator)) * hop
                wave = audio[n][names[n][index]]
                wave = wave[: wave.shape[0] // hop * hop]
                parts.append(torch.roll(wave, -offset))
                code_parts.append(torch.roll(codes[n][index], -(offset // hop)))
            else:
                length = min(p.shape[0] for p in parts) // hop * hop
                mix_codes = encode_long(codec, mix(torch.stack([p[:length] for p in parts]), dim=0), chunk_seconds)
                S = min(mix_codes.shape[0], *(c.shape[0] for c in code_parts))
                rows.append(torch.stack([*(c[:S] for c in code_parts), mix_codes[:S]], 1))
    return torch.cat(rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codec", required=True)
    parser.add_argument("--classes", nargs="+", default=["drums", "bass"])
    parser.add_argument("--pairings", type=int, default=4)
    parser.add_argument("--out", required=True)
    parser.add_argument("--profile", default="default", choices=("quick", "default", "full"))
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args(argv)
    refuse_committed_path(args.out, args.profile)
    started, cpu = time.time(), time.process_time()
    codec = load_model(args.codec).eval()
    K = codec.config.codebook_size
    train = pairing_triples(codec, args.codec, args.classes, "train", args.pairings, profile=args.profile,
                            data_root=args.data_root)
    val = pairing_triples(codec, args.codec, args.classes, "validation", 2, profile=args.profile,
                          data_root=args.data_root, seed=1)
    likelihood = CountLikelihood.fit([tuple(train.T)], K)
    smoothing, grid = fit_smoothing(likelihood, codec.codebook, val)
    digest = file_digest(args.codec)
    metadata = {"codec": Path(args.codec).name, "codec_sha256": digest, "vqvae_sha256": digest,
                "classes": list(args.classes), "pairings": args.pairings, "train_positions": int(train.shape[0]),
                "validation_positions": int(val.shape[0]), "density_percent": likelihood.density, "nnz": likelihood.nnz,
                "smoothing": smoothing, "smoothing_grid": grid, "wall_s": round(time.time() - started, 1),
                "cpu_s": round(time.process_time() - cpu, 1),
                "command": "python -m sepcore.train.counts " + " ".join(argv or __import__("sys").argv[1:])}
    out = save_atomic({"counts": compact_counts(likelihood), "metadata": metadata}, args.out)
    for row in grid:
        print(row)
    print(f"{out}: {train.shape[0]} positions, nnz {likelihood.nnz}, density {likelihood.density:.4f} %, "
          f"smoothing {smoothing}, {metadata['cpu_s']} CPU-s")


if __name__ == "__main__":
    main()
