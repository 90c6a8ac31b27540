"""The levelled input-camera frame and densities queried on regular grids in it.

KITTI-360 perspective cameras (and those of the synthetic city) are pitched about 5° down, so grids that should be
parallel to the road (the bird's-eye profile, the voxel grid) are defined in a *levelled* frame: the input camera's
frame (x right, y down, z forward) rotated back up by the pitch. A levelled point maps to the camera by
``p_cam = R_x(+pitch) p_level`` (docs/method.md §10; the frame is :mod:`bts.geometry.level`).

The voxel grid follows SemanticKITTI: ``256 x 256 x 32`` cells of 0.2 m, axes (forward, left, up), i.e. the
velodyne convention, spanning forward [0, 51.2], left [-25.6, 25.6] and up [-2, 4.4] metres from the camera. In
levelled-camera coordinates the centre of cell ``(i, j, k)`` is ``x = -left_j``, ``y = -up_k``, ``z = forward_i``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from bts.geometry import camera_from_level, transform_points
from bts.rendering.renderer import DensityFn, query_density


def levelled_to_camera(pitch_deg: float, dtype: torch.dtype = torch.float32) -> Float[Tensor, "4 4"]:
    """The transform from the levelled frame to a camera pitched ``pitch_deg`` down: ``R_x(+pitch)``
    (:func:`~bts.geometry.camera_from_level`, cast to ``dtype``)."""
    return camera_from_level(pitch_deg).to(dtype)


@dataclass(frozen=True)
class VoxelGridSpec:
    """A regular grid in (forward, left, up) coordinates of the levelled frame; ``origin`` is the outer corner."""

    shape: tuple[int, int, int] = (256, 256, 32)
    voxel_size: float = 0.2
    origin: tuple[float, float, float] = (0.0, -25.6, -2.0)

    def __post_init__(self):
        if len(self.shape) != 3 or min(self.shape) < 1:
            raise ValueError(f"grid shape must be three positive sizes, got {self.shape}")
        if self.voxel_size <= 0:
            raise ValueError(f"voxel_size must be positive, got {self.voxel_size}")
        if len(self.origin) != 3:
            raise ValueError(f"grid origin must be (forward, left, up), got {self.origin}")

    def axis_centres(self, axis: int, dtype: torch.dtype = torch.float32) -> Float[Tensor, "n"]:
        """Cell-centre coordinates along one axis (0 forward, 1 left, 2 up)."""
        return self.origin[axis] + (torch.arange(self.shape[axis], dtype=dtype) + 0.5) * self.voxel_size


def fle_to_levelled(points_fle: Float[Tensor, "... 3"]) -> Float[Tensor, "... 3"]:
    """(forward, left, up) to levelled-camera (x right, y down, z forward) coordinates."""
    forward, left, up = points_fle.unbind(-1)
    return torch.stack([-left, -up, forward], dim=-1)


def levelled_to_fle(points: Float[Tensor, "... 3"]) -> Float[Tensor, "... 3"]:
    """Levelled-camera coordinates to (forward, left, up); the inverse of :func:`fle_to_levelled`."""
    x, y, z = points.unbind(-1)
    return torch.stack([z, -x, -y], dim=-1)


def cell_centres(spec: VoxelGridSpec, dtype: torch.dtype = torch.float32) -> Float[Tensor, "X Y Z 3"]:
    """Levelled-camera coordinates of every cell centre, indexed ``[forward, left, up]``."""
    axes = [spec.axis_centres(a, dtype) for a in range(3)]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
    return fle_to_levelled(grid)


def query_levelled(density_fn: DensityFn, points_level: Float[Tensor, "N 3"], level_to_world: Float[Tensor, "4 4"],
                   chunk_points: int = 100_000) -> tuple[Float[Tensor, "N"], Bool[Tensor, "N"]]:
    """Density ``sigma`` and the out-of-frustum flag of levelled points, in chunks of ``chunk_points`` (on the
    device of ``level_to_world``)."""
    points_world = transform_points(level_to_world, points_level.to(level_to_world))
    sigma, invalid = query_density(density_fn, points_world[None], chunk_points)
    return sigma[0], invalid[0]


@dataclass(frozen=True)
class OccupancyGrid:
    """Densities on a :class:`VoxelGridSpec`, all ``[forward, left, up]``; out-of-frustum cells count as free."""

    spec: VoxelGridSpec
    sigma: Float[Tensor, "X Y Z"]
    invalid: Bool[Tensor, "X Y Z"]
    occupied: Bool[Tensor, "X Y Z"]


def occupancy_grid(density_fn: DensityFn, spec: VoxelGridSpec, level_to_world: Float[Tensor, "4 4"],
                   threshold: float, chunk_points: int = 100_000) -> OccupancyGrid:
    """Query every cell centre: occupied where ``sigma > threshold`` inside the input frustum.

    Out-of-frustum cells get a feature clamped from the image border and a meaningless density, so they are
    zeroed (as the original's voxel export does) and reported in ``invalid``.
    """
    centres = cell_centres(spec).reshape(-1, 3)
    sigma, invalid = query_levelled(density_fn, centres, level_to_world, chunk_points)
    sigma = torch.where(invalid, torch.zeros_like(sigma), sigma).reshape(spec.shape).float().cpu()
    invalid = invalid.reshape(spec.shape).cpu()
    return OccupancyGrid(spec, sigma, invalid, sigma > threshold)
