"""VQ-VAE / LQ-VAE (paper 003 Eq. 1-4, 7-10): shapes, straight-through, code round trips, loss values."""

import torch

from sepcore.mixing import set_mixing
from sepcore.models.vqvae import VQVAE, Quantizer, VQVAEConfig, linearization_loss, pair_code_table


def tiny(**kw):
    return VQVAE(VQVAEConfig.quick().replace(**kw))


def test_shapes_audio_and_images():
    torch.manual_seed(0)
    model = tiny()
    x = torch.randn(3, 64 * 5)
    codes = model.encode(x)
    assert codes.shape == (3, 5) and codes.dtype == torch.long
    assert model.embed(codes).shape == (3, 8, 5)
    assert model.decode(codes).shape == x.shape
    images = VQVAE(VQVAEConfig.digits().replace(width=8, code_dim=4, codebook_size=16))
    img = torch.rand(2, 28, 28)
    assert images.encode(img).shape == (2, 7, 7)
    assert images.decode(images.encode(img)).shape == img.shape


def test_straight_through_gradient_is_identity():
    q = Quantizer(6, 3)
    h = torch.randn(2, 3, 4, requires_grad=True)
    codes, e_st = q.quantize(h)
    assert torch.allclose(e_st, q.embed(codes))                    # value: the codebook vectors
    weights = torch.randn_like(e_st)
    (e_st * weights).sum().backward()
    assert torch.allclose(h.grad, weights)                          # gradient: identity


def test_code_round_trip():
    """encode(decode-free) of codebook vectors returns their own indices: B_I(B_Q(e_k)) = k."""
    q = Quantizer(10, 4)
    codes = torch.randint(0, 10, (3, 7))
    e = q.embed(codes)
    again, _ = q.quantize(e)
    assert torch.equal(again, codes)
    model = tiny()
    x = torch.randn(2, 64 * 4)
    assert torch.equal(model.encode(x), model.quantizer.quantize(model.encode_continuous(x))[0])


def test_nearest_matches_brute_force():
    q = Quantizer(13, 5)
    flat = torch.randn(40, 5)
    brute = torch.cdist(flat, q.codebook).argmin(1)
    assert torch.equal(q.nearest(flat, chunk=7), brute)


def test_linearization_loss_known_values():
    q = Quantizer(4, 2)
    q.codebook.copy_(torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [1.0, 1.0]]))
    e1 = q.embed(torch.tensor([[1]]))                               # (1, 2, 1): (2, 0)
    e2 = q.embed(torch.tensor([[2]]))                               # (0, 2)
    # mean mixing: QL = B_Q((1, 1)) = code 3; LQ = B_Q(h_mix)
    assert linearization_loss(q, e1, e2, q.embed(torch.tensor([[3]]))).item() == 0.0
    # h_mix quantises to (0, 0): ||(1, 1) - (0, 0)||^2 = 2, summed over the D = 2 channels (Eq. 8)
    assert abs(linearization_loss(q, e1, e2, torch.tensor([[[0.1]], [[-0.1]]]).reshape(1, 2, 1)).item() - 2.0) < 1e-6
    # a mean over positions: two positions, one exact and one off by 2, give 1
    h_two = torch.cat([q.embed(torch.tensor([[3]])), torch.tensor([[[0.1]], [[-0.1]]]).reshape(1, 2, 1)], dim=2)
    assert abs(linearization_loss(q, e1.repeat(1, 1, 2), e2.repeat(1, 1, 2), h_two).item() - 1.0) < 1e-6
    with set_mixing("sum"):                                         # QL = B_Q((2, 2)) = (1, 1) nearest
        assert linearization_loss(q, e1, e2, q.embed(torch.tensor([[3]]))).item() == 0.0


def test_pair_code_table_matches_definition():
    torch.manual_seed(1)
    model = tiny(codebook_size=9, code_dim=3)
    M = pair_code_table(model, chunk=4)
    e = model.codebook
    for i in range(9):
        for j in range(9):
            dist = torch.cdist((0.5 * e[i] + 0.5 * e[j])[None], e)[0]   # midpoints can tie: compare distances
            assert abs(dist[M[i, j]] - dist.min()) < 1e-6
    assert torch.equal(M, M.T)


def test_total_loss_is_weighted_sum():
    torch.manual_seed(0)
    model = tiny(lin_weight=0.7, spectral_weight=0.1)
    out = model.losses(torch.randn(4, 64 * 4))
    c = model.config
    expected = out["rec"] + c.beta * out["commit"] + 0.1 * out["spectral"] + 0.7 * out["lin"]
    assert torch.allclose(out["total"].detach(), expected)
    out["total"].backward()
    assert model.encoder.net[0].weight.grad.abs().sum() > 0


def test_ema_update_with_zero_decay_gives_cluster_means():
    q = Quantizer(2, 1, decay=0.0, restart_threshold=0.0)
    q.initialised.fill_(True)
    q.codebook.copy_(torch.tensor([[0.0], [10.0]]))
    q.train()
    h = torch.tensor([[[1.0, 2.0, 9.0, 12.0, 3.0]]])            # (1, D=1, 5)
    q(h)
    assert torch.allclose(q.codebook[:, 0], torch.tensor([2.0, 10.5]), atol=1e-4)


def test_commitment_loss_value():
    """Eq. 4 on a hand-made case: h = e + delta -> commit = mean(delta^2)."""
    model = tiny()
    model.eval()
    codes = torch.randint(0, 32, (2, 3))
    e = model.embed(codes)
    delta = 1e-3 * torch.randn_like(e)
    _, e_st = model.quantizer(e + delta)
    assert torch.allclose(torch.nn.functional.mse_loss(e + delta, e_st.detach()), delta.pow(2).mean())
