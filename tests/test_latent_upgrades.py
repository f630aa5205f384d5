"""The spectral codec, mixture-consistent masking, the smoothed count likelihood, the prior
baselines and the latent diagnostics."""

import math

import pytest
import torch

from sepcore.mixing import mix
from sepcore.models.spectral_codec import SpectralCodec, SpectralCodecConfig
from sepcore.models.transformer import PriorConfig, TransformerPrior
from sepcore.models.vqvae import VQVAE, VQVAEConfig
from sepcore.separation.blind.stft import stft
from sepcore.separation.lass import CountLikelihood
from sepcore.separation.lass_search import LASSConfig, LASSSeparator, lass_search
from sepcore.separation.lass_smoothed import (
    SmoothedCountLikelihood,
    SparseSmoothedCountLikelihood,
    dense_counts,
    fit_smoothing,
    fit_sparse_smoothing,
    kernel_log_q,
    smoothed_likelihood,
    smoothed_log_table,
)
from sepcore.separation.masking import (
    MASK_STFT,
    codes_to_sources,
    mask_with_magnitudes,
    mask_with_waveforms,
)
from sepcore.train.prior_fit import ngram_nll, prior_nll, sample_windows


def tiny_codec(**kw):
    torch.manual_seed(0)
    return SpectralCodec(SpectralCodecConfig(n_fft=64, hop=16, width=16, res_depth=1, codebook_size=8, code_dim=4, **kw))


# ----------------------------------------------------------------------------- spectral codec
def test_spectral_codec_stft_round_trip_and_shapes():
    codec = tiny_codec()
    x = torch.randn(3, 16 * 20)
    spec = codec.stft(x)
    assert spec.shape == (3, 33, 20)
    # exact except the last n_fft / 2 samples, which the dropped last frame covers
    assert torch.allclose(codec.istft(codec.stft(x), x.shape[-1])[:, :-32], x[:, :-32], atol=1e-5)
    codes = codec.encode(x)
    assert codes.shape == (3, 20) and codes.dtype == torch.long
    assert codec.decode_magnitude(codes).shape == (3, 33, 20)
    assert codec.decode(codes).shape == (3, 320)
    with pytest.raises(ValueError, match="multiple of the hop"):
        codec.encode(torch.randn(1, 100))


def test_spectral_features_invert_and_losses_train():
    codec = tiny_codec()
    magnitude = torch.rand(2, 33, 5) * 3
    assert torch.allclose(codec.magnitude(codec.features(magnitude)), magnitude, atol=1e-5)
    losses = codec.losses(torch.randn(2, 2, 160) * 0.1)
    assert losses["codes"].shape == (2 * 2 + 2, 10)          # the sources and their mixtures
    assert torch.isfinite(losses["total"]) and losses["total"].requires_grad


# ----------------------------------------------------------------------------- masking
def test_masked_estimates_remix_to_the_mixture_exactly():
    torch.manual_seed(0)
    sources = torch.randn(2, 4096)
    m = mix(sources, dim=0)
    estimates = torch.randn(2, 4096)
    out = mask_with_waveforms(m, estimates)
    assert out.shape == (2, 4096)
    assert torch.allclose(mix(out, dim=0), m, atol=1e-4)


def test_masks_from_the_true_sources_recover_disjoint_sources():
    t = torch.arange(8192) / 22050
    low, high = torch.sin(2 * math.pi * 110 * t), torch.sin(2 * math.pi * 3000 * t)
    sources = torch.stack([low, high])
    m = mix(sources, dim=0)
    out = mask_with_magnitudes(m, stft(sources, MASK_STFT).abs(), MASK_STFT)
    error = (out - sources)[:, 1024:-1024].pow(2).mean() / sources.pow(2).mean()
    assert error < 1e-3


def test_codes_to_sources_raw_is_the_decode_and_masked_uses_the_codec_stft():
    codec = tiny_codec()
    x = torch.randn(2, 320) * 0.1
    codes = codec.encode(x)
    m = mix(x, dim=0)
    raw = codes_to_sources(codec, codes, m, "raw")
    assert torch.allclose(raw, codec.decode(codes)[..., :320])
    masked = codes_to_sources(codec, codes, m, "masked")
    assert torch.allclose(mix(masked, dim=0), m, atol=1e-5)
    with pytest.raises(ValueError, match="output must be"):
        codes_to_sources(codec, codes, m, "wiener")


