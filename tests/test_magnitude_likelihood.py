"""The magnitude likelihood of spectral code pairs: its matrix-product scores equal the direct formula,
a frame made of a pair's own magnitudes scores that pair at the maximum, and the search runs on it."""

import pytest
import torch

from sepcore.models.spectral_codec import SpectralCodec, SpectralCodecConfig
from sepcore.models.transformer import PriorConfig, TransformerPrior
from sepcore.separation.lass_search import LASSConfig, LASSSeparator
from sepcore.separation.lass_smoothed import SmoothedCountLikelihood
from sepcore.separation.magnitude_likelihood import MagnitudeLikelihood, code_atoms


def tiny_codec(K=6):
    torch.manual_seed(0)
    return SpectralCodec(SpectralCodecConfig(n_fft=64, hop=16, width=16, res_depth=1, codebook_size=K, code_dim=4,
                                             sample_rate=8000)).eval()


def test_scores_equal_the_direct_gaussian_on_band_features():
    codec = tiny_codec()
    lik = MagnitudeLikelihood(codec, sigma=0.7, n_bands=8)
    K = codec.config.codebook_size
    atoms = code_atoms(codec) @ lik.bands                                      # (K, n_bands)
    target = lik.features(torch.rand(5, 8) * 0.2)
    scores = lik.scores(target)                                                # (5, K^2)
    for i, j in [(0, 0), (1, 4), (5, 2)]:
        predicted = lik.features(0.5 * (atoms[i] + atoms[j]))                  # mean mixing: w = 1/2
        direct = -(predicted - target).pow(2).sum(1) / (2 * 0.7 ** 2 * 8)
        assert torch.allclose(scores[:, i * K + j], direct, atol=1e-4)


def test_a_frame_made_of_a_pair_scores_that_pair_at_the_maximum():
    codec = tiny_codec()
    lik = MagnitudeLikelihood(codec, n_bands=8)
    K = codec.config.codebook_size
    pairs = torch.tensor([1 * K + 3, 4 * K + 4])
    scores = lik.scores(lik.pair_features[pairs])
    assert torch.allclose(scores[torch.arange(2), pairs], torch.zeros(2), atol=1e-4)
    assert torch.allclose(scores.max(1).values, torch.zeros(2), atol=1e-4)
    assert torch.equal(scores[:, 1 * K + 3], scores[:, 3 * K + 1])           # the pair's order does not matter


def test_bound_slices_are_the_best_pairs_and_log_prob_reads_the_table():
    codec = tiny_codec()
    lik = MagnitudeLikelihood(codec, n_bands=8, top_pairs=5)
    with pytest.raises(RuntimeError):
        lik.gather_slices(torch.tensor([0]))
    frames = lik.bind(torch.randn(1, 16 * 7))
    assert frames.shape == (1, 7)
    i, j, log_p = lik.gather_slices(frames[0])
    assert i.shape == (7, 5)
    assert torch.allclose(log_p[:, 0], lik.bound.max(1).values)
    assert torch.allclose(lik.log_prob(i[:, 2], j[:, 2], frames[0]), log_p[:, 2])


def test_counts_multiply_in_by_the_mixture_code():
    from sepcore.separation.lass import CountLikelihood

    codec = tiny_codec()
    K = codec.config.codebook_size
    g = torch.Generator().manual_seed(1)
    i, j, k = (torch.randint(0, K, (200,), generator=g) for _ in range(3))
    counts = SmoothedCountLikelihood(CountLikelihood.fit([(i, j, k)], K), codec.codebook, beta=1.0, sigma=1.0)
    x = torch.randn(1, 16 * 6)
    alone = MagnitudeLikelihood(codec, n_bands=8)
    both = MagnitudeLikelihood(codec, n_bands=8, counts=counts, counts_weight=0.5)
    alone.bind(x)
    both.bind(x)
    mix_codes = codec.encode(x)[0]
    expected = alone.bound + 0.5 * counts.table.permute(2, 0, 1).reshape(K, K * K)[mix_codes]
    assert torch.allclose(both.bound, expected, atol=1e-5)


