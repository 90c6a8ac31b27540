import pytest
import torch

from bts.rendering import sample_distances, sample_points


def _strata(s, near, far, lindisp):
    """Invert the sampler's map from t in [0, 1) to distance."""
    if lindisp:
        return (1.0 / s - 1.0 / near) / (1.0 / far - 1.0 / near)
    return (s - near) / (far - near)


def test_hand_computed_midpoints():
    s = sample_distances(1, 2, 1.0, 3.0, lindisp=False, jitter=False)
    assert torch.allclose(s, torch.tensor([[1.5, 2.5]]))
    # one lindisp midpoint is the harmonic mean of near and far
    s = sample_distances(1, 1, 3.0, 80.0, lindisp=True, jitter=False, dtype=torch.float64)
    assert s.item() == pytest.approx(1.0 / (0.5 / 3.0 + 0.5 / 80.0))


@pytest.mark.parametrize("lindisp", [True, False])
def test_midpoints_deterministic_sorted_and_in_range(lindisp):
    a = sample_distances(5, 64, 3.0, 80.0, lindisp=lindisp, jitter=False)
    b = sample_distances(5, 64, 3.0, 80.0, lindisp=lindisp, jitter=False)
    assert a.shape == (5, 64)
    assert torch.equal(a, b)
    assert (a >= 3.0).all() and (a <= 80.0).all()
    assert (a[:, 1:] > a[:, :-1]).all()
    t = _strata(a.double(), 3.0, 80.0, lindisp)
    assert torch.allclose(t, (torch.arange(64, dtype=torch.float64) + 0.5) / 64, atol=1e-5)


def test_lindisp_spacing_is_uniform_in_disparity():
    s = sample_distances(1, 16, 3.0, 80.0, lindisp=True, jitter=False, dtype=torch.float64)[0]
    step = (1.0 / s).diff()
    assert torch.allclose(step, step[0].expand_as(step))
    assert (s.diff()[1:] > s.diff()[:-1]).all()  # distances spread out further away
    lin = sample_distances(1, 16, 3.0, 80.0, lindisp=False, jitter=False, dtype=torch.float64)[0]
    assert torch.allclose(lin.diff(), lin.diff()[0].expand(15))


@pytest.mark.parametrize("lindisp", [True, False])
def test_jitter_stays_in_strata_and_is_seeded(lindisp):
    draw = lambda seed: sample_distances(
        100, 8, 3.0, 80.0, lindisp=lindisp, jitter=True, generator=torch.Generator().manual_seed(seed),
        dtype=torch.float64)
    s = draw(0)
    t = _strata(s, 3.0, 80.0, lindisp)
    k = torch.arange(8, dtype=torch.float64)
    assert (t >= k / 8 - 1e-12).all() and (t < (k + 1) / 8 + 1e-12).all()
    assert torch.equal(s, draw(0))
    assert not torch.equal(s, draw(1))
    offsets = t * 8 - k
    assert offsets.std() > 0.2  # really random inside the stratum, not midpoints


def test_batch_shape_and_points():
    s = sample_distances(4, 3, 1.0, 2.0, jitter=False, batch_shape=(2, 5))
    assert s.shape == (2, 5, 4, 3)
    origins = torch.randn(2, 4, 3)
    dirs = torch.nn.functional.normalize(torch.randn(2, 4, 3), dim=-1)
    d = s[:, 0]
    pts = sample_points(origins, dirs, d)
    assert pts.shape == (2, 4, 3, 3)
    assert torch.allclose((pts - origins[:, :, None]).norm(dim=-1), d, atol=1e-5)


@pytest.mark.parametrize("near, far", [(0.0, 1.0), (5.0, 3.0), (-1.0, 2.0)])
def test_bad_range_raises(near, far):
    with pytest.raises(ValueError):
        sample_distances(1, 4, near, far, jitter=False)
