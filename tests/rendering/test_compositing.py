import inspect
import math

import pytest
import torch
from jaxtyping import TypeCheckError

from bts.rendering import (
    composite,
    composite_reference,
    composite_values,
    distance_to_depth,
    expected_distance,
    sample_distances,
)


def _distances(batch=(), rays=4, samples=32, near=0.5, far=10.0):
    return sample_distances(rays, samples, near, far, lindisp=False, jitter=False, batch_shape=batch,
                            dtype=torch.float64)


def test_worked_example():
    out = composite(torch.tensor([math.log(2.0), 0.0], dtype=torch.float64), torch.tensor([1.0, 2.0],
                                                                                           dtype=torch.float64))
    assert torch.allclose(out.alpha, torch.tensor([0.5, 1.0], dtype=torch.float64))
    assert torch.allclose(out.transmittance, torch.tensor([1.0, 0.5], dtype=torch.float64))
    assert torch.allclose(out.weights, torch.tensor([0.5, 0.5], dtype=torch.float64))
    assert expected_distance(out.weights, torch.tensor([1.0, 2.0], dtype=torch.float64)).item() == pytest.approx(1.5)


def test_constant_density_gives_exponential_transmittance():
    sigma_value = 0.3
    s = _distances()
    out = composite(torch.full_like(s, sigma_value), s)
    # Integration starts at the first sample, so T(s_k) = exp(-sigma (s_k - s_0)), the last sample included.
    assert torch.allclose(out.transmittance, torch.exp(-sigma_value * (s - s[..., :1])), atol=1e-8)
    # The cap changes only the last alpha: nothing before it.
    uncapped = composite(torch.full_like(s, sigma_value), s, hard_alpha_cap=False)
    assert torch.equal(out.transmittance, uncapped.transmittance)
    assert torch.equal(out.weights[..., :-1], uncapped.weights[..., :-1])
    assert torch.all(out.alpha[..., -1] == 1.0)


def test_single_opaque_sample_gives_its_distance():
    s = _distances(rays=1, samples=16)[0]
    for index in (0, 5, 15):
        sigma = torch.zeros_like(s)
        sigma[index] = 1e4
        out = composite(sigma, s)
        assert expected_distance(out.weights, s).item() == pytest.approx(s[index].item(), abs=1e-6)
        assert out.weights[index].item() == pytest.approx(1.0, abs=1e-8)


def test_weights_sum_to_one_with_hard_cap():
    gen = torch.Generator().manual_seed(0)
    s = _distances(batch=(3,))
    for sigma in (torch.rand(s.shape, generator=gen, dtype=torch.float64) * 0.2, torch.zeros_like(s)):
        out = composite(sigma, s)
        assert torch.allclose(out.weights.sum(-1), torch.ones(s.shape[:-1], dtype=torch.float64), atol=1e-8)
    # An empty ray terminates at its last sample, i.e. near the far plane.
    out = composite(torch.zeros_like(s), s)
    assert torch.allclose(expected_distance(out.weights, s), s[..., -1])
    # Without the cap an empty ray has no weight at all: the test above depends on the cap.
    assert composite(torch.zeros_like(s), s, hard_alpha_cap=False).weights.abs().max() == 0.0


@pytest.mark.parametrize("cap", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fast_path_matches_reference_loop(cap, dtype):
    gen = torch.Generator().manual_seed(1)
    s = sample_distances(7, 24, 3.0, 80.0, jitter=True, generator=gen, batch_shape=(2, 3), dtype=dtype)
    sigma = torch.rand(s.shape, generator=gen, dtype=dtype) * torch.rand(s.shape, generator=gen, dtype=dtype) * 2
    fast = composite(sigma, s, hard_alpha_cap=cap, last_delta=1e10)
    slow = composite_reference(sigma, s, hard_alpha_cap=cap, last_delta=1e10)
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    for name in ("alpha", "transmittance", "weights"):
        assert torch.allclose(getattr(fast, name), getattr(slow, name), atol=tol, rtol=tol), name


def test_composite_values_and_depth():
    gen = torch.Generator().manual_seed(2)
    w = torch.rand(2, 5, 8, generator=gen)
    v = torch.rand(2, 5, 8, 3, generator=gen)
    assert torch.allclose(composite_values(w, v), torch.einsum("brk,brkc->brc", w, v), atol=1e-6)
    assert composite_values(w, v).shape == (2, 5, 3)
    # distance 5 along (3, 0, 4) is 4 in z; along the optical axis distance equals depth
    dirs = torch.tensor([[3.0, 0.0, 4.0], [0.0, 0.0, 2.0]])
    assert torch.allclose(distance_to_depth(torch.tensor([5.0, 7.0]), dirs), torch.tensor([4.0, 7.0]))


def test_mismatched_samples_raise():
    # In the test suite the shape annotation is enforced (tests/conftest.py); callers without the type checker get
    # the function's own check.
    with pytest.raises(TypeCheckError, match="distances"):
        composite(torch.zeros(3, 4), torch.zeros(3, 5))
    with pytest.raises(ValueError, match="sigma has 4 samples per ray, distances 5"):
        inspect.unwrap(composite)(torch.zeros(3, 4), torch.zeros(3, 5))


@pytest.mark.parametrize("cap", [True, False])
def test_gradcheck(cap):
    gen = torch.Generator().manual_seed(3)
    s = sample_distances(2, 6, 1.0, 4.0, jitter=True, generator=gen, dtype=torch.float64).requires_grad_()
    sigma = (torch.rand(2, 6, generator=gen, dtype=torch.float64) + 0.1).requires_grad_()

    def render(sigma, s):
        # A finite last delta so that the last sample's gradient is not trivially zero.
        weights = composite(sigma, s, hard_alpha_cap=cap, last_delta=2.0).weights
        return weights, expected_distance(weights, s)

    assert torch.autograd.gradcheck(render, (sigma, s))
