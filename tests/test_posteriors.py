"""The [-1, 1] posteriors of paper 002: normalisation, support, moments, reparameterised gradients."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from sepcore.separation.posteriors import ScaledBeta, TruncatedNormal, ndtri_exp

D = torch.float64


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small tensors on a shared 2-core machine run much faster on one intra-op thread."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _density(make, params):
    dist = make(*[torch.tensor(p, dtype=D) for p in params])
    return lambda x: math.exp(float(dist.log_prob(torch.tensor(x, dtype=D))))


def _expectation(make, params, f):
    """``E_q[f(x)]`` by adaptive quadrature on [-1, 1]."""
    density = _density(make, params)
    value, _ = integrate.quad(lambda x: f(x) * density(x), -1, 1, limit=200, points=[0.0], epsabs=1e-11, epsrel=1e-11)
    return value


BETA_CASES = [(2.0, 3.0), (0.7, 1.5), (5.0, 5.0), (1.0, 1.0)]
TRUNC_CASES = [(0.0, 1.0), (0.3, 0.2), (0.9, 0.05), (-1.4, 0.3), (2.5, 0.4)]


@pytest.mark.parametrize("alpha,beta", BETA_CASES)
def test_beta_normalised_and_moments(alpha, beta):
    density = _density(ScaledBeta, (alpha, beta))
    total, _ = integrate.quad(density, -1, 1, limit=200)
    assert total == pytest.approx(1.0, abs=1e-5)
    q = ScaledBeta(torch.tensor(alpha, dtype=D), torch.tensor(beta, dtype=D))
    # closed forms of the affine map x = 2u - 1 of Beta(alpha, beta)
    mean_u = alpha / (alpha + beta)
    var_u = alpha * beta / ((alpha + beta) ** 2 * (alpha + beta + 1))
    assert float(q.mean) == pytest.approx(2 * mean_u - 1, abs=1e-12)
    assert float(q.variance) == pytest.approx(4 * var_u, abs=1e-12)
    # ... which agree with quadrature and with samples
    assert _expectation(ScaledBeta, (alpha, beta), lambda x: x) == pytest.approx(2 * mean_u - 1, abs=1e-5)
    x = q.sample((200_000,))
    assert float(x.min()) >= -1 and float(x.max()) <= 1
    assert float(x.mean()) == pytest.approx(2 * mean_u - 1, abs=5 * math.sqrt(4 * var_u / 200_000))
    assert float(x.var()) == pytest.approx(4 * var_u, rel=0.02)
    # log_prob equals scipy's Beta on (x + 1) / 2 minus log 2 (the affine Jacobian)
    grid = torch.linspace(-0.95, 0.95, 7, dtype=D)
    expected = stats.beta(alpha, beta).logpdf((grid.numpy() + 1) / 2) - math.log(2)
    np.testing.assert_allclose(q.log_prob(grid).numpy(), expected, rtol=1e-10)
    assert float(q.log_prob(torch.tensor(1.5, dtype=D))) == -math.inf


@pytest.mark.parametrize("loc,scale", TRUNC_CASES)
def test_truncated_normal_normalised_and_matches_scipy(loc, scale):
    total = _expectation(TruncatedNormal, (loc, scale), lambda x: 1.0)
    assert total == pytest.approx(1.0, abs=1e-7)
    q = TruncatedNormal(torch.tensor(loc, dtype=D), torch.tensor(scale, dtype=D))
    ref = stats.truncnorm((-1 - loc) / scale, (1 - loc) / scale, loc=loc, scale=scale)
    grid = torch.linspace(-0.99, 0.99, 9, dtype=D)
    np.testing.assert_allclose(q.log_prob(grid).numpy(), ref.logpdf(grid.numpy()), rtol=1e-9, atol=1e-9)
    assert float(q.mean) == pytest.approx(ref.mean(), abs=1e-9)
    assert float(q.median) == pytest.approx(ref.median(), abs=1e-9)
    x = q.sample((100_000,), generator=torch.Generator().manual_seed(0))
    assert float(x.min()) >= -1 and float(x.max()) <= 1
    assert float(x.mean()) == pytest.approx(ref.mean(), abs=5 * ref.std() / math.sqrt(100_000))
    # Kolmogorov-Smirnov against scipy's CDF
    assert stats.kstest(x.numpy(), ref.cdf).pvalue > 1e-3


def test_truncated_normal_far_tails_are_finite():
    """Intervals 50-500 standard deviations into a tail: log Phi(b) - log Phi(a) would cancel or underflow."""
    loc = torch.tensor([-30.0, 30.0, 200.0, 1.0], dtype=D)
    scale = torch.tensor([0.5, 0.5, 0.4, 1e-3], dtype=D)
    q = TruncatedNormal(loc, scale)
    x = q.rsample((1000,), generator=torch.Generator().manual_seed(1))
    assert torch.isfinite(x).all() and (x.abs() <= 1).all()
    # an exponential limit: far beyond the nearer bound e the truncated normal is ~ e -/+ Exp with
    # rate |loc - e| / scale^2, so its distance from e has mean scale^2 / |loc - e|
    edge = torch.sign(loc[:3])
    rate = (loc[:3] - edge).abs() / scale[:3] ** 2
    np.testing.assert_allclose((edge - q.mean[:3]).abs().numpy(), (1 / rate).numpy(), rtol=0.02)
    np.testing.assert_allclose((edge - x[:, :3]).abs().mean(0).numpy(), (1 / rate).numpy(), rtol=0.15)
    assert torch.isfinite(q.log_prob(x)).all()
    # the inverse of log Phi deep in the tail
    y = torch.tensor([-800.0, -5000.0, -3.0], dtype=D)
    np.testing.assert_allclose(torch.special.log_ndtr(ndtri_exp(y)).numpy(), y.numpy(), rtol=1e-10)


def _mc_gradient(make, params, f, n=160_000, seed=0):
    """Pathwise gradient of E[f(x)] from n reparameterised samples, and its standard error."""
    torch.manual_seed(seed)
    theta = [torch.tensor(p, dtype=D, requires_grad=True) for p in params]
    dist = make(*theta)
    kwargs = {"generator": torch.Generator().manual_seed(seed)} if make is TruncatedNormal else {}
    values = f(dist.rsample((n,), **kwargs))
    grads, errors = [], []
    for p in theta:
        # per-sample gradients are needed for the standard error: use two half batches
        g = [torch.autograd.grad(half.mean(), p, retain_graph=True)[0] for half in values.chunk(8)]
        g = torch.stack(g)
        grads.append(float(g.mean()))
        errors.append(float(g.std() / math.sqrt(len(g))))
    return np.array(grads), np.array(errors)


def _scipy(make, params):
    """The same law in scipy (our log_prob is checked against it above), for fast quadrature."""
    if make is ScaledBeta:
        return stats.beta(params[0], params[1], loc=-1, scale=2)
    loc, scale = params
    return stats.truncnorm((-1 - loc) / scale, (1 - loc) / scale, loc=loc, scale=scale)


def _fd_gradient(make, params, f_np, h=1e-4):
    def expectation(p):
        law = _scipy(make, p)
        return integrate.quad(lambda x: f_np(x) * law.pdf(x), -1, 1, limit=200, epsabs=1e-12, epsrel=1e-12)[0]

    grads = []
    for i in range(len(params)):
        up, down = list(params), list(params)
        up[i] += h
        down[i] -= h
        grads.append((expectation(up) - expectation(down)) / (2 * h))
    return np.array(grads)


@pytest.mark.parametrize("make,params", [(ScaledBeta, (2.0, 3.0)), (ScaledBeta, (0.8, 1.6)),
                                         (TruncatedNormal, (0.3, 0.4)), (TruncatedNormal, (1.3, 0.3))])
def test_reparameterised_gradient_matches_finite_differences(make, params):
    """d/dtheta E_q[f(x)]: pathwise Monte Carlo (implicit / inverse-CDF gradients) vs central
    differences of the quadrature expectation."""
    grads, errors = _mc_gradient(make, params, lambda x: torch.sin(3 * x) + x**2)
    reference = _fd_gradient(make, params, lambda x: math.sin(3 * x) + x**2)
    assert np.all(np.abs(grads - reference) < 5 * errors + 1e-4), (grads, reference, errors)
    assert np.all(np.abs(reference) > 10 * errors)   # the test has power: gradients are resolved


def test_gradients_reach_parameters_of_any_shape():
    alpha = torch.full((2, 5), 2.0, requires_grad=True)
    beta = torch.full((2, 5), 3.0, requires_grad=True)
    loc = torch.zeros(2, 5, requires_grad=True)
    scale = torch.full((2, 5), 0.5, requires_grad=True)
    b, t = ScaledBeta(alpha, beta), TruncatedNormal(loc, scale)
    xb, xt = b.rsample((3,)), t.rsample((3,))
    assert xb.shape == xt.shape == (3, 2, 5) and xt.dtype == torch.float32
    (xb.sum() + xt.sum() + b.log_prob(xb).sum() + t.log_prob(xt).sum()).backward()
    for p in (alpha, beta, loc, scale):
        assert torch.isfinite(p.grad).all() and (p.grad != 0).all()
