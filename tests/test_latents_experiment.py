"""The latents chapter's measurements: linearity is M[z1, z2] == code of the mixture, perplexity is exp H."""

import math

import torch

from sepcore.experiments import latents
from sepcore.models.vqvae import VQVAE, VQVAEConfig, pair_code_table


class Chunks:
    sample_rate = 22050

    def __init__(self, n=2, length=4096):
        generator = torch.Generator().manual_seed(0)
        self.items = []
        for k in range(n):
            sources = 0.3 * torch.randn(2, length, generator=generator)
            self.items.append({"id": f"c{k}", "sources": sources, "mixture": sources.mean(0)})

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


def tiny(seed):
    torch.manual_seed(seed)
    return VQVAE(VQVAEConfig.quick().replace(codebook_size=8, code_dim=2, width=4, strides=(2, 2))).eval()


def test_linearity_and_perplexity_are_what_they_say():
    models, chunks = {"VQ-VAE": tiny(0), "LQ-VAE": tiny(1)}, Chunks()
    summary, per_chunk, usage = latents.reconstruction_linearity(models, chunks)
    assert list(summary["model"]) == ["VQ-VAE", "LQ-VAE"] and len(per_chunk) == 4
    model, item = models["VQ-VAE"], chunks[1]
    with torch.no_grad():
        z, z_mix = model.encode(item["sources"]), model.encode(item["mixture"][None])[0]
    expected = float((z_mix == pair_code_table(model)[z[0], z[1]]).float().mean())
    assert per_chunk.set_index(["model", "id"]).loc[("VQ-VAE", "c1"), "linearity"] == expected
    counts, perplexity = usage["VQ-VAE"]
    p = counts[counts > 0] / counts.sum()
    assert math.isclose(perplexity, math.exp(-(p * p.log()).sum()), rel_tol=1e-6) and 1 <= perplexity <= 8
    glue = latents.linearity_glue(summary)
    holds = summary.set_index("model").loc["LQ-VAE", "linearity_%"] > summary.set_index("model").loc["VQ-VAE", "linearity_%"]
    assert glue["latents_lin_claim"] == ("holds" if holds else "does not hold")


def test_the_lin_weight_goes_to_the_candidate_whose_code_sum_decodes_the_mixture_best(tmp_path):
    from sepcore.checkpoints import save_checkpoint

    collapsed = tiny(1)
    with torch.no_grad():                       # a collapsed codec: every code decodes to silence
        for p in collapsed.decoder.parameters():
            p.zero_()
    for model, weight in ((tiny(0), 0.125), (tiny(2), 0.5), (collapsed, 1.0)):
        model.config = model.config.replace(lin_weight=weight)
        save_checkpoint(tmp_path / f"lqvae_lin{weight:g}.pt", model)
    candidates = latents.lin_weight_candidates(tmp_path)
    assert list(candidates) == ["L_lin weight 0.125", "L_lin weight 0.5", "L_lin weight 1"]   # by increasing weight
    chosen, summary = latents.choose_lin_weight(candidates, Chunks())
    by = summary.set_index("model")
    assert by["chosen"].sum() == 1 and by.loc[chosen, "code_sum_sdr"] == by["code_sum_sdr"].max()
    assert chosen != "L_lin weight 1"           # silence scores no SDR at all
