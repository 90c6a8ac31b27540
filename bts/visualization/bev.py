"""The bird's-eye "profile" of docs/method.md §10: how much free height the model predicts above every ground cell.

A grid of ``rows x columns`` cells spans ``x`` (right) and ``z`` (forward) of the levelled input-camera frame, with
``num_slices`` heights per cell in ``y`` from the camera height (``y = 0``) downwards. Densities are queried at every
point (out-of-frustum points get ``sigma = 1``), summed cumulatively down the slices, and the value of a cell is the
fraction of slices whose cumulative density is still at most ``threshold`` (8): 1 means free all the way down,
0 means blocked right at the camera height. Bright (magma) is free.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from bts.export.grid import query_levelled
from bts.rendering.renderer import DensityFn
from bts.visualization.colormap import apply_magma


@dataclass(frozen=True)
class BevGrid:
    """Extent and resolution of the profile, in metres of the levelled frame.

    ``z_range`` runs from the top image row to the bottom one (far to near by default), ``x_range`` from the left
    column to the right one, ``y_range`` from the first slice to the last (downwards).
    """

    x_range: tuple[float, float] = (-9.0, 9.0)
    z_range: tuple[float, float] = (21.0, 3.0)
    y_range: tuple[float, float] = (0.0, 0.75)
    resolution: tuple[int, int] = (256, 256)  # (rows along z, columns along x)
    num_slices: int = 64
    threshold: float = 8.0

    def __post_init__(self):
        for name in ("x_range", "z_range", "y_range", "resolution"):
            if len(getattr(self, name)) != 2:
                raise ValueError(f"bev.{name} must have two values, got {getattr(self, name)}")
        if min(self.resolution) < 1 or self.num_slices < 1:
            raise ValueError(f"bev.resolution and bev.num_slices must be positive, got {self.resolution}, "
                             f"{self.num_slices}")


def bev_points(grid: BevGrid, dtype: torch.dtype = torch.float32) -> Float[Tensor, "Z X S 3"]:
    """Levelled-frame query points, ``[rows, columns, slices, 3]``, at the cell centres of each range."""

    def centres(lo: float, hi: float, n: int) -> Tensor:
        return lo + (torch.arange(n, dtype=dtype) + 0.5) * (hi - lo) / n

    rows, cols = grid.resolution
    z = centres(*grid.z_range, rows)
    x = centres(*grid.x_range, cols)
    y = centres(*grid.y_range, grid.num_slices)
    zz, xx, yy = torch.meshgrid(z, x, y, indexing="ij")
    return torch.stack([xx, yy, zz], dim=-1)


def free_height(sigma: Float[Tensor, "Z X S"], invalid: Bool[Tensor, "Z X S"], threshold: float = 8.0
                ) -> Float[Tensor, "Z X"]:
    """Fraction of slices whose cumulative density (from the top slice down) is at most ``threshold``.

    Example: densities ``[0, 0, 5, 5]`` with threshold 8 have cumulative sums ``[0, 0, 5, 10]``: value 0.75.
    """
    sigma = torch.where(invalid, torch.ones_like(sigma), sigma)
    return (sigma.cumsum(dim=-1) <= threshold).float().mean(dim=-1)


def bev_profile(density_fn: DensityFn, grid: BevGrid, level_to_world: Float[Tensor, "4 4"],
                chunk_points: int = 100_000) -> Float[Tensor, "Z X"]:
    """The profile of one encoded view: free height per cell in ``[0, 1]``."""
    points = bev_points(grid)
    sigma, invalid = query_levelled(density_fn, points.reshape(-1, 3), level_to_world, chunk_points)
    shape = points.shape[:-1]
    return free_height(sigma.reshape(shape).float().cpu(), invalid.reshape(shape).cpu(), grid.threshold)


def colorize_profile(profile: Float[Tensor, "Z X"], height: int | None = None) -> Float[Tensor, "3 H W"]:
    """Magma RGB of a profile, scaled (nearest neighbour) to ``height`` rows keeping the aspect ratio."""
    rgb = apply_magma(profile)
    if height is None or height == profile.shape[0]:
        return rgb
    width = max(1, round(profile.shape[1] * height / profile.shape[0]))
    return torch.nn.functional.interpolate(rgb[None], size=(height, width), mode="nearest")[0]
