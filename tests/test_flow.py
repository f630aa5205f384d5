"""The flow prior's maths: invertibility, exact log-determinants, ActNorm init, densities."""

import math

import pytest
import torch

from sepcore.models.flow import ActNorm, FlowConfig, FlowPrior, squeeze, unsqueeze
from sepcore.models.wavenet import WaveNet

TINY = FlowConfig(n_blocks=2, n_flows=2, n_layers=2, width=4)
TINY_ACTNORM = TINY.replace(conditioned_actnorm=True)


def randomised(config=TINY, seed=0) -> FlowPrior:
    """A flow whose zero-initialised heads are replaced by random weights (a non-trivial map)."""
    torch.manual_seed(seed)
    flow = FlowPrior(config).double()
    for coupling in flow.couplings:
        last = coupling.net.head[-1]
        torch.nn.init.normal_(last.weight, std=0.3)
        torch.nn.init.normal_(last.bias, std=0.3)
    for norm in flow.actnorms:
        if norm.condition is not None:                   # noise-conditioned ActNorm: a non-zero sigma map
            torch.nn.init.normal_(norm.condition.weight, std=0.3)
            torch.nn.init.normal_(norm.condition.bias, std=0.3)
    flow(torch.randn(4, 32, dtype=torch.float64), 0.1)   # data-dependent ActNorm init
    return flow


def test_squeeze_is_a_permutation():
    x = torch.arange(16.0).reshape(1, 2, 8)
    assert torch.equal(unsqueeze(squeeze(x)), x)
    assert squeeze(torch.arange(4.0).reshape(1, 1, 4)).tolist() == [[[0.0, 2.0], [1.0, 3.0]]]


@pytest.mark.parametrize("config", [TINY, TINY_ACTNORM], ids=["actnorm", "conditioned-actnorm"])
@pytest.mark.parametrize("sigma", [0.0, 0.3])
def test_reverse_inverts_forward(sigma, config):
    flow = randomised(config)
    x = torch.randn(3, 64, dtype=torch.float64)
    z, _ = flow(x, sigma)
    assert torch.allclose(flow.reverse(z, sigma), x, atol=1e-10)


@pytest.mark.parametrize("config", [TINY, TINY_ACTNORM], ids=["actnorm", "conditioned-actnorm"])
def test_logdet_equals_autograd_jacobian(config):
    flow = randomised(config)
    x = torch.randn(1, 16, dtype=torch.float64)
    sigma = 0.05

    def f(v):
        return flow(v.reshape(1, 16), sigma)[0].reshape(-1)

    jacobian = torch.autograd.functional.jacobian(f, x.reshape(-1))
    _, logdet = flow(x, sigma)
    assert torch.allclose(logdet, torch.linalg.slogdet(jacobian)[1], atol=1e-8)


def test_conditioned_actnorm_logdet_follows_each_items_sigma():
    """Per-item sigma: each item's log-determinant is -T sum log a(sigma_b), and the map inverts."""
    flow = randomised(TINY_ACTNORM)
    x = torch.randn(2, 16, dtype=torch.float64)
    sigma = torch.tensor([0.0, 0.5], dtype=torch.float64)
    z, logdet = flow(x, sigma)
    singles = torch.cat([flow(x[i:i + 1], float(sigma[i]))[1] for i in range(2)])
    assert torch.allclose(logdet, singles, atol=1e-10)
    assert not torch.allclose(logdet[0], flow(x[:1], 0.5)[1][0])       # sigma moves the normalisation
    assert torch.allclose(flow.reverse(z, sigma), x, atol=1e-10)


def test_actnorm_init_standardises_each_channel():
    norm = ActNorm(3)
    x = torch.randn(8, 3, 100) * torch.tensor([2.0, 0.1, 5.0]).view(1, 3, 1) + torch.tensor([1.0, -3.0, 0.5]).view(1, 3, 1)
    y, logdet = norm(x)
    assert torch.allclose(y.mean(dim=(0, 2)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(y.std(dim=(0, 2)), torch.ones(3), atol=1e-4)
    assert torch.allclose(logdet[0, 0], -torch.log(x.std(dim=(0, 2))).sum(), atol=1e-4)
    y2, _ = norm(x * 10)                  # the init happens once only
    assert torch.allclose(y2, (x * 10 - norm.loc) * torch.exp(-norm.log_scale))


def test_identity_flow_is_standard_normal():
    """Zero-initialised couplings and an identity ActNorm: the flow is a permutation, so
    log p(x) = sum_t log N(x_t; 0, 1) exactly (Eq. 7 with logdet 0)."""
    flow = FlowPrior(TINY)
    for norm in flow.actnorms:
        norm.initialized.fill_(True)
    x = torch.randn(2, 32)
    expected = (-0.5 * x.pow(2) - 0.5 * math.log(2 * math.pi)).sum(-1)
    assert torch.allclose(flow.log_prob(x, 0.0), expected, atol=1e-4)
    # the map shares each squeezed step's density equally among its 4 samples
    pointwise = -0.5 * x.pow(2) - 0.5 * math.log(2 * math.pi)
    pooled = pointwise.reshape(2, 8, 4).mean(-1).repeat_interleave(4, dim=-1)
    assert torch.allclose(flow.log_prob_map(x, 0.0), pooled, atol=1e-5)


def test_likelihood_map_sums_to_log_prob_and_lengths_vary():
    flow = randomised()
    for length in (16, 48, 128):
        x = torch.randn(2, length, dtype=torch.float64)
        total = flow.log_prob(x, 0.2)
        assert total.shape == (2,)
        assert torch.allclose(flow.log_prob_map(x, 0.2).sum(-1), total, atol=1e-8)
    with pytest.raises(ValueError, match="multiple"):
        flow.log_prob(torch.randn(1, 30, dtype=torch.float64), 0.2)


def test_sample_is_reverse_of_seeded_normal():
    flow = randomised()
    a = flow.sample(2, 32, sigma=0.1, generator=torch.Generator().manual_seed(3))
    b = flow.sample(2, 32, sigma=0.1, generator=torch.Generator().manual_seed(3))
    assert a.shape == (2, 32) and torch.equal(a, b)
    z = torch.randn(2, 4, 8, generator=torch.Generator().manual_seed(3)).double()
    assert torch.allclose(a, flow.reverse(z, 0.1))


def test_conditioning_changes_the_density_and_is_required():
    flow = randomised()
    x = torch.randn(2, 32, dtype=torch.float64)
    assert not torch.allclose(flow.log_prob(x, 0.0), flow.log_prob(x, 0.5))
    with pytest.raises(ValueError, match="sigma"):
        flow.log_prob(x)


def test_wavenet_is_non_causal_with_expected_receptive_field():
    torch.manual_seed(0)
    net = WaveNet(1, 1, width=16, n_layers=3).double()
    torch.nn.init.normal_(net.head[-1].weight)
    x = torch.randn(1, 1, 64, dtype=torch.float64, requires_grad=True)
    net(x)[0, 0, 32].backward()
    touched = (x.grad[0, 0] != 0).nonzero().flatten()
    assert touched.min() == 32 - 7 and touched.max() == 32 + 7   # dilations 1, 2, 4: +-7


def test_checkpoint_round_trip(tmp_path):
    from sepcore.checkpoints import load_model, save_checkpoint
    flow = randomised().float()
    path = save_checkpoint(tmp_path / "p.pt", flow)
    loaded = load_model(path, expect={"source": "sine"})
    x = torch.randn(2, 32)
    assert torch.allclose(loaded.log_prob(x, 0.1), flow.log_prob(x, 0.1))
