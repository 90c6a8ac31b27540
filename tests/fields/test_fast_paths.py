"""The density field's fast paths compute what the plain PyTorch calls compute (BENCHMARKS.md, "Feature sampling").

- the feature sampling reads channels-last maps through ``grid_sample`` (values bit for bit) and scatters its
  gradient row-wise (equal to float rounding; exact in float64);
- the tokens are built channels-outermost and the MLP runs its layers as GEMMs on that memory (the same values);
- selecting a run of views is a view of the maps, not a copy.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bts.fields import PositionalEncoding
from bts.fields.encoding import inverse_depth_code
from bts.fields.mlp import MLP
from bts.fields.tokens import (EncodedViews, bilinear_texels, channels_last, project_to_views, sample_features,
                               view_tokens)


def _reference(features: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    b, v, c, h, w = features.shape
    out = F.grid_sample(features.reshape(b * v, c, h, w), uv.reshape(b * v, -1, 1, 2), mode="bilinear",
                        padding_mode="border", align_corners=False)
    return out.reshape(b, v, c, -1).transpose(-1, -2)


def _maps_and_points(dtype=torch.float32):
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(2, 3, 5, 7, 9, generator=gen, dtype=dtype)
    uv = torch.rand(2, 3, 400, 2, generator=gen, dtype=dtype) * 2.8 - 1.4  # a fifth of them beyond the border
    uv[0, 0, :6] = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [0.0, 0.0], [1.5, -3.0]])
    return features, uv


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sampling_equals_grid_sample_and_its_gradient(dtype):
    features, uv = _maps_and_points(dtype)
    grad = torch.randn(2, 3, 400, 5, generator=torch.Generator().manual_seed(1), dtype=dtype)
    ref_maps = features.clone().requires_grad_(True)
    reference = _reference(ref_maps, uv)
    reference.backward(grad)
    maps = features.clone().requires_grad_(True)
    fast = sample_features(channels_last(maps), uv)
    fast.backward(grad)
    assert torch.equal(fast, reference)  # the forward is grid_sample's own
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(maps.grad, ref_maps.grad, rtol=0, atol=tol * float(ref_maps.grad.abs().max()))
    # the texel rows stay inside the table and the bilinear weights of each point sum to 1
    rows, weights = bilinear_texels(uv.reshape(6, -1, 1, 2), 7, 9)
    assert rows.min() >= 0 and rows.max() < 6 * 7 * 9
    torch.testing.assert_close(weights.sum(-1), torch.ones_like(weights[:, 0]))


def test_sampling_gradient_follows_the_points():
    """The scattered gradient lands on the texels the points read: moving some points by two texels moves it."""
    features, uv = _maps_and_points()
    maps = features.clone().requires_grad_(True)
    sample_features(maps, uv).sum().backward()
    shifted = uv.clone()
    shifted[0, 0, 10:20, 0] += 2.0 / 9  # one texel to the right
    other = features.clone().requires_grad_(True)
    sample_features(other, shifted).sum().backward()
    assert (maps.grad - other.grad).abs().max() > 0.1


def test_sample_positions_keep_their_gradient():
    features, uv = _maps_and_points(torch.float64)
    ref_uv, fast_uv = uv.clone().requires_grad_(True), uv.clone().requires_grad_(True)
    _reference(features, ref_uv).sum().backward()
    sample_features(channels_last(features), fast_uv).sum().backward()
    torch.testing.assert_close(fast_uv.grad, ref_uv.grad)
    assert fast_uv.grad.abs().sum() > 0


def test_channel_first_tokens_and_mlp_give_the_row_layout_values():
    gen = torch.Generator().manual_seed(2)
    encoding = PositionalEncoding(3, 6, 1.5)
    coords = torch.randn(2, 3, 50, 3, generator=gen) * 3
    rows = encoding(coords)
    parts = encoding.channels_outermost_parts(coords.movedim(-1, 0).contiguous())
    outermost = torch.cat(parts)  # [39, 2, 3, 50]
    assert torch.equal(outermost.movedim(0, -1), rows)

    mlp = MLP(39, 16, 5)
    plain = mlp.lin_out(mlp.lin_in(rows).relu())
    view = outermost.movedim(0, -1)
    assert view.stride(-2) == 1 and view.stride(-1) != 1  # the layout MLP recognises
    fast = mlp(view)  # one GEMM per layer over all points
    torch.testing.assert_close(fast, plain, rtol=1e-6, atol=1e-6)
    assert fast.shape == (2, 3, 50, 5) and fast.movedim(-1, 0).is_contiguous()
    one_view = mlp(view[:, 1])  # strides that do not flatten: one GEMM per leading index
    torch.testing.assert_close(one_view, plain[:, 1], rtol=1e-6, atol=1e-6)
    fast.sum().backward()
    grads = [p.grad.clone() for p in mlp.parameters()]
    mlp.zero_grad()
    plain.sum().backward()
    for fast_grad, p in zip(grads, mlp.parameters()):
        torch.testing.assert_close(fast_grad, p.grad, rtol=1e-5, atol=1e-5)


def test_view_tokens_match_the_row_construction():
    gen = torch.Generator().manual_seed(3)
    features = torch.randn(1, 2, 4, 6, 8, generator=gen)
    cam_to_world = torch.eye(4).repeat(1, 2, 1, 1)
    cam_to_world[0, 1, 0, 3] = 0.5
    intrinsics = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1]]).repeat(1, 2, 1, 1)
    encoded = EncodedViews.create(features, intrinsics, cam_to_world)
    points = torch.rand(1, 30, 3, generator=gen) * torch.tensor([2.0, 2.0, 10.0]) + torch.tensor([-1.0, -1.0, 1.0])
    encoding = PositionalEncoding(3, 6, 1.5)
    tokens = view_tokens(points, encoded, encoding, 3.0, 80.0)
    uv, z, _ = project_to_views(points, encoded)
    code = encoding(torch.cat([uv, inverse_depth_code(z, 3.0, 80.0).unsqueeze(-1)], dim=-1))
    expected = torch.cat([_reference(features, uv), code], dim=-1)
    assert torch.equal(tokens.tokens, expected)


def test_selecting_a_run_of_views_is_a_view():
    features = torch.randn(1, 3, 4, 5, 6)
    encoded = EncodedViews.create(features, torch.eye(3).repeat(1, 3, 1, 1), torch.eye(4).repeat(1, 3, 1, 1))
    run, picked = encoded.select([1, 2]), encoded.select([2, 0])
    assert run.features.data_ptr() == encoded.features[:, 1].data_ptr()
    assert torch.equal(run.features, features[:, 1:3])
    assert torch.equal(picked.features, features[:, [2, 0]])
    assert encoded.features.movedim(2, -1).is_contiguous() and torch.equal(encoded.features, features)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_the_texel_scatter_adds_every_weighted_point_into_its_texels(dtype):
    """The sparse product (float32/64 on the CPU) and the index_add_ fallback (other dtypes) both equal a plain
    per-entry loop, texels no point reads included."""
    from bts.fields.tokens import scatter_to_texels

    gen = torch.Generator().manual_seed(3)
    rows = torch.randint(0, 11, (30, 4), generator=gen)
    rows[:, 0] = 2  # a texel many points read; texels 11-12 are read by none
    weights = torch.rand(30, 4, generator=gen).to(dtype)
    per_point = torch.randn(30, 5, generator=gen).to(dtype)
    expected = torch.zeros(13, 5, dtype=torch.float64)
    for p in range(30):
        for k in range(4):
            expected[rows[p, k]] += weights[p, k].double() * per_point[p].double()
    table = scatter_to_texels(rows, weights, per_point, 13)
    assert table.shape == (13, 5) and table.dtype == dtype
    tol = {torch.float64: 1e-12, torch.float32: 1e-5, torch.bfloat16: 5e-2}[dtype]
    torch.testing.assert_close(table.double(), expected, rtol=0, atol=tol * float(expected.abs().max()))
    assert torch.all(table[11:] == 0)
    if dtype == torch.float32:  # the sparse path: a texel's sum in ascending point order, so the same bits each time
        in_order = torch.zeros(5, dtype=dtype)
        for p in range(30):
            for k in range(4):
                if rows[p, k] == 2:
                    in_order += weights[p, k] * per_point[p]
        assert torch.equal(scatter_to_texels(rows, weights, per_point, 13), table)
        torch.testing.assert_close(table[2], in_order, rtol=1e-6, atol=1e-6)


def test_the_texel_bag_forward_is_grid_sample_bit_for_bit():
    """The float32 CPU forward (a weighted bag of four texel rows per point) gives grid_sample's values: inside the
    map, beyond every border, on the borders and texel centres exactly, and for infinite and NaN coordinates."""
    from bts.fields.tokens import _bag_sampling_applies, texel_bag_sample

    gen = torch.Generator().manual_seed(4)
    maps = torch.randn(3, 16, 24, 40, generator=gen).contiguous(memory_format=torch.channels_last)
    grid = torch.rand(3, 5000, 1, 2, generator=gen) * 3.0 - 1.5
    special = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [1.0, -1.0], [0.0, 0.0], [1 / 40 - 1, 1 / 24 - 1],
                            [float("nan"), 0.3], [0.2, float("inf")], [-float("inf"), float("nan")], [7.0, -9.0]])
    grid[1, : len(special), 0] = special
    assert _bag_sampling_applies(maps, grid)
    fast = texel_bag_sample(maps, grid)
    reference = F.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=False)
    assert fast.shape == reference.shape
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):  # the kernels whose rounding it follows
        assert torch.equal(fast, reference)
    else:
        torch.testing.assert_close(fast, reference, rtol=0, atol=1e-4)
    assert torch.isfinite(fast).all()
    # other dtypes, and sample positions that want a gradient, keep grid_sample itself
    assert not _bag_sampling_applies(maps.double(), grid.double())
    assert not _bag_sampling_applies(maps, grid.clone().requires_grad_(True))
