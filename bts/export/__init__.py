"""Export of the predicted scene: point clouds (PLY), voxel grids (NumPy, SemanticKITTI ``.bin``) and meshes.

Everything is in the levelled input-camera frame (:mod:`bts.export.grid`): points and mesh vertices as
(x right, y down, z forward) metres, voxel grids indexed (forward, left, up) like SemanticKITTI.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from bts.export.grid import OccupancyGrid, VoxelGridSpec, cell_centres, levelled_to_camera, occupancy_grid
from bts.export.mesh import marching_cubes_mesh, write_mesh
from bts.export.ply import read_ply, write_ply
from bts.export.voxels import read_packed, write_npy, write_packed
from bts.visualization.colormap import apply_magma

EXPORT_FORMATS = ("ply", "npy", "bin", "obj", "mesh_ply")

__all__ = ["EXPORT_FORMATS", "OccupancyGrid", "VoxelGridSpec", "cell_centres", "export_grid", "levelled_to_camera",
           "occupancy_grid", "occupied_points", "read_packed", "read_ply", "write_ply"]


def occupied_points(grid: OccupancyGrid) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the occupied cells ``[N, 3]`` (levelled camera frame) and uint8 colours by height (magma)."""
    centres = cell_centres(grid.spec)[grid.occupied]
    height = -centres[:, 1]
    lo, hi = grid.spec.origin[2], grid.spec.origin[2] + grid.spec.shape[2] * grid.spec.voxel_size
    colours = apply_magma(((height - lo) / (hi - lo))[None])[:, 0].T  # an image of 1 x N pixels -> [N, 3]
    return centres.numpy(), (colours * 255).round().to(torch.uint8).numpy()


def export_grid(grid: OccupancyGrid, stem: Path, formats: Sequence[str], threshold: float,
                binary_ply: bool = True) -> dict[str, Path]:
    """Write the chosen formats next to each other as ``<stem>.<ext>``; returns format -> path.

    ``ply``: the occupied cell centres as a point cloud; ``npy``: uint8 grid (0 free, 1 occupied, 255 outside the
    frustum); ``bin``: SemanticKITTI bit-packed occupancy plus ``<stem>.invalid``; ``obj`` / ``mesh_ply``: the
    marching-cubes surface at ``sigma = threshold`` (``<stem>_mesh.ply`` for the latter).
    """
    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown:
        raise ValueError(f"unknown export format(s) {unknown}; expected some of {list(EXPORT_FORMATS)}")
    written: dict[str, Path] = {}
    occupied, invalid = grid.occupied.numpy(), grid.invalid.numpy()
    if "ply" in formats:
        points, colours = occupied_points(grid)
        written["ply"] = write_ply(stem.with_name(stem.name + ".ply"), points, colours, binary=binary_ply)
    if "npy" in formats:
        written["npy"] = write_npy(stem.with_name(stem.name + ".npy"), occupied, invalid)
    if "bin" in formats:
        written["bin"] = write_packed(stem.with_name(stem.name + ".bin"), occupied)
        written["invalid"] = write_packed(stem.with_name(stem.name + ".invalid"), invalid)
    if "obj" in formats or "mesh_ply" in formats:
        vertices, faces = marching_cubes_mesh(grid, threshold)
        if "obj" in formats:
            written["obj"] = write_mesh(stem.with_name(stem.name + ".obj"), vertices, faces)
        if "mesh_ply" in formats:
            written["mesh_ply"] = write_mesh(stem.with_name(stem.name + "_mesh.ply"), vertices, faces, binary_ply)
    return written
