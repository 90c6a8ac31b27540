"""Voxel grids as NumPy arrays and in the bit-packed SemanticKITTI ``.bin`` format.

SemanticKITTI stores a ``256 x 256 x 32`` boolean grid, indexed ``[x forward, y left, z up]``, flattened in C order
(the last axis, up, varies fastest) and packed eight cells per byte, most significant bit first: exactly
``np.packbits(grid.reshape(-1))``, read back by ``np.unpackbits(data).reshape(shape)``. The companion ``.invalid``
file uses the same packing for cells that are not observed (here: outside the input camera's frustum).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SEMANTIC_KITTI_SHAPE = (256, 256, 32)


def pack_bits(grid: np.ndarray) -> np.ndarray:
    """Bit-pack a boolean grid (any shape) in C order, most significant bit first."""
    return np.packbits(np.asarray(grid, dtype=bool).reshape(-1))


def unpack_bits(packed: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The inverse of :func:`pack_bits` for a grid of ``shape``."""
    count = int(np.prod(shape))
    if packed.size * 8 < count or packed.size != (count + 7) // 8:
        raise ValueError(f"{packed.size} bytes cannot hold a packed grid of shape {tuple(shape)} "
                         f"(expected {(count + 7) // 8})")
    return np.unpackbits(packed, count=count).astype(bool).reshape(shape)


def write_packed(path: Path | str, grid: np.ndarray) -> Path:
    """Write a boolean grid as a SemanticKITTI-style ``.bin`` / ``.invalid`` file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pack_bits(grid).tofile(path)
    return path


def read_packed(path: Path | str, shape: tuple[int, ...] = SEMANTIC_KITTI_SHAPE) -> np.ndarray:
    """Read a bit-packed grid of a known ``shape``; a file of the wrong size names the expected size."""
    path = Path(path)
    packed = np.fromfile(path, dtype=np.uint8)
    try:
        return unpack_bits(packed, shape)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def write_npy(path: Path | str, occupied: np.ndarray, invalid: np.ndarray | None = None) -> Path:
    """Write the grid as ``uint8``: 0 free, 1 occupied and, when ``invalid`` is given, 255 outside the frustum."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = np.asarray(occupied, dtype=np.uint8).copy()
    if invalid is not None:
        out[np.asarray(invalid, dtype=bool)] = 255
    np.save(path, out)
    return path
