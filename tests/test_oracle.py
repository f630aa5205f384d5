"""Oracle masks: exact where the sources' spectra do not overlap, and never worse than blind masks."""

import numpy as np
import pytest
import torch

from sepcore.metrics import sdr
from sepcore.mixing import mix, set_mixing
from sepcore.separation.oracle import ideal_mask_separate, ideal_masks, oracle_separator

SR = 22050


def _disjoint(n=65536):
    t = np.arange(n) / SR
    low = 0.5 * np.sin(2 * np.pi * 110 * t)
    high = 0.3 * np.sin(2 * np.pi * 3000 * t) * (1 + np.cos(2 * np.pi * 2 * t)) / 2
    return torch.tensor(np.stack([low, high]), dtype=torch.float32)


@pytest.mark.parametrize("kind", ["irm", "ibm"])
@pytest.mark.parametrize("mixing", ["mean", "sum"])
def test_ideal_masks_are_near_perfect_on_disjoint_spectra(kind, mixing):
    sources = _disjoint()
    with set_mixing(mixing):
        estimates = ideal_mask_separate(mix(sources), sources, kind)
    assert sdr(sources, estimates, SR).min() > 30.0


def test_masks_partition_unity_and_ibm_is_one_hot():
    rng = np.random.default_rng(0)
    sources = torch.tensor(rng.standard_normal((3, 8192)), dtype=torch.float32)
    irm, ibm = ideal_masks(sources, "irm"), ideal_masks(sources, "ibm")
    torch.testing.assert_close(irm.sum(0), torch.ones_like(irm[0]))
    torch.testing.assert_close(ibm.sum(0), torch.ones_like(ibm[0]))
    assert set(ibm.unique().tolist()) <= {0.0, 1.0}
    # the binary mask is the ratio mask's argmax
    assert torch.equal(ibm.argmax(0), irm.argmax(0))


def test_irm_of_a_single_active_source_returns_it_exactly():
    rng = np.random.default_rng(1)
    sources = torch.tensor(np.stack([rng.standard_normal(16384), np.zeros(16384)]), dtype=torch.float32)
    estimates = ideal_mask_separate(mix(sources), sources, "irm")
    torch.testing.assert_close(estimates[0], sources[0], atol=1e-5, rtol=0)
    assert estimates[1].abs().max() < 1e-6


def test_oracle_separator_looks_up_the_references_and_refuses_strangers():
    sources = _disjoint(16384)
    dataset = [{"id": "a", "sources": sources, "mixture": mix(sources)}]
    separate = oracle_separator(dataset, "irm")
    torch.testing.assert_close(separate(dataset[0]["mixture"]), ideal_mask_separate(mix(sources), sources))
    with pytest.raises(KeyError, match="not in its dataset"):
        separate(torch.zeros(16384))


def test_codec_oracle_decodes_the_codes_of_each_true_source():
    from sepcore.models.vqvae import VQVAE, VQVAEConfig
    from sepcore.separation.oracle import codec_oracle_separator

    torch.manual_seed(0)
    vq = VQVAE(VQVAEConfig(dims=1, strides=(2, 2), width=8, res_depth=1, dilation_growth=1, codebook_size=8, code_dim=4)).eval()
    sources = torch.randn(2, 61)                                    # not a multiple of the hop (4)
    dataset = [{"id": "a", "sources": sources, "mixture": mix(sources)}]
    separate = codec_oracle_separator(dataset, vq)
    out = separate(dataset[0]["mixture"])
    assert out.shape == (2, 61) and separate.oracle
    padded = torch.nn.functional.pad(sources, (0, 3))
    with torch.no_grad():
        for k in range(2):                                          # each source on its own, not the mixture
            torch.testing.assert_close(out[k], vq.decode(vq.encode(padded[k:k + 1]))[0, :61])
    with pytest.raises(KeyError, match="not in its dataset"):
        separate(torch.zeros(61))
