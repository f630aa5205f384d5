"""The posterior outputs of the latent methods: the mean of the rows' masks
(:func:`sepcore.separation.masking.mean_masked_sources`) and the Wiener filter of their mean powers
(:func:`sepcore.separation.masking.wiener_sources`)."""

import pytest
import torch

from sepcore.mixing import mix
from sepcore.models.spectral_codec import SpectralCodec, SpectralCodecConfig
from sepcore.models.transformer import PriorConfig, TransformerPrior
from sepcore.models.vqvae import VQVAE, VQVAEConfig
from sepcore.separation.lass import fit_count_likelihood
from sepcore.separation.lass_search import LASSConfig, LASSSeparator
from sepcore.separation.latent_bayes import LatentBayesConfig, LatentBayesSeparator
from sepcore.separation.masking import (
    check_estimate,
    codes_to_sources,
    magnitudes_of_codes,
    mask_with_magnitudes,
    mean_masked_sources,
    posterior_sources,
    shifted_posterior_sources,
    wiener_sources,
)


def spectral_codec():
    torch.manual_seed(0)
    return SpectralCodec(SpectralCodecConfig(n_fft=64, hop=16, width=16, res_depth=1, codebook_size=8, code_dim=4)).eval()


def waveform_codec():
    torch.manual_seed(0)
    return VQVAE(VQVAEConfig(dims=1, strides=(2, 2), width=8, res_depth=1, dilation_growth=1, codebook_size=8,
                             code_dim=4)).eval()


def tiny_search_models():
    """A waveform codec, a prior for both sources, the count likelihood of random pairs, and a mixture."""
    codec = waveform_codec()
    prior = TransformerPrior(PriorConfig(vocab_size=8, block_size=32, n_layer=1, n_head=1, n_embd=8)).eval()
    x = torch.randn(2, 8, 2048)
    return codec, prior, fit_count_likelihood(codec, x[0], x[1]), 0.5 * (x[0, 0] + x[1, 0])


@pytest.mark.parametrize("posterior", [mean_masked_sources, wiener_sources])
@pytest.mark.parametrize("make_codec, hop, steps", [(spectral_codec, 16, 64), (waveform_codec, 4, 512)])
def test_a_posterior_estimate_of_one_row_is_that_rows_masked_output(make_codec, hop, steps, posterior):
    codec = make_codec()
    codes = torch.randint(0, 8, (1, 2, steps))
    m = torch.randn(steps * hop) * 0.1
    for power in (1.0, 2.0):
        assert torch.allclose(posterior(codec, codes, m, power),
                              codes_to_sources(codec, codes[0], m, "masked", power), atol=1e-6)


def test_the_mean_of_masks_is_the_mean_of_the_masked_outputs_and_remixes_to_the_mixture():
    """The masked estimate is linear in the mask, so averaging masks averages the estimates."""
    codec = spectral_codec()
    codes = torch.randint(0, 8, (5, 2, 40))
    m = torch.randn(40 * 16) * 0.1
    each = torch.stack([codes_to_sources(codec, row, m, "masked") for row in codes])
    mean = mean_masked_sources(codec, codes, m)
    assert torch.allclose(mean, each.mean(0), atol=1e-6)
    assert torch.allclose(mix(mean, dim=0), m, atol=1e-5)
    one_hot = torch.zeros(5)
    one_hot[3] = 1.0
    assert torch.allclose(mean_masked_sources(codec, codes, m, weights=one_hot), each[3], atol=1e-6)
    with pytest.raises(ValueError, match="summing to one"):
        mean_masked_sources(codec, codes, m, weights=torch.ones(5))


def test_the_mean_needs_masked_output_and_rows_as_they_are():
    assert check_estimate("mean", "masked") == "mean"
    with pytest.raises(ValueError, match="needs output"):
        check_estimate("mean", "raw")
    with pytest.raises(ValueError, match="estimate must be"):
        check_estimate("median", "masked")
    codec = waveform_codec()
    prior = TransformerPrior(PriorConfig(vocab_size=8, block_size=32, n_layer=1, n_head=1, n_embd=8))
    x = torch.randn(2, 6, 64)
    likelihood = fit_count_likelihood(codec, x[0], x[1])
    with pytest.raises(ValueError, match="refine_steps"):
        LASSSeparator(codec, [prior, prior], likelihood,
                      LASSConfig(method="top_p", output="masked", estimate="mean", refine_steps=5), device="cpu")
    with pytest.raises(ValueError, match="alpha"):
        LatentBayesSeparator(codec, [prior, prior], LatentBayesConfig(output="masked", estimate="mean", alpha=0.5),
                             device="cpu")