# ----------------------------------------------------------------------------- smoothed likelihood
def counts_fixture(K=5, n=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    i = torch.randint(0, K, (n,), generator=g)
    j = torch.randint(0, K, (n,), generator=g)
    k = (i + j) % K
    k[:20] = torch.randint(0, K, (20,), generator=g)
    return CountLikelihood.fit([(i, j, k)], K), torch.stack([i, j, k], 1)


def test_kernel_and_smoothed_table_are_normalised_over_mixture_codes():
    lik, _ = counts_fixture()
    codebook = torch.randn(5, 3)
    log_q = kernel_log_q(codebook, 0.7, chunk=2)
    assert torch.allclose(log_q.exp().sum(-1), torch.ones(5, 5), atol=1e-5)
    table = smoothed_log_table(dense_counts(lik), log_q, 2.0)
    assert torch.allclose(table.exp().sum(-1), torch.ones(5, 5), atol=1e-5)


def test_smoothing_limits_counts_and_kernel():
    lik, _ = counts_fixture()
    counts = dense_counts(lik)
    assert torch.equal(counts, counts.transpose(0, 1))                # both orders counted
    log_q = kernel_log_q(torch.randn(5, 3), 0.5)
    tiny = smoothed_log_table(counts, log_q, 1e-9)
    seen = counts.sum(-1) > 0
    ratio = (counts / counts.sum(-1, keepdim=True).clamp_min(1))
    assert torch.allclose(tiny.exp()[seen], ratio[seen], atol=1e-6)
    huge = smoothed_log_table(counts, log_q, 1e9)
    assert torch.allclose(huge.exp(), log_q.exp(), atol=1e-5)
    empty = torch.zeros_like(counts)
    assert torch.allclose(smoothed_log_table(empty, log_q, 3.0), log_q, atol=1e-5)   # unseen pair: the kernel


def test_fit_smoothing_picks_the_best_held_out_row():
    lik, triples = counts_fixture()
    best, grid = fit_smoothing(lik, torch.randn(5, 3), triples[:50], betas=(0.1, 10.0), sigma_scales=(0.5, 2.0))
    assert len(grid) == 1 + 4 and grid[0]["beta"] == 0.0
    top = max(grid[1:], key=lambda r: r["held_out_nats"])
    assert best == {"beta": top["beta"], "sigma": top["sigma"]}


def test_smoothed_slices_run_in_the_search_and_log_prob_matches_the_table():
    lik, _ = counts_fixture()
    smooth = SmoothedCountLikelihood(lik, torch.randn(5, 3), beta=1.0, sigma=1.0, top_pairs=None)
    i, j, log_p = smooth.gather_slices(torch.tensor([0, 3]))
    assert i.shape == (2, 25) and torch.isfinite(log_p).all()
    assert torch.allclose(smooth.log_prob(i[1], j[1], torch.full_like(i[1], 3)), log_p[1])
    torch.manual_seed(0)
    priors = [TransformerPrior(PriorConfig(vocab_size=5, block_size=8, n_layer=1, n_head=1, n_embd=8)) for _ in range(2)]
    result = lass_search(priors, smooth, torch.tensor([[1, 2, 3, 4]]), LASSConfig(method="beam", n_rows=3))
    assert result.codes.shape == (1, 3, 2, 4)


# ----------------------------------------------------------------------------- priors
def test_ngram_baselines_match_a_direct_count():
    train = [torch.tensor([0, 1, 0, 1, 2])]
    windows = torch.tensor([[0, 1]])
    uni = torch.tensor([2, 2, 1]).double() + 0.5
    expected_uni = -(uni / uni.sum()).log()[[0, 1]].mean()
    assert ngram_nll(train, windows, 3, 1) == pytest.approx(float(expected_uni))
    big_row = torch.tensor([0, 2, 0]).double() + 0.5                     # after 0: 1 twice
    expected_bi = (-(uni / uni.sum()).log()[0] - (big_row / big_row.sum()).log()[1]) / 2
    assert ngram_nll(train, windows, 3, 2) == pytest.approx(float(expected_bi))


def test_prior_nll_is_the_model_loss_and_windows_have_their_shape():
    torch.manual_seed(0)
    prior = TransformerPrior(PriorConfig(vocab_size=6, block_size=16, n_layer=1, n_head=1, n_embd=8))
    windows = sample_windows([torch.randint(0, 6, (40,)), torch.randint(0, 6, (9,))], 10, 5, torch.Generator())
    assert windows.shape == (5, 10)
    with torch.no_grad():
        assert prior_nll(prior, windows, batch=2) == pytest.approx(float(prior.loss(windows)), rel=1e-5)


# ----------------------------------------------------------------------------- diagnostics
def test_joint_score_of_the_beam_is_its_running_score():
    from sepcore.experiments.latent_variants import code_diagnostics, joint_score, search_codes

    torch.manual_seed(0)
    vq = VQVAE(VQVAEConfig(strides=(2, 2), width=8, res_depth=1, codebook_size=6, code_dim=4))
    priors = [TransformerPrior(PriorConfig(vocab_size=6, block_size=32, n_layer=1, n_head=1, n_embd=8)) for _ in range(2)]
    x = torch.randn(64, 32) * 0.3
    from sepcore.separation.lass import fit_count_likelihood

    lik = fit_count_likelihood(vq, x[:32], x[32:])
    sep = LASSSeparator(vq, priors, lik, LASSConfig(method="beam", n_rows=4), device="cpu")
    mixture = mix(torch.stack([x[0], x[40]]), dim=0)
    codes, mix_codes = search_codes(sep, mixture)
    assert codes.shape == (2, 8)
    assert joint_score(sep, codes, mix_codes) == pytest.approx(float(sep.last.score[0].max()), abs=1e-3)
    diag = code_diagnostics(sep, codes, codes, mix_codes, ["a", "b"])
    assert diag["correct_a"] == 1.0 and diag["model_error"]


def test_compact_counts_round_trip():
    from sepcore.separation.count_files import compact_counts, load_compact_counts

    lik, _ = counts_fixture()
    back = load_compact_counts(compact_counts(lik))
    assert torch.equal(dense_counts(back), dense_counts(lik))
    assert torch.equal(back.k_ptr, lik.k_ptr) and torch.allclose(back.log_p, lik.log_p)


def test_compact_counts_keep_large_gaps_and_counts():
    from sepcore.separation.count_files import compact_counts, load_compact_counts

    K = 64
    i = torch.tensor([0, 63, 63, 5] + [7] * 300)
    j = torch.tensor([0, 63, 62, 9] + [7] * 300)
    k = torch.tensor([1, 63, 0, 2] + [3] * 300)
    lik = CountLikelihood.fit([(i, j, k)], K)
    packed = compact_counts(lik)
    assert packed["key_gaps"]["big_index"].numel() > 0 and packed["counts"]["big_index"].numel() > 0
    back = load_compact_counts(packed)
    assert torch.equal(dense_counts(back), dense_counts(lik))


def _summary(variant_raw, variant_masked, ceiling_masked, model_error_percent, baseline=2.0):
    import pandas as pd

    rows = [{"method": "mixture (ŝ = m)", "sdr_mean": baseline},
            {"method": "X codes, raw (oracle)", "sdr_mean": ceiling_masked - 1.0},
            {"method": "X codes, masked (oracle)", "sdr_mean": ceiling_masked},
            {"method": "v, raw", "sdr_mean": variant_raw, "correct_drums": 0.2, "correct_bass": 0.4,
             "model_error_percent": model_error_percent},
            {"method": "v, masked", "sdr_mean": variant_masked, "correct_drums": 0.2, "correct_bass": 0.4,
             "model_error_percent": model_error_percent}]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("raw, masked, ceiling, model_error, part, output", [
    (1.0, 3.0, 9.0, 100.0, "none", "masked"),       # beats the mixture: nothing to blame
    (1.0, 1.5, 1.8, 0.0, "codec", "masked"),        # the true codes themselves fall short
    (1.2, 0.5, 9.0, 75.0, "model", "raw"),          # the estimate outscores the truth
    (1.2, 0.5, 9.0, 25.0, "search", "raw"),         # the truth scores higher but was not found
])
def test_diagnose_names_the_part_that_fails(raw, masked, ceiling, model_error, part, output):
    from sepcore.experiments.latent_variants import diagnose

    found = diagnose(_summary(raw, masked, ceiling, model_error), "v", "X")
    assert found["part"] == part and found["best_output"] == output
    assert found["correct_percent"] == pytest.approx(30.0) and found["sentence"].startswith(part)


def test_diagnose_measures_against_the_target_not_the_baseline():
    from sepcore.experiments.latent_variants import diagnose

    summary = _summary(1.0, 3.0, 9.0, 100.0)                  # beats the mixture (2.0) by 1 dB
    assert diagnose(summary, "v", "X")["part"] == "none"
    found = diagnose(summary, "v", "X", margin=3.0)         # but not the mixture + 3 dB
    assert found["part"] == "model" and found["target_sdr"] == pytest.approx(5.0) and "+ 3 dB" in found["sentence"]
    assert diagnose(_summary(1.0, 3.0, 4.0, 100.0), "v", "X", margin=3.0)["part"] == "codec"


def test_count_files_refuse_a_table_counted_over_another_codec(tmp_path):
    from sepcore.separation.count_files import (
        compact_counts,
        load_counts,
        load_counts_file,
        save_counts,
    )
    from sepcore.utils import file_sha256

    codec, other = tmp_path / "codec.pt", tmp_path / "other.pt"
    codec.write_bytes(b"codec weights")
    other.write_bytes(b"other weights")
    likelihood = CountLikelihood.fit([(torch.tensor([0, 1, 2]), torch.tensor([1, 1, 0]), torch.tensor([2, 0, 1]))], 4)
    meta = {"vqvae_sha256": file_sha256(codec)}
    save_counts(tmp_path / "state.pt", likelihood, meta)
    torch.save({"counts": compact_counts(likelihood), "metadata": meta}, tmp_path / "compact.pt")
    assert load_counts(tmp_path / "state.pt", expect_vqvae=codec).nnz == likelihood.nnz
    assert load_counts_file(tmp_path / "compact.pt", expect_vqvae=codec)[0].nnz == likelihood.nnz
    with pytest.raises(ValueError, match="another codec"):
        load_counts(tmp_path / "state.pt", expect_vqvae=other)
    with pytest.raises(ValueError, match="another codec"):
        load_counts_file(tmp_path / "compact.pt", expect_vqvae=other)


def test_codecs_pad_to_their_hop_encode_and_crop_back():
    import torch.nn.functional as F

    spectral = tiny_codec()
    wave = VQVAE(VQVAEConfig(strides=(2, 2), width=8, res_depth=1, codebook_size=6, code_dim=4))
    for codec in (spectral, wave):
        hop = codec.config.hop
        x = torch.randn(2, 5 * hop + 3)
        padded = codec.pad_to_hop(x)
        assert padded.shape[-1] == 6 * hop and torch.equal(padded[..., : x.shape[-1]], x)
        assert torch.equal(padded[..., x.shape[-1]:], torch.zeros(2, hop - 3))
        codes = codec.encode_padded(x)
        assert codes.shape == (2, 6) and torch.equal(codes, codec.encode(F.pad(x, (0, hop - 3))))
        assert codec.decode_cropped(codes, x.shape[-1]).shape == x.shape


def counts3_fixture(n=400, K=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    i, j, h = (torch.randint(0, K, (n,), generator=g) for _ in range(3))
    k = (i + j + h) % K
    k[:30] = torch.randint(0, K, (30,), generator=g)
    return CountLikelihood.fit([(i, j, h, k)], K), torch.stack([i, j, h, k], 1)


def test_sparse_smoothing_of_two_sources_is_the_dense_table_on_counted_pairs():
    lik, triples = counts_fixture()
    codebook = torch.randn(5, 3)
    dense = SmoothedCountLikelihood(lik, codebook, beta=2.0, sigma=0.8, top_pairs=None)
    sparse = SparseSmoothedCountLikelihood(lik, codebook, beta=2.0, sigma=0.8, top_tuples=None)
    i, j = lik.source_codes(sparse.contexts)
    assert torch.allclose(sparse.table, dense.table[i, j], atol=1e-5)
    # an uncounted pair is scored by the kernel alone in both
    uncounted = [(a, b) for a in range(5) for b in range(5) if int(a * 5 + b) not in set(sparse.contexts.tolist())]
    for a, b in uncounted:
        ks = torch.arange(5)
        assert torch.allclose(sparse.log_prob(torch.full_like(ks, a), torch.full_like(ks, b), ks), dense.table[a, b], atol=1e-5)
    best, grid = fit_sparse_smoothing(lik, codebook, triples[:50], betas=(0.1, 10.0), sigma_scales=(0.5, 2.0))
    reference, reference_grid = fit_smoothing(lik, codebook, triples[:50], betas=(0.1, 10.0), sigma_scales=(0.5, 2.0))
    assert best == pytest.approx(reference)
    assert [r["held_out_nats"] for r in grid] == pytest.approx([r["held_out_nats"] for r in reference_grid], abs=1e-5)


def test_three_source_smoothing_is_normalised_limits_to_the_ratios_and_runs_in_the_search():
    lik, rows = counts3_fixture()
    codebook = torch.randn(4, 3)
    smooth = SparseSmoothedCountLikelihood(lik, codebook, beta=1.0, sigma=1.0, top_tuples=None)
    assert torch.allclose(smooth.table.exp().sum(1), torch.ones(smooth.contexts.numel()), atol=1e-5)
    tiny = SparseSmoothedCountLikelihood(lik, codebook, beta=1e-9, sigma=1.0)
    i, j, h, k = rows.T
    assert torch.allclose(tiny.log_prob(i, j, h, k), lik.log_prob(i, j, h, k), atol=1e-4)      # counted: the ratio
    a, b, c, log_p = smooth.gather_slices(torch.tensor([0, 2]))
    assert a.shape == (2, smooth.contexts.numel()) and torch.isfinite(log_p).all()
    assert torch.allclose(smooth.log_prob(a[1], b[1], c[1], torch.full_like(a[1], 2)), log_p[1], atol=1e-6)
    best, grid = fit_sparse_smoothing(lik, codebook, rows[:60], betas=(0.1, 10.0), sigma_scales=(0.5, 2.0))
    assert len(grid) == 5 and best["beta"] in (0.1, 10.0)
    assert max(r["held_out_nats"] for r in grid[1:]) > grid[0]["held_out_nats"]      # the floor costs nats
    torch.manual_seed(0)
    priors = [TransformerPrior(PriorConfig(vocab_size=4, block_size=8, n_layer=1, n_head=1, n_embd=8)) for _ in range(3)]
    result = lass_search(priors, smoothed_likelihood(lik, codebook, 1.0, 1.0), torch.tensor([[1, 2, 3, 0]]),
                         LASSConfig(method="beam", n_rows=3))
    assert result.codes.shape == (1, 3, 3, 4)


def test_diagnose_takes_the_posterior_mean_when_it_is_the_best_output():
    import pandas as pd

    from sepcore.experiments.latent_variants import diagnose

    summary = _summary(1.0, 3.0, 9.0, 100.0)
    mean_row = {"method": "v, posterior mean", "sdr_mean": 6.0, "correct_drums": 0.2, "correct_bass": 0.4,
                "model_error_percent": 100.0}
    found = diagnose(pd.concat([summary, pd.DataFrame([mean_row])], ignore_index=True), "v", "X", margin=3.0)
    assert found["best_output"] == "posterior mean" and found["part"] == "none"


def test_the_posterior_mean_replaces_the_best_beam_only_where_validation_says_so():
    import pandas as pd

    from sepcore.experiments.latent_variants import estimate_choice

    beams = pd.DataFrame({"magnitude_weight": [10.0, 100.0], "sdr": [4.0, 5.0]})
    better = pd.DataFrame({"mean_sampler": ["top_p", "ancestral"], "mean_rows": [16, 32], "mean_temperature": [1.0, 1.3],
                           "sdr": [5.2, 5.5]})
    assert estimate_choice(beams, better) == {"estimate": "mean", "sampler": "ancestral", "sampler_rows": 32,
                                              "sampler_temperature": 1.3}
    assert estimate_choice(beams, better.assign(sdr=[4.9, 5.0])) == {"estimate": "map"}
    assert estimate_choice(beams, better.iloc[:0]) == {"estimate": "map"}
    by_output = better.assign(output=["posterior mean", "posterior Wiener"])     # the best row's output decides
    assert estimate_choice(beams, by_output)["estimate"] == "wiener"
    assert estimate_choice(beams, by_output.assign(sdr=[5.6, 5.5]))["estimate"] == "mean"
    assert estimate_choice(beams, by_output.assign(mask_power=[1.0, 2.0]))["posterior_power"] == 2.0


def test_only_sampled_rows_get_a_posterior_mean_output():
    from types import SimpleNamespace

    from sepcore.experiments.latent_variants import OUTPUTS, outputs_of

    assert outputs_of(SimpleNamespace(config=LASSConfig(method="beam"))) == OUTPUTS[:2]
    assert outputs_of(SimpleNamespace(config=LASSConfig(method="top_p"))) == OUTPUTS
    from sepcore.separation.latent_bayes import LatentBayesConfig

    assert outputs_of(SimpleNamespace(config=LatentBayesConfig())) == OUTPUTS
