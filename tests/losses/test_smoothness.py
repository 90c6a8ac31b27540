import math

import pytest
import torch

from bts.losses import edge_aware_smoothness, edge_aware_smoothness_map

DT = torch.float64


def _reference(distance, image):
    """One [h, w] patch by explicit loops over pixels."""
    h, w = distance.shape
    d = 1.0 / distance.clamp(1e-3, 80.0)
    d = d / d.mean()
    out = torch.zeros_like(d)
    for i in range(h):
        for j in range(w):
            if j + 1 < w:
                edge = (image[:, i, j + 1] - image[:, i, j]).abs().mean()
                out[i, j] += (d[i, j + 1] - d[i, j]).abs() * math.exp(-edge)
            if i + 1 < h:
                edge = (image[:, i + 1, j] - image[:, i, j]).abs().mean()
                out[i, j] += (d[i + 1, j] - d[i, j]).abs() * math.exp(-edge)
    return out


def test_matches_loop_reference():
    gen = torch.Generator().manual_seed(0)
    distance = torch.rand(2, 3, 5, 6, generator=gen, dtype=DT) * 30 + 3
    image = torch.rand(2, 3, 3, 5, 6, generator=gen, dtype=DT)
    fast = edge_aware_smoothness_map(distance, image)
    for b in range(2):
        for p in range(3):
            assert torch.allclose(fast[b, p], _reference(distance[b, p], image[b, p]), atol=1e-12)
    assert edge_aware_smoothness(distance, image).item() == pytest.approx(fast.mean().item())


def test_zero_for_constant_depth_and_scale_invariant():
    gen = torch.Generator().manual_seed(1)
    image = torch.rand(1, 2, 3, 8, 8, generator=gen, dtype=DT)
    for value in (3.0, 17.0, 80.0, 500.0):
        assert edge_aware_smoothness(torch.full((1, 2, 8, 8), value, dtype=DT), image).item() == 0.0
    distance = torch.rand(1, 2, 8, 8, generator=gen, dtype=DT) * 10 + 5
    a = edge_aware_smoothness(distance, image)
    assert a > 0
    assert torch.allclose(edge_aware_smoothness(2 * distance, image), a)  # normalised disparity


def test_depth_edge_on_an_image_edge_is_down_weighted():
    distance = torch.full((1, 1, 8, 8), 10.0, dtype=DT)
    distance[..., 4:] = 20.0  # a depth step between columns 3 and 4
    flat = torch.full((1, 1, 3, 8, 8), 0.5, dtype=DT)
    edge = flat.clone()
    edge[..., 4:] = 1.0  # an image edge of contrast 0.5 at the same place
    elsewhere = flat.clone()
    elsewhere[..., 6:] = 1.0  # the same edge, away from the depth step
    m_flat = edge_aware_smoothness_map(distance, flat)
    m_edge = edge_aware_smoothness_map(distance, edge)
    assert (m_flat[..., 3] > 0).all()
    assert torch.allclose(m_edge[..., 3], m_flat[..., 3] * math.exp(-0.5))
    assert edge_aware_smoothness(distance, edge) < edge_aware_smoothness(distance, flat)
    assert torch.allclose(edge_aware_smoothness(distance, elsewhere), edge_aware_smoothness(distance, flat))


def test_last_column_and_row_contribute_nothing():
    gen = torch.Generator().manual_seed(2)
    # depth varies only along x: the last column has no x-difference and no y-difference
    distance = (torch.rand(1, 1, 1, 6, generator=gen, dtype=DT) * 10 + 5).expand(1, 1, 5, 6)
    image = torch.rand(1, 1, 3, 5, 6, generator=gen, dtype=DT)
    m = edge_aware_smoothness_map(distance, image)
    assert (m[..., -1] == 0).all() and (m[..., :-1] > 0).all()
    m = edge_aware_smoothness_map(distance.transpose(-1, -2), image.transpose(-1, -2))
    assert (m[..., -1, :] == 0).all()


def test_mask_and_clamp():
    gen = torch.Generator().manual_seed(3)
    distance = torch.rand(2, 2, 4, 4, generator=gen, dtype=DT) * 10
    distance[0, 0, 0, 0] = 0.0  # clamped to 1e-3: finite
    image = torch.rand(2, 2, 3, 4, 4, generator=gen, dtype=DT)
    assert torch.isfinite(edge_aware_smoothness(distance, image))
    mask = torch.zeros(2, 2, 4, 4, dtype=torch.bool)
    mask[1] = True
    full = edge_aware_smoothness_map(distance, image)
    assert edge_aware_smoothness(distance, image, mask).item() == pytest.approx(full[0].sum().item() / full.numel())
    assert edge_aware_smoothness(distance, image, torch.ones_like(mask)).item() == 0.0


def test_gradcheck():
    gen = torch.Generator().manual_seed(4)
    distance = (torch.rand(1, 1, 3, 4, generator=gen, dtype=DT) * 10 + 3).requires_grad_()
    image = torch.rand(1, 1, 3, 3, 4, generator=gen, dtype=DT)
    assert torch.autograd.gradcheck(lambda d: edge_aware_smoothness_map(d, image), (distance,))
