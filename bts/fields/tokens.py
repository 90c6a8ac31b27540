"""Where a 3D point meets an encoded image: projection, feature sampling and the per-view token
(docs/method.md §1.2-1.3).

All views are handled in one batched projection and one ``grid_sample`` call, never a Python loop over views.

The feature sampling is the original's ``grid_sample(bilinear, border, align_corners=False)``, value for value, made
fast on the CPU in three ways (BENCHMARKS.md, "Feature sampling"): the maps are read channels-last (every texel's
channels contiguous, so a point reads four short runs of memory instead of one scattered value per channel: about
3-4x faster, bit-identical); in float32 on the CPU the forward is a weighted sum of each point's four texel rows
(``embedding_bag`` with per-point weights, :func:`bilinear_texels` computing texels and weights the way
``grid_sample``'s vectorised CPU kernel does: about 3-4x faster again, and bit-identical to it on the x86 CPUs
measured, BENCHMARKS.md, "Feature sampling as a weighted bag of texels"); and the backward pass scatters each point's
gradient into the four texels' rows of a channels-last gradient (:func:`scatter_to_texels`: one sparse product on
the CPU, ``index_add_`` elsewhere) instead of ``grid_sample``'s backward kernel (several times faster; the same sums
in another order, so equal to float rounding).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor

from bts.fields.encoding import PositionalEncoding, inverse_depth_code
from bts.geometry import PinholeCamera, invert_rigid, transform_points


def channels_last(features: Float[Tensor, "B V C h w"]) -> Tensor:
    """The same maps with the channel dimension innermost in memory (a no-op when it already is)."""
    return features.movedim(2, -1).contiguous().movedim(-1, 2)


@dataclass(frozen=True)
class EncodedViews:
    """Feature maps of encoded images with their cameras (a returned value, never state on a module)."""

    features: Float[Tensor, "B V C h w"]
    intrinsics: Float[Tensor, "B V 3 3"]  # normalised
    world_to_cam: Float[Tensor, "B V 4 4"]

    @classmethod
    def create(cls, features: Tensor, intrinsics: Tensor, cam_to_world: Tensor) -> EncodedViews:
        """``features`` are stored channels-last (each texel's channels contiguous; the shape is unchanged), the
        layout the feature sampling reads fast (module docstring)."""
        return cls(channels_last(features), intrinsics, invert_rigid(cam_to_world))

    @property
    def num_views(self) -> int:
        return self.features.shape[1]

    def select(self, views: list[int] | tuple[int, ...]) -> EncodedViews:
        idx = list(views)
        if idx and idx == list(range(idx[0], idx[0] + len(idx))):  # a run of views: a view, not a copy of the maps
            part = slice(idx[0], idx[0] + len(idx))
            return EncodedViews(self.features[:, part], self.intrinsics[:, part], self.world_to_cam[:, part])
        return EncodedViews(self.features[:, idx], self.intrinsics[:, idx], self.world_to_cam[:, idx])


@dataclass(frozen=True)
class ViewTokens:
    """Per-view tokens ``[feature, encoding]`` of query points, with the out-of-frustum flags.

    ``channels [D, B, V, N]`` is a view of the memory the sampling produced (:func:`view_tokens`): channels-outermost
    (points innermost, ``grid_sample``'s layout) or point rows (the texel-bag sampling's); ``tokens`` is the
    ``[B, V, N, D]`` view that the heads take. ``MLP`` recognises either layout and runs each layer as one matrix
    product on it, so the tokens are never transposed in memory.
    """

    channels: Float[Tensor, "D B V N"]
    invalid: Bool[Tensor, "B V N"]

    @property
    def tokens(self) -> Float[Tensor, "B V N D"]:
        return self.channels.permute(1, 2, 3, 0)

    def of_view(self, view: int) -> Float[Tensor, "B N D"]:
        """The tokens of one view, ``tokens[:, view]``, selected in the channels-outermost memory (so that its
        gradient keeps that layout; for a single view a reshaping view whose gradient needs no zero-filled copy)."""
        if self.channels.shape[2] == 1 and view in (0, -1):
            return self.channels.squeeze(2).permute(1, 2, 0)
        return self.channels[:, :, view].permute(1, 2, 0)


def project_to_views(points: Float[Tensor, "B N 3"], encoded: EncodedViews):
    """Normalised image coordinates ``[B, V, N, 2]``, camera z ``[B, V, N]`` and invalid flags ``[B, V, N]``."""
    cam = transform_points(encoded.world_to_cam, points[:, None])  # [B, V, N, 3]
    proj = PinholeCamera(encoded.intrinsics).project(cam)
    return proj.uv, proj.depth, ~proj.valid


def sample_features(features: Float[Tensor, "B V C h w"], uv: Float[Tensor, "B V N 2"]) -> Tensor:
    """Bilinear features at ``uv`` (``align_corners=False``, border padding): ``[B, V, N, C]`` (a view of the
    channel-first result)."""
    return sample_features_channels_first(features, uv).transpose(-1, -2)


def sample_features_channels_first(features: Float[Tensor, "B V C h w"], uv: Float[Tensor, "B V N 2"]) -> Tensor:
    """:func:`sample_features` as ``[B, V, C, N]``, ``grid_sample``'s own layout (no copy)."""
    b, v, c, h, w = features.shape
    grid = uv.reshape(b * v, -1, 1, 2)
    maps = features.reshape(b * v, c, h, w).contiguous(memory_format=torch.channels_last)
    if grid.requires_grad:  # gradients for the sample positions too: grid_sample's own backward
        out = _grid_sample(maps, grid)
    else:
        out = _BorderBilinear.apply(maps, grid)
    return out.reshape(b, v, c, -1)


def _grid_sample(maps: Tensor, grid: Tensor) -> Tensor:
    return F.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=False)


