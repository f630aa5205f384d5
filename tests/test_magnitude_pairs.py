"""Fitted pair features of the magnitude likelihood: the fit recovers the table that made the
mixture features, shrinkage pulls rare pairs to the shared bias, ranks count the closer pairs, and
the likelihood scores with the fitted table."""

import shutil

import pytest
import torch

from sepcore.separation.magnitude_likelihood import (
    MagnitudeLikelihood,
    code_atoms,
    fitted_pair_features,
    predicted_features,
)
from sepcore.train.magnitude_pairs import ATOM_PRIOR_FRAMES, fit_pair_features, true_pair_ranks
from tests.test_magnitude_likelihood import tiny_codec

K, B = 6, 8


@pytest.fixture
def made():
    """Frames whose mixture features are a known ordered pair table plus nothing else."""
    torch.manual_seed(1)
    likelihood = MagnitudeLikelihood(tiny_codec(K), n_bands=B)
    decoded = code_atoms(likelihood.codec) @ likelihood.bands
    codes = torch.randint(0, K, (4000, 2))
    class_atoms = torch.rand(2, K, B) + 0.1
    magnitudes = torch.stack([class_atoms[0][codes[:, 0]], class_atoms[1][codes[:, 1]]], 1)      # (n, 2, B)
    counts = torch.stack([torch.bincount(codes[:, c], minlength=K) for c in range(2)]).double()
    atoms = (counts[..., None] * class_atoms.double() + ATOM_PRIOR_FRAMES * decoded.double()) \
        / (counts[..., None] + ATOM_PRIOR_FRAMES)
    truth = predicted_features(likelihood, atoms[0].float(), atoms[1].float()) + 0.3 + 0.2 * torch.randn(K * K, B)
    features = truth[codes[:, 0] * K + codes[:, 1]]
    return likelihood, decoded, codes, magnitudes, features, atoms.float(), truth


def test_the_fit_recovers_the_table_that_made_the_mixture_features(made):
    likelihood, decoded, codes, magnitudes, features, atoms, truth = made
    fitted = fit_pair_features(likelihood, decoded, codes, magnitudes, features, shrinkage=1e-9)
    assert torch.allclose(fitted["atoms"], atoms, atol=1e-5)               # class means, shrunk to the decoded atom
    assert fitted["pair_index"].numel() == K * K                           # every pair was seen
    assert torch.allclose(fitted_pair_features(fitted, likelihood), truth, atol=1e-4)
    assert torch.allclose(fitted["bias"], (features - predicted_features(likelihood, atoms[0], atoms[1])
                                           [codes[:, 0] * K + codes[:, 1]]).mean(0), atol=1e-5)


def test_a_large_shrinkage_leaves_the_atoms_and_the_shared_bias(made):
    likelihood, decoded, codes, magnitudes, features, atoms, _ = made
    fitted = fit_pair_features(likelihood, decoded, codes, magnitudes, features, shrinkage=1e9)
    expected = predicted_features(likelihood, atoms[0], atoms[1]) + fitted["bias"]
    assert torch.allclose(fitted_pair_features(fitted, likelihood), expected, atol=1e-5)
    assert not torch.allclose(expected[0], expected[1])                    # the pairs still differ by their atoms


def test_ranks_count_the_pairs_closer_than_the_true_one():
    table = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])    # K = 2: pairs 00, 01, 10, 11
    codes = torch.tensor([[0, 0], [0, 1], [1, 1]])
    frames = torch.tensor([[0.1, 0.0], [0.2, 0.0], [0.0, 0.0]])
    assert true_pair_ranks(table, codes, frames).tolist() == [0, 1, 3]


def test_the_likelihood_scores_with_the_fitted_table(made):
    likelihood, decoded, codes, magnitudes, features, *_ = made
    fitted = fit_pair_features(likelihood, decoded, codes, magnitudes, features, shrinkage=10.0)
    scored = MagnitudeLikelihood(likelihood.codec, sigma=0.5, n_bands=B, fitted=fitted)
    table = fitted_pair_features(fitted, likelihood)
    target = features[:5]
    direct = -(table[None] - target[:, None]).pow(2).sum(-1) / (2 * 0.5 ** 2 * B)                   # (5, K^2)
    assert torch.allclose(scored.scores(target), direct, atol=1e-4)
    assert not torch.equal(scored.scores(target)[:, 1 * K + 3], scored.scores(target)[:, 3 * K + 1])   # ordered pairs
    with pytest.raises(ValueError, match="do not match"):
        MagnitudeLikelihood(likelihood.codec, n_bands=B + 1, fitted=fitted)


def test_a_fit_is_refused_for_other_classes_or_another_codec(made, tmp_path):
    from sepcore.separation.magnitude_likelihood import fitted_pairs_path, load_fitted_pairs
    from sepcore.utils import file_sha256

    likelihood, decoded, codes, magnitudes, features, *_ = made
    codec_path, other = tmp_path / "codec.pt", tmp_path / "other.pt"
    codec_path.write_bytes(b"codec"), other.write_bytes(b"another codec")
    path = fitted_pairs_path(tmp_path, ("drums", "bass"))
    with pytest.raises(FileNotFoundError, match="sepcore.train.magnitude_pairs"):
        load_fitted_pairs(tmp_path, codec_path, ("drums", "bass"))
    fitted = fit_pair_features(likelihood, decoded, codes, magnitudes, features, shrinkage=10.0)
    torch.save({**fitted, "metadata": {"classes": ["drums", "bass"], "codec_sha256": file_sha256(codec_path)}}, path)
    assert torch.equal(load_fitted_pairs(tmp_path, codec_path, ("drums", "bass"))["atoms"], fitted["atoms"])
    shutil.copy(path, fitted_pairs_path(tmp_path, ("bass", "drums")))     # a drums/bass fit under the other order's name
    with pytest.raises(ValueError, match="fitted for"):
        load_fitted_pairs(tmp_path, codec_path, ("bass", "drums"))
    with pytest.raises(ValueError, match="another codec"):
        load_fitted_pairs(tmp_path, other, ("drums", "bass"))
