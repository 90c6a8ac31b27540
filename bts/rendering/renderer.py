"""Volume rendering driven by a density closure: rays in, weights and expected distance out (docs/method.md §2).

The renderer knows nothing about encoders or heads: ``density_fn(points [B, N, 3]) -> (sigma [B, N], invalid [B, N])``
is all it calls, in chunks of ``chunk_points`` points (the original's ``eval_batch_size``; no numerical effect).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from bts.rendering.compositing import composite, composite_values, distance_to_depth, expected_distance
from bts.rendering.rays import Rays, image_rays
from bts.rendering.samplers import sample_distances, sample_points

DensityFn = Callable[[Tensor], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class RendererConfig:
    near: float = 3.0
    far: float = 80.0
    num_samples: int = 64
    lindisp: bool = True
    hard_alpha_cap: bool = True
    chunk_points: int = 100_000


@dataclass(frozen=True)
class RenderOutput:
    distances: Float[Tensor, "B R K"]  # sample distances along the (unit) rays
    points: Float[Tensor, "B R K 3"]
    sigma: Float[Tensor, "B R K"]
    invalid: Bool[Tensor, "B R K"]  # outside the input frustum (no feature)
    weights: Float[Tensor, "B R K"]
    distance: Float[Tensor, "B R"]  # expected distance sum_k w_k s_k


def query_density(density_fn: DensityFn, points: Float[Tensor, "B N 3"], chunk_points: int):
    """Evaluate ``density_fn`` in chunks of at most ``chunk_points`` points per batch element."""
    if points.shape[1] <= chunk_points:
        return density_fn(points)
    parts = [density_fn(chunk) for chunk in points.split(chunk_points, dim=1)]
    return torch.cat([p[0] for p in parts], dim=1), torch.cat([p[1] for p in parts], dim=1)


def render_rays(density_fn: DensityFn, rays: Rays, config: RendererConfig, *, jitter: bool,
                generator: torch.Generator | None = None, distances: Tensor | None = None) -> RenderOutput:
    """Sample, query and composite: ``D = sum_k w_k s_k`` with ``w_k = alpha_k prod_{m<k} (1 - alpha_m)``.

    ``distances`` ``[B, R, K]``: sample distances to use instead of drawing them (a replayed training step).
    """
    b, r, _ = rays.origins.shape
    k = config.num_samples
    if distances is None:
        distances = sample_distances(r, k, config.near, config.far, lindisp=config.lindisp, jitter=jitter,
                                     generator=generator, batch_shape=(b,), dtype=rays.origins.dtype,
                                     device=rays.origins.device)
    elif distances.shape != (b, r, k):
        raise ValueError(f"given sample distances have shape {tuple(distances.shape)}, the rays need {(b, r, k)}")
    distances = distances.to(rays.origins)
    points = sample_points(rays.origins, rays.directions, distances)
    sigma, invalid = query_density(density_fn, points.reshape(b, r * k, 3), config.chunk_points)
    sigma, invalid = sigma.reshape(b, r, k), invalid.reshape(b, r, k)
    weights = composite(sigma, distances, hard_alpha_cap=config.hard_alpha_cap).weights
    return RenderOutput(distances, points, sigma, invalid, weights, expected_distance(weights, distances))


def render_colours(render: RenderOutput, colours: Float[Tensor, "B F N 3"]) -> Float[Tensor, "B F R 3"]:
    """Composite per-sample colours of ``F`` colour frames (``N = R * K``): ``c_j = sum_k w_k c_j(x_k)``."""
    b, r, k = render.weights.shape
    per_sample = colours.reshape(b, colours.shape[1], r, k, colours.shape[-1])
    return composite_values(render.weights[:, None], per_sample)


def render_depth(density_fn: DensityFn, intrinsics: Float[Tensor, "B 3 3"], cam_to_world: Float[Tensor, "B 4 4"],
                 height: int, width: int, config: RendererConfig, *, jitter: bool = False,
                 rays_per_chunk: int = 4096, ray_positions: str = "centres",
                 pixels: Tensor | None = None) -> Float[Tensor, "B H W"]:
    """Rendered z-depth of every pixel of a pinhole view (deterministic midpoint samples unless ``jitter``), with
    the rays through the pixel centres or, ``ray_positions="align_corners"``, where the original cast them.

    ``pixels`` (flat row-major indices): render only those pixels, NaN elsewhere, with the same values as the full
    render. The jitter is drawn for every ray of each chunk exactly as the full render draws it (from the global
    generator, chunk by chunk) and the rays not asked for are dropped before the network runs, so a seeded render
    gives those pixels the samples of the full one."""
    rays = image_rays(intrinsics, cam_to_world, height, width, ray_positions=ray_positions)
    cam_dirs = rays.directions @ cam_to_world[:, :3, :3]  # back to the camera frame (row vectors: R^T d)
    b, n = rays.origins.shape[:2]
    if pixels is not None:
        pixels = torch.unique(pixels.to(device=rays.origins.device, dtype=torch.long))
        if pixels.numel() and (pixels[0] < 0 or pixels[-1] >= n):
            raise ValueError(f"pixels must index the {height}x{width} image (0 .. {n - 1}), got "
                             f"{int(pixels[0])} .. {int(pixels[-1])}")
    distances = []
    for start in range(0, n, rays_per_chunk):
        part = slice(start, start + rays_per_chunk)
        chunk = Rays(rays.origins[:, part], rays.directions[:, part], rays.valid[:, part])
        if pixels is None:
            distances.append(render_rays(density_fn, chunk, config, jitter=jitter).distance)
            continue
        # The draws render_rays would make for the whole chunk, then only the asked-for rays.
        drawn = sample_distances(chunk.origins.shape[1], config.num_samples, config.near, config.far,
                                 lindisp=config.lindisp, jitter=jitter, batch_shape=(b,), dtype=rays.origins.dtype,
                                 device=rays.origins.device)
        local = pixels[(pixels >= start) & (pixels < start + chunk.origins.shape[1])] - start
        if local.numel():
            sub = Rays(chunk.origins[:, local], chunk.directions[:, local], chunk.valid[:, local])
            distances.append(render_rays(density_fn, sub, config, jitter=jitter, distances=drawn[:, local]).distance)
    if pixels is None:
        return distance_to_depth(torch.cat(distances, dim=1), cam_dirs).reshape(-1, height, width)
    depth = torch.full((b, n), float("nan"), dtype=rays.origins.dtype, device=rays.origins.device)
    if pixels.numel():
        depth[:, pixels] = distance_to_depth(torch.cat(distances, dim=1), cam_dirs[:, pixels])
    return depth.reshape(-1, height, width)
