"""Occupancy ground truth from aggregated lidar scans, as the BTS and KDBTS papers build it (docs/method.md §8.1).

Pure, batched functions (no Python loop over bins or points):

- :func:`query_grid`: the horizontal slice(s) of query points in the levelled frame;
- :func:`level_transform`: camera 0 -> levelled frame (``R_x(-pitch)``);
- :func:`polar_profile`: one scan's surface profile, the minimum lidar radius per 1° bin;
- :func:`lidar_votes`: per scan and query point, "occupied or unknown" from the profiles;
- :func:`vote_threshold`: the original's vote rule ``(1 + votes) / N > (N - 2) / N``.

The levelled frame has its origin at camera 0 at time t, x right, y down, z forward, rotated so that the x-z plane
is parallel to the road (KITTI-360's perspective cameras are pitched about 5° down); it is built in
:mod:`bts.geometry.level`.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from bts.geometry import level_from_camera


def query_grid(x_range: tuple[float, float], y_range: tuple[float, float], z_range: tuple[float, float],
               ppm: float, ppm_y: float, y_res: int | None = None) -> tuple[Float[Tensor, "P 3"], tuple[int, int, int]]:
    """Query points ``[Y * Z * X, 3]`` (y slowest, x fastest) and the grid size ``(x_res, y_res, z_res)``.

    ``x_res = |Δx| * ppm`` and ``z_res = |Δz| * ppm``, truncated; with ``y_res == 1`` the single slice lies in the
    middle of ``y_range`` (the papers' protocol: y = 0.375 m for [0, 0.75]). ``z_range`` may run far to near.
    """
    x_res = abs(int((x_range[1] - x_range[0]) * ppm))
    z_res = abs(int((z_range[1] - z_range[0]) * ppm))
    if y_res is None:
        y_res = abs(int((y_range[1] - y_range[0]) * ppm_y))
    if min(x_res, y_res, z_res) < 1:
        raise ValueError(f"empty occupancy grid: {x_res} x {y_res} x {z_res} points")
    x = torch.linspace(x_range[0], x_range[1], x_res)
    z = torch.linspace(z_range[0], z_range[1], z_res)
    y = torch.tensor([(y_range[0] + y_range[1]) / 2]) if y_res == 1 else torch.linspace(y_range[0], y_range[1], y_res)
    grid = torch.stack(torch.meshgrid(y, z, x, indexing="ij"), dim=-1)  # [Y, Z, X, (y, z, x)]
    return grid[..., [2, 0, 1]].reshape(-1, 3), (x_res, y_res, z_res)


def level_transform(pitch_deg: float) -> Float[Tensor, "4 4"]:
    """``T_level<-cam0``: undoes a camera pitched ``pitch_deg`` down (a point straight ahead on the road plane then
    has y = camera height); :func:`bts.geometry.level_from_camera` under this module's name."""
    return level_from_camera(pitch_deg)


def transform(matrix: Float[Tensor, "*B 4 4"], points: Float[Tensor, "*B N 3"]) -> Float[Tensor, "*B N 3"]:
    return points @ matrix[..., :3, :3].transpose(-1, -2) + matrix[..., None, :3, 3]


def slice_mask(points_level: Float[Tensor, "N 3"], y_range: tuple[float, float],
               far_distance: float) -> Bool[Tensor, "N"]:
    """The lidar points that shape a profile: levelled y inside ``y_range``, or at least ``far_distance`` from the
    levelled origin (so that no direction stays empty)."""
    y = points_level[:, 1]
    return ((y >= y_range[0]) & (y <= y_range[1])) | (points_level.norm(dim=-1) >= far_distance)


def polar_profile(xy: Float[Tensor, "M 2"], num_bins: int = 360) -> Float[Tensor, "B2 2"]:
    """Surface profile of one scan: ``[num_bins + 2, (angle, radius)]``.

    Bin ``i`` covers ``[-π + i·Δ, -π + (i+1)·Δ)``; its value is the minimum radius ``√(x² + y²)`` of its points, at
    the bin centre. An empty bin takes the value of the previous bin; empty bins before the first point take the
    radius of the smallest-angle point. A wrapped copy of the last bin is put before the first, and of the first
    after the last, so interpolation covers the full circle. With no point at all every radius is ``inf`` (nothing
    seen; the original code fails there).
    """
    borders = torch.linspace(-math.pi, math.pi, num_bins + 1, dtype=xy.dtype, device=xy.device)
    centres = (borders[:-1] + borders[1:]) / 2
    if len(xy) == 0:
        radius = torch.full_like(centres, math.inf)
    else:
        angles = torch.atan2(xy[:, 1], xy[:, 0])
        dists = xy.norm(dim=-1)
        bins = torch.searchsorted(borders, angles, right=True) - 1
        keep = (bins >= 0) & (bins < num_bins)  # an angle of exactly π belongs to no bin (as in the original)
        minimum = torch.full_like(centres, math.inf).scatter_reduce(0, bins[keep], dists[keep], "amin")
        filled = torch.isfinite(minimum)
        index = torch.arange(num_bins, device=xy.device)
        last = torch.cummax(torch.where(filled, index, torch.full_like(index, -1)), dim=0).values
        first_radius = dists[torch.argmin(angles)]
        radius = torch.where(last >= 0, minimum[last.clamp(min=0)], first_radius)
    profile = torch.stack([centres, radius], dim=-1)
    before = torch.stack([centres[-1] - 2 * math.pi, radius[-1]])
    after = torch.stack([centres[0] + 2 * math.pi, radius[0]])
    return torch.cat([before[None], profile, after[None]])


def lidar_votes(points_level: Float[Tensor, "P 3"], profiles: Float[Tensor, "S B2 2"],
                level_to_lidar: Float[Tensor, "S 4 4"], min_distance: float = 3.0,
                homogeneous_norm: bool = True) -> Bool[Tensor, "S P"]:
    """Per scan and point: occupied-or-unknown (behind the scan's surface, or in the lidar's blind zone).

    The point's distance is compared with the profile radius interpolated linearly between bin centres. The papers'
    code measures it as the norm of the homogeneous 4-vector ``√(x² + y² + z² + 1)`` (``homogeneous_norm``,
    docs/method.md §11-10); otherwise the horizontal distance ``√(x² + y²)`` in the lidar frame, which is what the 2D
    profile measures.
    """
    p = transform(level_to_lidar, points_level.to(level_to_lidar.dtype).expand(len(profiles), -1, -1))
    angles = torch.atan2(p[..., 1], p[..., 0])
    if homogeneous_norm:
        dists = (p.square().sum(-1) + 1).sqrt()
    else:
        dists = p[..., :2].norm(dim=-1)
    prof_angles = profiles[..., 0].to(p.dtype).contiguous()
    prof_radius = profiles[..., 1].to(p.dtype)
    right = torch.searchsorted(prof_angles, angles.contiguous()).clamp(1, prof_angles.shape[-1] - 1)
    left = right - 1
    a0, a1 = prof_angles.gather(-1, left), prof_angles.gather(-1, right)
    r0, r1 = prof_radius.gather(-1, left), prof_radius.gather(-1, right)
    t = (angles - a0) / (a1 - a0)
    unseen = torch.isinf(r0) | torch.isinf(r1)  # a scan without points sees nothing: everything is free
    surface = torch.where(unseen, torch.full_like(r0, math.inf), r0 * (1 - t) + r1 * t)
    return (dists > surface) | (dists < min_distance)


def vote_threshold(votes: Tensor, num_scans: int) -> Bool[Tensor, "P"]:
    """The papers' rule ``(1 + votes) / N > (N - 2) / N``, i.e. ``votes >= N - 2`` (18 of 20 scans)."""
    return votes + 1 > num_scans - 2