def test_lass_searches_on_the_mixture_frames_and_its_score_is_the_joint_score():
    from sepcore.experiments.latent_variants import joint_score, search_codes

    codec = tiny_codec()
    K = codec.config.codebook_size
    torch.manual_seed(0)
    priors = [TransformerPrior(PriorConfig(vocab_size=K, block_size=32, n_layer=1, n_head=1, n_embd=8)) for _ in range(2)]
    lik = MagnitudeLikelihood(codec, n_bands=8, top_pairs=K * K)
    sep = LASSSeparator(codec, priors, lik, LASSConfig(method="beam", n_rows=3, likelihood_weight=2.0), device="cpu")
    mixture = torch.randn(16 * 10) * 0.1
    codes, frames = search_codes(sep, mixture)
    assert codes.shape == (2, 10) and torch.equal(frames, torch.arange(10))
    assert joint_score(sep, codes, frames) == pytest.approx(float(sep.last.score[0].max()), abs=1e-3)
    assert sep.separate(mixture).shape == (2, 16 * 10)


def test_latent_bayes_draws_from_the_frame_tables_and_a_sharp_likelihood_picks_the_best_pairs():
    from sepcore.experiments.latent_variants import joint_score, search_codes
    from sepcore.separation.latent_bayes import LatentBayesConfig, LatentBayesSeparator

    codec = tiny_codec()
    K = codec.config.codebook_size
    torch.manual_seed(0)
    priors = [TransformerPrior(PriorConfig(vocab_size=K, block_size=32, n_layer=1, n_head=1, n_embd=8)) for _ in range(2)]
    lik = MagnitudeLikelihood(codec, n_bands=8)
    with pytest.raises(ValueError):
        LatentBayesSeparator(codec, priors * 2, device="cpu", likelihood=lik)
    sharp = LatentBayesSeparator(codec, priors, LatentBayesConfig(n_candidates=4, likelihood_weight=1e4), device="cpu",
                                 likelihood=lik)
    mixture = torch.randn(16 * 8) * 0.1
    candidates = sharp.sample(mixture, decode=False)
    flat = candidates.codes[:, 0] * K + candidates.codes[:, 1]                   # (B, S)
    chosen = lik.bound.gather(1, flat.T)                                         # (S, B)
    assert torch.allclose(chosen, lik.bound.max(1, keepdim=True).values.expand_as(chosen), atol=1e-3)
    codes, frames = search_codes(sharp, mixture)
    with torch.no_grad():
        prior_part = sum(float(p.log_prob(codes[n][None])[0]) for n, p in enumerate(priors))
    expected = prior_part + 1e4 * float(lik.log_prob(codes[0], codes[1], frames).sum())
    assert joint_score(sharp, codes, frames) == pytest.approx(expected, rel=1e-5)


def test_grid_on_validation_scores_every_point_and_power_and_returns_the_best():
    from sepcore.experiments.latent_variants import grid_on_validation

    codec = tiny_codec()
    K = codec.config.codebook_size
    torch.manual_seed(0)
    priors = [TransformerPrior(PriorConfig(vocab_size=K, block_size=32, n_layer=1, n_head=1, n_embd=8)) for _ in range(2)]
    sources = torch.randn(3, 2, 16 * 40) * 0.1

    class Chunks:
        sample_rate = 8000

        def __getitem__(self, i):
            return {"id": str(i), "sources": sources[i], "mixture": sources[i].mean(0)}

    seen = []

    def configure(likelihood_weight, n_rows):
        seen.append((likelihood_weight, n_rows))
        return LASSSeparator(codec, priors, MagnitudeLikelihood(codec, n_bands=8, top_pairs=16),
                             LASSConfig(method="beam", n_rows=n_rows, likelihood_weight=likelihood_weight), device="cpu")

    best, table = grid_on_validation(configure, {"likelihood_weight": [0.5, 2.0], "n_rows": [1, 2]}, Chunks(), [0, 1, 2],
                                     powers=(1.0, 2.0))
    assert seen == [(0.5, 1), (0.5, 2), (2.0, 1), (2.0, 2)]
    assert len(table) == 8 and set(table.columns) == {"likelihood_weight", "n_rows", "mask_power", "sdr"}
    top = table.loc[table.sdr.idxmax()]
    assert best == {"likelihood_weight": top.likelihood_weight, "n_rows": int(top.n_rows), "mask_power": top.mask_power}
    assert isinstance(best["n_rows"], int)
    assert grid_on_validation(configure, {"likelihood_weight": [1.0], "n_rows": [1]}, Chunks(), [])[0] is None
    seen.clear()                      # several outputs: scored from the same searches, one column more
    outputs = ("posterior mean", "posterior Wiener")
    def sampled(likelihood_weight, n_rows):
        seen.append((likelihood_weight, n_rows))
        return LASSSeparator(codec, priors, MagnitudeLikelihood(codec, n_bands=8, top_pairs=16),
                             LASSConfig(method="ancestral", n_rows=n_rows, likelihood_weight=likelihood_weight), device="cpu")

    best, table = grid_on_validation(sampled, [{"likelihood_weight": 1.0, "n_rows": 3}], Chunks(), [0, 1], powers=(2.0,),
                                     output=outputs)
    assert seen == [(1.0, 3)] and len(table) == 2 and set(table.output) == set(outputs)
    assert best["output"] == table.loc[table.sdr.idxmax(), "output"]


