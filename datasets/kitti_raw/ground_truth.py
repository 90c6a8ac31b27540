"""Depth ground truth of the Eigen test protocol (docs/method.md §8.2): raw velodyne points projected into the image.

The rules are those every published KITTI Raw depth table uses (Eigen et al.'s protocol as Monodepth2 and BTS
implement it), kept exactly, conventions included, so that numbers stay comparable:

- only points with velodyne ``x >= 0`` (in front of the car) are used, reflectance ignored;
- a point projects with ``P_rect · R_rect_00 · T_velo→cam``; its depth is the third homogeneous coordinate;
- its pixel is ``round(u) - 1, round(v) - 1`` (``numpy.round``: halves to even; the ``- 1`` is the protocol's
  legacy 1-based convention);
- points outside the image are dropped, the closest depth wins where several points share a pixel, and negative
  depths become 0 (no ground truth);
- evaluation keeps the pixels inside the Eigen (Garg) crop with ``min_depth < d < max_depth``.
"""

from __future__ import annotations

import numpy as np

# The Garg et al. crop as fractions of the image (rows top, bottom; columns left, right): 151/370, 367/370, 44/1224
# and 1180/1224 written to 8 decimals. The protocol truncates ``fraction * size`` to integers, so these exact decimals
# (not the fractions) decide the bounds, off by one pixel at some sizes.
EIGEN_CROP = (0.40810811, 0.99189189, 0.03594771, 0.96405229)


def velodyne_depth_map(points_velo: np.ndarray, velo_to_image: np.ndarray, height: int,
                       width: int) -> np.ndarray:
    """Sparse depth ``[H, W]`` (float32, 0 where no point) of velodyne points ``[N, >=3]`` in an image.

    Args:
        points_velo: the scan in the velodyne frame (x forward, y left, z up); extra columns are ignored.
        velo_to_image: the 3x4 matrix ``P_rect · R_rect_00 · T_velo→cam``.
        height, width: the image size the calibration refers to (``S_rect``).
    """
    if points_velo.ndim != 2 or points_velo.shape[1] < 3:
        raise ValueError(f"points must be [N, >=3], got shape {points_velo.shape}")
    pts = points_velo[:, :3].astype(np.float64)
    pts = pts[pts[:, 0] >= 0]
    hom = np.concatenate([pts, np.ones((len(pts), 1))], axis=1)
    proj = hom @ velo_to_image.T
    depth_values = proj[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.round(proj[:, 0] / depth_values) - 1
        y = np.round(proj[:, 1] / depth_values) - 1
    inside = np.isfinite(x) & np.isfinite(y) & (x >= 0) & (y >= 0) & (x < width) & (y < height)
    x, y, depth_values = x[inside].astype(np.int64), y[inside].astype(np.int64), depth_values[inside]
    depth = np.full(height * width, np.inf)
    np.minimum.at(depth, y * width + x, depth_values)
    depth[~np.isfinite(depth) | (depth < 0)] = 0.0
    return depth.reshape(height, width).astype(np.float32)


def eigen_crop_mask(height: int, width: int) -> np.ndarray:
    """Boolean ``[H, W]`` mask of the Eigen (Garg) crop: rows ``[0.4081 H, 0.9919 H)``, columns
    ``[0.0359 W, 0.9641 W)``, bounds truncated to integers."""
    top, bottom, left, right = (np.array([EIGEN_CROP[0] * height, EIGEN_CROP[1] * height,
                                          EIGEN_CROP[2] * width, EIGEN_CROP[3] * width])).astype(np.int32)
    mask = np.zeros((height, width), dtype=bool)
    mask[top:bottom, left:right] = True
    return mask
