"""Triangle meshes of the predicted occupancy by marching cubes (scikit-image), written as OBJ or PLY."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bts.export.grid import OccupancyGrid
from bts.export.ply import write_ply


def marching_cubes_mesh(grid: OccupancyGrid, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The ``sigma = threshold`` iso-surface of a grid: vertices ``[N, 3]`` in levelled-camera coordinates and
    triangles ``[M, 3]`` (normals point out of the occupied space). Empty arrays when nothing crosses the level.

    The grid is padded by one free cell on every side, so the surface is closed where it meets the grid border.
    """
    from skimage.measure import marching_cubes

    sigma = np.pad(grid.sigma.numpy().astype(np.float32), 1, constant_values=0.0)
    if not (sigma.max() > threshold > sigma.min()):
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64)
    verts, faces, _, _ = marching_cubes(sigma, level=threshold, gradient_direction="ascent")
    spec = grid.spec
    fle = np.asarray(spec.origin) + (verts - 1.0 + 0.5) * spec.voxel_size  # padded index -> cell-centre metres
    levelled = np.stack([-fle[:, 1], -fle[:, 2], fle[:, 0]], axis=1)
    return levelled.astype(np.float32), faces.astype(np.int64)


def write_obj(path: Path | str, vertices: np.ndarray, faces: np.ndarray) -> Path:
    """Wavefront OBJ: ``v x y z`` lines, then ``f a b c`` with 1-based indices."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        f.write("# written by kdbts (bts.export): levelled input-camera frame, x right, y down, z forward, metres\n")
        np.savetxt(f, np.asarray(vertices, dtype=np.float64), fmt="v %.5f %.5f %.5f")
        np.savetxt(f, np.asarray(faces, dtype=np.int64) + 1, fmt="f %d %d %d")
    return path


def write_mesh(path: Path | str, vertices: np.ndarray, faces: np.ndarray, binary: bool = True) -> Path:
    """Write a mesh as ``.obj`` or ``.ply`` according to the suffix."""
    path = Path(path)
    if path.suffix == ".obj":
        return write_obj(path, vertices, faces)
    if path.suffix == ".ply":
        return write_ply(path, vertices, faces=faces, binary=binary)
    raise ValueError(f"mesh file {path} must end in .obj or .ply")


def read_obj(path: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """Read back the vertices and (0-based) triangles of an OBJ written by :func:`write_obj`."""
    verts, faces = [], []
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if parts and parts[0] == "v":
            verts.append([float(x) for x in parts[1:4]])
        elif parts and parts[0] == "f":
            faces.append([int(x.split("/")[0]) - 1 for x in parts[1:4]])
    return np.asarray(verts, np.float32).reshape(-1, 3), np.asarray(faces, np.int64).reshape(-1, 3)