def test_variant_settings_read_the_validation_choice(tmp_path):
    import json

    from sepcore.experiments.latent_variants import VariantSettings
    from sepcore.separation.latent_models import SPECTRAL_SETTINGS

    (tmp_path / "lass").mkdir()
    default = VariantSettings.chosen_on_validation("default", tmp_path)          # no file: the defaults
    assert default == VariantSettings.for_profile("default", spectral_likelihood_weight=3.0)
    (tmp_path / "lass" / SPECTRAL_SETTINGS).write_text(json.dumps(
        {"likelihood_weight": 1.0, "mask_power": 1.0, "magnitude_weight": 10.0, "spectral_beams": 32}))
    chosen = VariantSettings.chosen_on_validation("default", tmp_path)
    assert (chosen.spectral_likelihood_weight, chosen.mask_power, chosen.magnitude_weight, chosen.spectral_beams) == \
        (1.0, 1.0, 10.0, 32)
    assert VariantSettings.chosen_on_validation("quick", tmp_path).spectral_beams == 2
    assert chosen.posterior_power is None                           # the best beam: no posterior output chosen
    (tmp_path / "lass" / SPECTRAL_SETTINGS).write_text(json.dumps(
        {"likelihood_weight": 1.0, "mask_power": 1.0, "magnitude_weight": 10.0, "spectral_beams": 32,
         "estimate": "wiener", "sampler": "ancestral", "sampler_rows": 8, "sampler_temperature": 1.3, "posterior_power": 2.0}))
    sampled = VariantSettings.chosen_on_validation("default", tmp_path)
    assert (sampled.mean_output, sampled.mean_rows, sampled.posterior_power, sampled.mask_power, sampled.mean_shifts) == \
        ("posterior Wiener", 8, 2.0, 1.0, 1)
    saved = json.loads((tmp_path / "lass" / SPECTRAL_SETTINGS).read_text())
    (tmp_path / "lass" / SPECTRAL_SETTINGS).write_text(json.dumps({**saved, "shifts": 4}))
    assert VariantSettings.chosen_on_validation("default", tmp_path).mean_shifts == 4
    assert not sampled.fitted_pairs                                  # absent: the decoded atoms
    (tmp_path / "lass" / SPECTRAL_SETTINGS).write_text(json.dumps({**saved, "fitted_pairs": True}))
    assert VariantSettings.chosen_on_validation("default", tmp_path).fitted_pairs


def test_the_shift_counts_must_divide_the_largest():
    """n grids take every (max / n)-th offset of one set of searches, so 3 of 4 cannot be scored."""
    from sepcore.experiments.latent_variants import VariantSettings, choose_shifts_on_validation

    with pytest.raises(ValueError, match="divide the largest"):
        choose_shifts_on_validation(VariantSettings(), [], [], checkpoints="unused", shifts=(1, 3, 4))
