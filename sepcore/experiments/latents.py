"""The quantized-latents chapter (notebooks/08_latents.md): the waveform VQ-VAE and LQ-VAE compared.

* :class:`LatentsChapterConfig`: the chapter's test chunks per profile;
* :func:`autoencoder_table`: one row per autoencoder (sizes, L_lin weight, how it was trained);
* :func:`reconstruction_linearity`: per test chunk, the reconstruction SDR of each source and of
  the mixture, paper 003's latent linearity (the fraction of positions where the mixture's code
  equals ``M[z_1, z_2]``, Sec. 4.1), the relative latent error, the SDR of the decoded averaged
  codes, and the codebook perplexity over the chunks;
* :func:`linearity_glue`: the numbers the chapter's prose quotes, one dict;
* :func:`validation_set`, :func:`lin_weight_candidates` and :func:`choose_lin_weight`: the LQ-VAE's
  L_lin weight chosen on the **validation** split among the trained candidates
  (``checkpoints/latents/lin_weight/``).

Shapes: test items have ``sources (2, T)`` and ``mixture (T,)``; codes ``(2, S)`` with ``S = T / hop``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from sepcore.metrics import sdr
from sepcore.models.vqvae import pair_code_table
from sepcore.profiles import ProfileConfig


@dataclass
class LatentsChapterConfig(ProfileConfig):
    """The chapter's chunks of ``chunk_length`` samples, drums + bass: ``n_chunks`` of the test split,
    ``n_validation_chunks`` of the validation split (where the L_lin weight is chosen)."""

    chunk_length: int = 65536
    n_chunks: int = 24
    n_validation_chunks: int = 48
    classes: tuple = ("drums", "bass")

    @classmethod
    def quick(cls):
        return cls(chunk_length=16384, n_chunks=4, n_validation_chunks=4)


def _metadata(model) -> dict:
    return getattr(model, "checkpoint_info", {}).get("metadata", {})


def autoencoder_table(models: dict) -> pd.DataFrame:
    """One row per ``{name: VQVAE}``: architecture, L_lin weight, steps, CPU time, validation losses."""
    rows = []
    for name, model in models.items():
        info, c = _metadata(model), model.config
        rows.append({"model": name, "K": c.codebook_size, "code_dim": c.code_dim, "hop": c.hop, "width": c.width,
                     "L_lin weight": c.lin_weight, "parameters": sum(p.numel() for p in model.parameters()),
                     "training steps": info.get("steps_done", info.get("train_config", {}).get("steps", "on the fly")),
                     "CPU minutes": info["cpu_seconds"] / 60 if "cpu_seconds" in info else float("nan"),
                     "validation reconstruction MSE": info.get("val_rec", float("nan")),
                     "validation L_lin (Eq. 8)": info.get("val_lin", float("nan")),
                     "stopped by": info.get("stopped_by", "wall-clock budget" if info else "trained on the fly")})
    return pd.DataFrame(rows)


def how_trained(models: dict) -> str:
    """A sentence on how both autoencoders were trained (from their checkpoints' metadata)."""
    def one(name):
        info = _metadata(models[name])
        plan = info.get("plan", {})
        budget = f"a {plan['cpu_minutes']:g} CPU-minute budget" if plan.get("cpu_minutes") else f"{plan.get('steps')} steps"
        return (f"the {name} with learning rate {plan.get('lr', float('nan')):g} and {budget}, stopped by "
                f"{info.get('stopped_by', 'its budget')} at step {info.get('steps_done')} (best at step {info.get('best_step')})")

    if "plan" not in _metadata(models["LQ-VAE"]):
        return ("The LQ-VAE used here was trained by an earlier release that averaged over the channels as well, i.e. "
                "with 1/D = 1/32 of Eq. 8's weight; `sepcore.models.vqvae.linearization_loss` follows Eq. 8.")
    return ("Both autoencoders are trained by the same validated loop (`sepcore.train.fit`): "
            f"{one('VQ-VAE')}; {one('LQ-VAE')}. The LQ-VAE adds Eq. 8 as written "
            f"(`sepcore.models.vqvae.linearization_loss`) with weight {models['LQ-VAE'].config.lin_weight:g}, "
            "chosen on validation below.")


@torch.no_grad()
def measure(model, pairs: torch.Tensor, item: dict, sample_rate: int, device) -> tuple[dict, torch.Tensor]:
    """The chunk's metrics for one autoencoder, and the sources' codes ``(2, S)``; ``pairs`` is
    :func:`~sepcore.models.vqvae.pair_code_table` of ``model``."""
    sources = item["sources"].to(device)                        # (2, T)
    mixture = item["mixture"].to(device)[None]                  # (1, T)
    z = model.encode(sources)                                    # (2, S)
    z_mix = model.encode(mixture)[0]                             # (S,)
    z_sum = pairs[z[0], z[1]]                                    # M[z1, z2], (S,)
    rec = model.decode(torch.cat([z, z_mix[None]]))              # (3, T)
    refs = torch.cat([sources, mixture]).cpu()
    rec_sdr = sdr(refs, rec.cpu(), sample_rate)
    sum_sdr = sdr(mixture.cpu(), model.decode(z_sum[None]).cpu(), sample_rate)[0]
    e = model.codebook
    shuffled = z_mix[torch.randperm(len(z_mix), generator=torch.Generator().manual_seed(0))]
    relative = (e[z_mix] - e[z_sum]).pow(2).sum(1).mean() / (e[z_mix] - e[shuffled]).pow(2).sum(1).mean()
    return {"rec_sdr_drums": float(rec_sdr[0]), "rec_sdr_bass": float(rec_sdr[1]), "rec_sdr_mixture": float(rec_sdr[2]),
            "linearity": float((z_mix == z_sum).float().mean()), "relative_latent_error": float(relative),
            "code_sum_sdr": float(sum_sdr)}, z


def reconstruction_linearity(models: dict, dataset, device="cpu") -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Every chunk of ``dataset`` through every autoencoder.

    Returns ``(summary, per_chunk, usage)``: the mean of each metric per model with the linearity
    in %, the codebook perplexity and ``K``; one row per (model, chunk); and per model the code
    counts over the chunks' sources ``(K,)`` with the perplexity.
    """
    per_chunk, usage = [], {}
    for name, model in models.items():
        pairs = pair_code_table(model)
        counts = torch.zeros(model.config.codebook_size)
        for index in range(len(dataset)):
            item = dataset[index]
            values, z = measure(model, pairs, item, dataset.sample_rate, device)
            per_chunk.append({"model": name, "id": item["id"], **values})
            counts += torch.bincount(z.flatten().cpu(), minlength=model.config.codebook_size)
        p = counts / counts.sum()
        usage[name] = (counts, float(torch.exp(-(p[p > 0] * p[p > 0].log()).sum())))
    per_chunk = pd.DataFrame(per_chunk)
    summary = per_chunk.drop(columns="id").groupby("model", sort=False).mean().reset_index()
    summary["linearity_%"] = 100 * summary.pop("linearity")
    summary["perplexity"] = [usage[m][1] for m in summary["model"]]
    summary["K"] = [models[m].config.codebook_size for m in summary["model"]]
    return summary, per_chunk, usage


def linearity_glue(summary: pd.DataFrame) -> dict:
    """The section's numbers and verdicts, ``{glue name: text}``."""
    by = summary.set_index("model")
    values = {}
    for name, key in (("VQ-VAE", "vq"), ("LQ-VAE", "lq")):
        values[f"latents_{key}_lin"] = f"{by.loc[name, 'linearity_%']:.1f}"
        values[f"latents_{key}_rec_mix"] = f"{by.loc[name, 'rec_sdr_mixture']:.2f}"
        values[f"latents_{key}_sum"] = f"{by.loc[name, 'code_sum_sdr']:.2f}"
        values[f"latents_{key}_rel"] = f"{by.loc[name, 'relative_latent_error']:.2f}"
    lin_holds = by.loc["LQ-VAE", "linearity_%"] > by.loc["VQ-VAE", "linearity_%"]
    values["latents_lin_claim"] = "holds" if lin_holds else "does not hold"
    vq_ppl, lq_ppl = by.loc["VQ-VAE", "perplexity"], by.loc["LQ-VAE", "perplexity"]
    values["latents_usage_note"] = (
        f"The codebook perplexity on the test sources is {lq_ppl:.1f} for the LQ-VAE and {vq_ppl:.1f} "
        f"for the VQ-VAE (of K = {int(by.loc['VQ-VAE', 'K'])} codes). "
        + ("L_lin is zero when every position takes the same code, so a collapsed codebook makes part of the LQ-VAE's "
           "linearity trivial agreement, bought with reconstruction." if lq_ppl < vq_ppl / 4 else
           "Both autoencoders use their codebooks comparably, so the linearity is not bought by collapsing the codebook."))
    return values


#: The LQ-VAEs trained with different L_lin weights, one ``lqvae_lin<weight>.pt`` each (``checkpoints/latents/``).
LIN_WEIGHT_FOLDER = "lin_weight"


def validation_set(config: LatentsChapterConfig, root, seed: int = 0):
    """The validation chunks that choose the L_lin weight (the chapter and
    ``scripts/choose_lin_weight.py`` both read them here): ``config.n_validation_chunks`` chunks of
    ``config.chunk_length`` samples of ``config.classes`` from the dataset at ``root``."""
    from sepcore.data.slakh import SlakhMixtures

    return SlakhMixtures(root, classes=config.classes, split="validation", chunk_length=config.chunk_length,
                         max_chunks=config.n_validation_chunks, seed=seed)


def lin_weight_candidates(folder, device="cpu") -> dict:
    """``{"L_lin weight w": VQVAE}`` for every LQ-VAE in ``folder``, by increasing weight."""
    from pathlib import Path

    from sepcore.checkpoints import load_model
    from sepcore.models.vqvae import VQVAE

    paths = [path for path in sorted(Path(folder).glob("lqvae_*.pt")) if not path.name.endswith(".state.pt")]
    models = [load_model(path, expect_class=VQVAE, device=device).eval() for path in paths]
    return {f"L_lin weight {m.config.lin_weight:g}": m for m in sorted(models, key=lambda m: m.config.lin_weight)}


def choose_lin_weight(candidates: dict, validation, device="cpu") -> tuple[str, pd.DataFrame]:
    """The candidate whose summed code best reconstructs the mixture on **validation** chunks.

    The criterion is :func:`measure`'s ``code_sum_sdr``: the SDR of ``decode(M[z_1, z_2])`` against
    the mixture, with ``z_k`` the sources' codes. It needs both halves of what the LQ-VAE is for:
    codes that reconstruct (a collapsed codebook decodes near silence) and a code table ``M`` that
    the mixture's code follows (L_lin). Returns ``(chosen name, the validation summary)``.
    """
    summary, _, _ = reconstruction_linearity(candidates, validation, device)
    summary["chosen"] = summary["code_sum_sdr"] == summary["code_sum_sdr"].max()
    return str(summary.loc[summary["chosen"], "model"].iloc[0]), summary