def test_lass_and_latent_bayes_average_every_row_of_their_search():
    codec, prior, likelihood, m = tiny_search_models()
    lass = LASSSeparator(codec, [prior, prior], likelihood,
                         LASSConfig(method="ancestral", n_rows=6, output="masked", estimate="mean"), device="cpu")
    out = lass.separate(m)
    rows = lass.last.codes[0]                                            # (6, 2, S)
    assert rows.shape[0] == 6 and len({tuple(r.flatten().tolist()) for r in rows}) > 1
    assert torch.allclose(out, mean_masked_sources(codec, rows, m), atol=1e-6)
    best = LASSSeparator(codec, [prior, prior], likelihood,
                         LASSConfig(method="ancestral", n_rows=6, output="masked"), device="cpu").separate(m)
    assert not torch.allclose(out, best, atol=1e-4)                     # not the best row alone
    bayes = LatentBayesSeparator(codec, [prior, prior], LatentBayesConfig(n_candidates=4, output="masked",
                                                                          estimate="mean"), device="cpu")
    out = bayes.separate(m)
    assert torch.allclose(out, mean_masked_sources(codec, bayes.last.codes, m), atol=1e-6)
    assert torch.allclose(mix(out, dim=0), m, atol=1e-5)


def test_the_wiener_filter_divides_the_rows_mean_powers():
    """M_k = mean_r |V_kr|^p / sum_j mean_r |V_jr|^p: the masked output of magnitudes (mean_r |V_kr|^p)^(1/p)."""
    codec = spectral_codec()
    torch.manual_seed(1)
    codes = torch.randint(0, 8, (4, 2, 40))
    m = torch.randn(40 * 16) * 0.1
    magnitudes, config = magnitudes_of_codes(codec, codes, m.shape[0])              # (R, N, F, frames)
    for power in (1.0, 2.0):
        expected = mask_with_magnitudes(m, (magnitudes ** power).mean(0) ** (1 / power), config, power)
        out = wiener_sources(codec, codes, m, power)
        assert torch.allclose(out, expected, atol=1e-6)
        assert torch.allclose(mix(out, dim=0), m, atol=1e-5)                       # a mask: it remixes to m
        assert not torch.allclose(out, mean_masked_sources(codec, codes, m, power), atol=1e-4)
    same = codes[:1].expand(3, -1, -1)                                             # identical rows: one mask
    assert torch.allclose(wiener_sources(codec, same, m), mean_masked_sources(codec, same, m), atol=1e-6)
    one_hot = torch.tensor([0.0, 0.0, 1.0, 0.0])
    assert torch.allclose(wiener_sources(codec, codes, m, weights=one_hot),
                          codes_to_sources(codec, codes[2], m, "masked"), atol=1e-6)


def test_the_wiener_estimate_needs_masked_output_and_is_what_both_methods_return():
    with pytest.raises(ValueError, match="needs output"):
        check_estimate("wiener", "raw")
    codec, prior, likelihood, m = tiny_search_models()
    lass = LASSSeparator(codec, [prior, prior], likelihood,
                         LASSConfig(method="ancestral", n_rows=6, output="masked", estimate="wiener"), device="cpu")
    out = lass.separate(m)
    assert torch.allclose(out, wiener_sources(codec, lass.last.codes[0], m), atol=1e-6)
    bayes = LatentBayesSeparator(codec, [prior, prior], LatentBayesConfig(n_candidates=4, output="masked",
                                                                          estimate="wiener"), device="cpu")
    out = bayes.separate(m)
    assert torch.allclose(out, wiener_sources(codec, bayes.last.codes, m), atol=1e-6)
    with pytest.raises(ValueError, match="alpha"):
        LatentBayesSeparator(codec, [prior, prior], LatentBayesConfig(output="masked", estimate="wiener", alpha=0.5),
                             device="cpu")