def texel_coordinate(u: Tensor, size: int) -> Tensor:
    """``grid_sample``'s texel coordinate for ``align_corners=False`` with border padding:
    ``x = (u + 1) size / 2 - 0.5`` clipped to ``[0, size - 1]`` (a NaN to 0, as ``grid_sample`` clips it).

    In float32 the product and the subtraction are rounded once, as one fused multiply-add (PyTorch's vectorised CPU
    kernel compiles ``(u + 1) * (size / 2) - 0.5`` to one): the double-precision product of two floats is exact, so
    rounding ``(u + 1) * (size / 2) - 0.5`` computed in float64 back to float32 gives the fused result. The same
    coordinates are what make :class:`_BorderBilinear`'s forward equal to ``grid_sample`` bit for bit."""
    shifted = u + 1.0
    if u.dtype == torch.float32:
        x = (shifted.double() * (size * 0.5) - 0.5).float()
    else:
        x = shifted * (size * 0.5) - 0.5
    return x.nan_to_num(nan=0.0).clamp(0.0, size - 1)


def bilinear_texels(grid: Float[Tensor, "M N 1 2"], h: int, w: int) -> tuple[Tensor, Tensor]:
    """The texels ``grid_sample(bilinear, border, align_corners=False)`` reads for each point and their weights:
    rows ``[M*N, 4]`` into the channels-last table ``[M*h*w, C]`` of ``M`` maps, and the bilinear weights
    ``[M*N, 4]`` (north-west, north-east, south-west, south-east). Texel coordinates come from
    :func:`texel_coordinate`; the neighbours are ``floor(x)`` and ``floor(x) + 1`` (clamped to the map; its weight
    is 0 there), and each weight is the product of the distances to the opposite sides, as in ``grid_sample``."""
    m, n = grid.shape[:2]
    uv = grid.reshape(m, n, 2)
    x, y = texel_coordinate(uv[..., 0], w), texel_coordinate(uv[..., 1], h)
    x0, y0 = x.floor(), y.floor()
    fx, fy = x - x0, y - y0
    x0, y0 = x0.long(), y0.long()
    x1, y1 = (x0 + 1).clamp_max(w - 1), (y0 + 1).clamp_max(h - 1)
    base = (torch.arange(m, device=grid.device) * (h * w)).view(m, 1)
    row0, row1 = base + y0 * w, base + y1 * w
    rows = torch.stack([row0 + x0, row0 + x1, row1 + x0, row1 + x1], dim=-1).reshape(-1, 4)
    gx, gy = 1.0 - fx, 1.0 - fy
    weights = torch.stack([gy * gx, gy * fx, fy * gx, fy * fx], dim=-1).reshape(-1, 4)
    return rows, weights


