"""Digits: the offline 8x8 -> 28x28 images, the MNIST IDX reader and two-digit mixtures."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from sepcore.data.digits import DigitMixtures, Digits, load_digits_images, read_idx, upsample
from sepcore.mixing import set_mixing


def test_bilinear_upsampling_known_values():
    constant = torch.full((1, 8, 8), 0.7)
    torch.testing.assert_close(upsample(constant, 28), torch.full((1, 28, 28), 0.7))
    ramp = torch.arange(8.0).repeat(8, 1)[None]                 # value = column index
    up = upsample(ramp, 32)                                      # scale 4, align_corners=False
    # output column j samples input coordinate (j + 0.5) / 4 - 0.5, clamped to [0, 7]
    expected = np.clip((np.arange(32) + 0.5) / 4 - 0.5, 0, 7)
    np.testing.assert_allclose(up[0, 5].numpy(), expected, atol=1e-6)


def test_sklearn_digits_split_and_stated_interpolation():
    from scipy.ndimage import map_coordinates
    from sklearn.datasets import load_digits

    train, train_labels = load_digits_images("train")
    test, test_labels = load_digits_images("test")
    assert train.shape == (1438, 28, 28) and test.shape == (359, 28, 28)
    assert float(train.min()) >= 0 and float(train.max()) <= 1
    bunch = load_digits()
    order = np.random.default_rng(0).permutation(1797)          # the documented split
    test_index, train_index = np.sort(order[:359]), np.sort(order[359:])
    assert not set(test_index) & set(train_index)
    np.testing.assert_array_equal(test_labels.numpy(), bunch.target[test_index])
    # bilinear, align_corners=False: output pixel j samples input coordinate (j + 0.5) * 8 / 28 - 0.5
    grid = (np.arange(28) + 0.5) * 8 / 28 - 0.5
    rows, cols = np.meshgrid(grid, grid, indexing="ij")
    for k in (0, 17, 358):
        expected = map_coordinates(bunch.images[test_index[k]] / 16, [rows, cols], order=1, mode="nearest")
        np.testing.assert_allclose(test[k].numpy(), expected, atol=1e-5)
    assert set(train_labels.tolist()) == set(range(10))


def write_idx(path, array, code=0x08):
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if str(path).endswith(".gz"):
        with gzip.open(path, "wb") as handle:
            handle.write(data)
    else:
        path.write_bytes(data)


def test_mnist_idx_reader(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28)).astype(np.uint8)
    labels = np.array([3, 1, 4, 1, 5], np.uint8)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels)
    np.testing.assert_array_equal(read_idx(tmp_path / "t10k-images-idx3-ubyte.gz"), images)
    digits = Digits("test", root=tmp_path)
    torch.testing.assert_close(digits.images[:, 0], torch.from_numpy(images / 255.0).float())
    assert digits.labels.tolist() == [3, 1, 4, 1, 5]
    (tmp_path / "bad").write_bytes(b"\x12\x34\x56\x78")
    with pytest.raises(ValueError, match="bad.*not an IDX file"):
        read_idx(tmp_path / "bad")
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        Digits("train", root=tmp_path)


def test_mixtures_follow_the_mixing_setting():
    mean = DigitMixtures("test", n_mixtures=20, seed=1)
    item = mean[3]
    assert item["sources"].shape == (2, 1, 28, 28) and item["mixture"].shape == (1, 28, 28)
    torch.testing.assert_close(item["mixture"], item["sources"].mean(0))
    with set_mixing("sum"):
        summed = DigitMixtures("test", n_mixtures=20, seed=1)
    torch.testing.assert_close(summed[3]["mixture"], item["sources"].sum(0))
    assert summed.pairs == mean.pairs and mean.manifest_hash != summed.manifest_hash
    assert all(a != b for a, b in mean.pairs)
    assert DigitMixtures("test", n_mixtures=20, seed=2).pairs != mean.pairs
    distinct = DigitMixtures("test", n_mixtures=50, distinct_labels=True)
    assert (distinct.manifest.label_a != distinct.manifest.label_b).all()