def test_lass_spectral_takes_the_estimate_and_its_power_chosen_on_validation(tmp_path):
    """``LASSSeparator.from_spectral`` reads lass_spectral_settings.json: the posterior estimate runs the
    chosen sampler and masks with ``posterior_power``; the best beam keeps ``mask_power``."""
    import json

    from sepcore.separation.latent_models import SPECTRAL_SETTINGS
    from sepcore.utils import REPO_ROOT

    committed = REPO_ROOT / "checkpoints"
    (tmp_path / "latents").mkdir()
    (tmp_path / "lass").mkdir()
    for name in ("spectral.pt", "prior_spectral_drums.pt", "prior_spectral_bass.pt"):
        (tmp_path / "latents" / name).symlink_to(committed / "latents" / name)
    (tmp_path / "lass" / "counts_spectral_drums_bass.pt").symlink_to(committed / "lass" / "counts_spectral_drums_bass.pt")
    settings = {"likelihood_weight": 3.0, "mask_power": 1.0, "magnitude_weight": 0.0, "spectral_beams": 4,
                "estimate": "wiener", "sampler": "ancestral", "sampler_rows": 8, "sampler_temperature": 1.3,
                "posterior_power": 2.0}
    (tmp_path / "lass" / SPECTRAL_SETTINGS).write_text(json.dumps(settings))
    config = LASSSeparator.from_spectral(("drums", "bass"), checkpoint=tmp_path / "latents", device="cpu").config
    assert (config.estimate, config.method, config.n_rows, config.temperature, config.mask_power, config.shifts) == \
        ("wiener", "ancestral", 8, 1.3, 2.0, 1)
    (tmp_path / "lass" / SPECTRAL_SETTINGS).write_text(json.dumps({**settings, "shifts": 4}))
    assert LASSSeparator.from_spectral(("drums", "bass"), checkpoint=tmp_path / "latents", device="cpu").config.shifts == 4
    (tmp_path / "lass" / SPECTRAL_SETTINGS).write_text(json.dumps({**settings, "estimate": "map", "shifts": 4}))
    config = LASSSeparator.from_spectral(("drums", "bass"), checkpoint=tmp_path / "latents", device="cpu").config
    assert (config.estimate, config.method, config.n_rows, config.mask_power, config.shifts) == ("map", "beam", 4, 1.0, 1)


@pytest.mark.parametrize("estimate", ["mean", "wiener"])
def test_the_shifted_estimate_averages_searches_on_delayed_mixtures_cropped_back(estimate):
    """Each term is the posterior estimate of the mixture delayed by its offset (zeros in front),
    cropped back: one grid is the plain estimate, and the mean still remixes to m."""
    codec = spectral_codec()
    torch.manual_seed(2)
    m = torch.randn(40 * 16) * 0.1
    rows = [(0, torch.randint(0, 8, (3, 2, 40))), (8, torch.randint(0, 8, (3, 2, 41)))]
    out = shifted_posterior_sources(codec, rows, m, estimate)
    delayed = torch.cat([torch.zeros(8), m])
    expected = 0.5 * (posterior_sources(codec, rows[0][1], m, estimate)
                      + posterior_sources(codec, rows[1][1], delayed, estimate)[:, 8:8 + m.shape[0]])
    assert out.shape == (2, m.shape[0]) and torch.allclose(out, expected, atol=1e-6)
    assert torch.allclose(mix(out, dim=0), m, atol=1e-5)
    assert torch.allclose(shifted_posterior_sources(codec, rows[:1], m, estimate),
                          posterior_sources(codec, rows[0][1], m, estimate), atol=1e-7)


def test_lass_with_shifts_searches_each_grid_and_keeps_the_undelayed_search():
    codec, prior, likelihood, m = tiny_search_models()
    config = LASSConfig(method="ancestral", n_rows=4, output="masked", estimate="mean")
    one = LASSSeparator(codec, [prior, prior], likelihood, config, device="cpu")
    plain = one.separate(m)
    two = LASSSeparator(codec, [prior, prior], likelihood, config.replace(shifts=2), device="cpu")
    out = two.separate(m)
    assert torch.equal(two.last.codes, one.last.codes)                  # ``last``: the search on the undelayed mixture
    hop = codec.config.hop
    delayed = two.delayed_rows(m)
    assert [offset for offset, _ in delayed] == [hop // 2] and torch.equal(two.last.codes, one.last.codes)
    expected = shifted_posterior_sources(codec, [(0, one.last.codes[0]), *delayed], m, "mean")
    assert torch.allclose(out, expected, atol=1e-6) and not torch.allclose(out, plain, atol=1e-4)
    assert torch.allclose(mix(out, dim=0), m, atol=1e-5)
    with pytest.raises(ValueError, match="shifts"):
        LASSSeparator(codec, [prior, prior], likelihood, config.replace(shifts=0), device="cpu")
