"""The LASS images chapter's tables: the density row counts what it says; PSNR takes the better order."""

import torch

from sepcore.experiments import lass_images
from sepcore.metrics import psnr
from sepcore.separation.lass import CountLikelihood


def test_density_row_counts_cells_entries_and_positions():
    K = 4
    i, j, k = torch.tensor([0, 1, 1, 2]), torch.tensor([1, 1, 3, 0]), torch.tensor([2, 1, 3, 2])
    counts = CountLikelihood.fit([(i, j, k)], K=K)
    row = lass_images.density_table(counts).iloc[0]
    assert row.tensor_cells == K ** 3 and row.nonzero == counts.nnz == 7          # both orders; (1, 1, 1) once
    assert row.positions_counted == 4
    assert row.density_percent == 100 * 7 / K ** 3
    assert row.mean_tuples_per_mixture_code == 7 / 3                              # mixture codes 1, 2, 3


def test_psnr_takes_the_better_order_of_the_two_sources():
    generator = torch.Generator().manual_seed(0)
    references = torch.rand(3, 2, 28, 28, generator=generator)
    estimates = (references + 0.05 * torch.randn(3, 2, 28, 28, generator=generator)).clamp(0, 1)
    swapped = estimates.flip(1)
    direct = psnr(references.flatten(2), estimates.flatten(2))
    assert torch.allclose(lass_images.best_order_psnr(references, swapped), direct)