def texel_bag_sample(maps: Float[Tensor, "M C h w"], grid: Float[Tensor, "M N 1 2"],
                     texels: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """``grid_sample(maps, grid)`` (bilinear, border, ``align_corners=False``) as ``[M, C, N, 1]``, computed as
    each point's weighted sum of its four texel rows of the channels-last table (``embedding_bag``, mode ``sum``,
    one bag of four rows per point): the gather-and-add that ``grid_sample`` does, without its per-channel
    strided reads. ``texels``: :func:`bilinear_texels` of ``grid``, when the caller has them already. The result is
    a view of a points-major ``[M, N, C]`` tensor."""
    m, c, h, w = maps.shape
    n = grid.shape[1]
    table = maps.permute(0, 2, 3, 1).reshape(m * h * w, c)  # a view for channels-last maps
    rows, weights = texels if texels is not None else bilinear_texels(grid, h, w)
    out = F.embedding_bag(rows, table, per_sample_weights=weights, mode="sum")  # [M*N, C]
    return out.view(m, n, c).permute(0, 2, 1).unsqueeze(-1)


def _bag_sampling_applies(maps: Tensor, grid: Tensor) -> bool:
    """Whether :class:`_BorderBilinear` samples ``maps`` (``[..., C, h, w]``) at ``grid`` (``[..., 2]``) as a bag of
    texel rows: float32 on the CPU, some points and texels, and no gradient wanted for the sample positions (those
    go through ``grid_sample`` itself)."""
    return maps.device.type == "cpu" and maps.dtype == torch.float32 and grid.dtype == torch.float32 \
        and not grid.requires_grad and grid.numel() > 0 and maps.shape[-2] * maps.shape[-1] > 0


class _BorderBilinear(torch.autograd.Function):
    """``grid_sample`` forward (bit for bit; :func:`texel_bag_sample` in float32 on the CPU); the features' gradient
    scattered row-wise into a channels-last map."""

    @staticmethod
    def forward(ctx, maps: Tensor, grid: Tensor) -> Tensor:
        ctx.map_shape = maps.shape
        if _bag_sampling_applies(maps, grid):
            rows, weights = bilinear_texels(grid, maps.shape[2], maps.shape[3])
            ctx.save_for_backward(rows, weights)  # the texels the backward scatters into, computed once
            return texel_bag_sample(maps, grid, (rows, weights))
        ctx.save_for_backward(grid)
        return _grid_sample(maps, grid)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        m, c, h, w = ctx.map_shape
        if not ctx.needs_input_grad[0]:
            return None, None
        saved = ctx.saved_tensors
        rows, weights = saved if len(saved) == 2 else bilinear_texels(saved[0], h, w)
        weights = weights.to(grad_out.dtype)
        per_point = grad_out.reshape(m, c, -1).transpose(1, 2).reshape(-1, c).contiguous()  # [M*N, C]
        table = scatter_to_texels(rows, weights, per_point, m * h * w)
        return table.view(m, h, w, c).permute(0, 3, 1, 2), None


def scatter_to_texels(rows: Tensor, weights: Tensor, per_point: Tensor, num_texels: int) -> Tensor:
    """``table[t] = sum of weights[p, k] * per_point[p]`` over every ``(p, k)`` with ``rows[p, k] == t``: the
    channels-last gradient ``[num_texels, C]`` of bilinear sampling.

    On the CPU in float32/float64 it is one sparse-times-dense product: the ``4 P`` (texel, point, weight) entries
    sorted by texel form the CSR matrix ``[num_texels, P]`` (built directly: its row pointers are the cumulative
    texel counts), which multiplies ``per_point``. That is about 2.6x faster than four weighted ``index_add_``
    passes (BENCHMARKS.md, "The sampling backward as one sparse product"), which remain the path of other devices
    and dtypes. The two add the same products in another order, so they agree to float rounding."""
    if per_point.device.type != "cpu" or per_point.dtype not in (torch.float32, torch.float64):
        table = per_point.new_zeros(num_texels, per_point.shape[1])
        for k in range(rows.shape[1]):
            table.index_add_(0, rows[:, k], per_point * weights[:, k:k + 1])
        return table
    flat = rows.reshape(-1)
    # A stable sort of int32 keys (a radix sort on the CPU) is 3-4x faster than argsort of the int64 rows, and the
    # stable order (within a texel, ascending point) makes the sums' order, so the result, deterministic.
    keys = flat.to(torch.int32) if num_texels < 2**31 else flat
    order = torch.sort(keys, stable=True).indices
    crow = torch.zeros(num_texels + 1, dtype=torch.long)
    torch.cumsum(torch.bincount(flat, minlength=num_texels), 0, out=crow[1:])
    points = torch.div(order, rows.shape[1], rounding_mode="floor")
    with warnings.catch_warnings():  # PyTorch's "sparse CSR support is in beta" notice, once per process
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        texels_from_points = torch.sparse_csr_tensor(crow, points, weights.reshape(-1)[order],
                                                     size=(num_texels, per_point.shape[0]), check_invariants=False)
    return texels_from_points @ per_point


def view_tokens(points: Float[Tensor, "B N 3"], encoded: EncodedViews, encoding: PositionalEncoding,
                code_near: float, code_far: float) -> ViewTokens:
    """Tokens ``[f_v ; gamma(u_v, v_v, d_v)]`` of every point in every encoded view (feature first), built with one
    concatenation of whole blocks in the layout the feature sampling produces: point rows ``[B, V, N, D]`` where it
    samples as a bag of texel rows (float32 on the CPU, no gradient for the sample positions), channels-outermost
    ``[D, B, V, N]`` where it is ``grid_sample``'s own (``ViewTokens``: the heads take either)."""
    uv, z, invalid = project_to_views(points, encoded)
    code = inverse_depth_code(z, code_near, code_far)
    if _bag_sampling_applies(encoded.features, uv):
        features = sample_features(encoded.features, uv)  # [B, V, N, C], contiguous rows
        rows = torch.cat([features, *encoding.parts(torch.stack([uv[..., 0], uv[..., 1], code], dim=-1))], dim=-1)
        return ViewTokens(rows.permute(3, 0, 1, 2), invalid)
    coords = torch.stack([uv[..., 0], uv[..., 1], code])  # [3, B, V, N]
    features = sample_features_channels_first(encoded.features, uv).permute(2, 0, 1, 3)  # [C, B, V, N], a view
    return ViewTokens(torch.cat([features, *encoding.channels_outermost_parts(coords)]), invalid)
