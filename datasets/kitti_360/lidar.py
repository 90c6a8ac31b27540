"""Sparse depth maps from velodyne scans, for validation (docs/method.md §8.2, KITTI-360 depth)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from bts.geometry import PinholeCamera, normalized_to_pixels


def lidar_depth_map(points_velo: np.ndarray, velo_to_cam: np.ndarray, intrinsics_normalized: Tensor,
                    height: int, width: int) -> Tensor:
    """Project velodyne points into a pinhole camera and keep the nearest z-depth per pixel.

    Points behind the camera are dropped before projecting: the original loader projects them too, so they
    land mirrored in the image (BTS issue #32, docs/method.md §11-11). Pixels without a point are 0.
    """
    pts = points_velo[:, :3].astype(np.float64) @ velo_to_cam[:3, :3].T + velo_to_cam[:3, 3]
    pts = torch.from_numpy(pts[pts[:, 2] > 0.0])
    proj = PinholeCamera(intrinsics_normalized.double()).project(pts)
    pix = normalized_to_pixels(proj.uv, width, height).round().long()
    x, y, z = pix[:, 0], pix[:, 1], proj.depth
    keep = proj.valid & (x >= 0) & (x < width) & (y >= 0) & (y < height)
    x, y, z = x[keep], y[keep], z[keep]
    depth = torch.full((height * width,), float("inf"), dtype=torch.float64)
    depth.scatter_reduce_(0, y * width + x, z, reduce="amin")
    depth[torch.isinf(depth)] = 0.0
    return depth.reshape(height, width).float()
