"""``data_poses/<seq>/poses.txt``: one row per posed frame, ``frame_id`` then the 3x4 pose-to-world matrix.

Only frames with a row have a pose; the dataset's time index ``t`` counts rows, not frame ids (docs/method.md §3.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datasets.kitti_360.errors import PACKAGE_POSES, MalformedFileError, require_file


@dataclass(frozen=True)
class SequencePoses:
    """Frame ids ``[T]`` (increasing) and pose-to-world matrices ``[T, 4, 4]`` (float64) of one sequence."""

    path: Path
    frame_ids: np.ndarray
    pose_to_world: np.ndarray

    def __len__(self) -> int:
        return len(self.frame_ids)

    def row_of(self, frame_id: int) -> int:
        """Row index of ``frame_id``; a frame without a pose is an error, never a neighbour's pose."""
        row = int(np.searchsorted(self.frame_ids, frame_id))
        if row >= len(self.frame_ids) or self.frame_ids[row] != frame_id:
            raise KeyError(f"frame {frame_id:010d} has no pose in {self.path}")
        return row


def read_poses(path: Path | str) -> SequencePoses:
    path = Path(path)
    require_file(path, "vehicle poses, rows 'frame_id r11 r12 r13 t1 ... r33 t3'", PACKAGE_POSES)
    ids, mats = [], []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 13:
            raise MalformedFileError(path, lineno, f"expected 13 fields (a frame id and 12 numbers), found "
                                     f"{len(parts)} (a frame id and {len(parts) - 1} numbers)")
        try:
            frame = int(parts[0])
            values = np.array([float(x) for x in parts[1:]], dtype=np.float64)
        except ValueError as e:
            raise MalformedFileError(path, lineno, str(e)) from None
        if not np.isfinite(values).all():
            raise MalformedFileError(path, lineno, "pose contains NaN or Inf")
        if ids and frame <= ids[-1]:
            raise MalformedFileError(path, lineno, f"frame id {frame} does not increase (previous {ids[-1]})")
        m = np.eye(4)
        m[:3, :] = values.reshape(3, 4)
        ids.append(frame)
        mats.append(m)
    if not ids:
        raise MalformedFileError(path, None, "no poses in file")
    return SequencePoses(path, np.asarray(ids, dtype=np.int64), np.stack(mats))


def write_poses(path: Path | str, frame_ids, matrices) -> None:
    """Write rows ``frame_id`` + 12 numbers (the first three rows of each 4x4 matrix)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        f"{int(f)} " + " ".join(f"{x:.12e}" for x in np.asarray(m)[:3, :].reshape(-1))
        for f, m in zip(frame_ids, matrices)
    ]
    path.write_text("\n".join(rows) + "\n")
