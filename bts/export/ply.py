"""PLY files (Stanford polygon format) for point clouds and triangle meshes, binary little-endian or ASCII.

Written by hand (the format is a text header plus a table) so that no mesh library is needed; any viewer
(MeshLab, CloudCompare, Open3D, Blender) reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


def _header(fmt: str, num_vertices: int, colours: bool, num_faces: int | None) -> bytes:
    lines = ["ply", f"format {fmt} 1.0", "comment written by kdbts (bts.export)", f"element vertex {num_vertices}",
             "property float x", "property float y", "property float z"]
    if colours:
        lines += ["property uchar red", "property uchar green", "property uchar blue"]
    if num_faces is not None:
        lines += [f"element face {num_faces}", "property list uchar int vertex_indices"]
    return ("\n".join(lines + ["end_header"]) + "\n").encode("ascii")


def _vertex_table(points: np.ndarray, colours: np.ndarray | None) -> np.ndarray:
    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must be [N, 3], got shape {points.shape}")
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if colours is not None:
        colours = np.asarray(colours)
        if colours.shape != points.shape:
            raise ValueError(f"colours must be [N, 3] like the points {points.shape}, got {colours.shape}")
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    table = np.empty(len(points), dtype=fields)
    table["x"], table["y"], table["z"] = points.T
    if colours is not None:
        table["red"], table["green"], table["blue"] = np.clip(colours, 0, 255).astype(np.uint8).T
    return table


def write_ply(path: Path | str, points: np.ndarray, colours: np.ndarray | None = None,
              faces: np.ndarray | None = None, binary: bool = True) -> Path:
    """Write vertices ``[N, 3]`` (optionally uint8 colours ``[N, 3]``) and optionally triangles ``[M, 3]``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    vertices = _vertex_table(points, colours)
    if faces is not None:
        faces = np.asarray(faces, dtype=np.int64)
        if faces.ndim != 2 or faces.shape[1] != 3:
            raise ValueError(f"faces must be triangles [M, 3], got shape {faces.shape}")
        if len(faces) and (faces.min() < 0 or faces.max() >= len(vertices)):
            raise ValueError(f"face indices must lie in [0, {len(vertices)}), got [{faces.min()}, {faces.max()}]")
    fmt = "binary_little_endian" if binary else "ascii"
    with path.open("wb") as f:
        f.write(_header(fmt, len(vertices), colours is not None, None if faces is None else len(faces)))
        if binary:
            f.write(vertices.tobytes())
            if faces is not None:
                table = np.empty(len(faces), dtype=[("n", "u1"), ("v", "<i4", (3,))])
                table["n"], table["v"] = 3, faces
                f.write(table.tobytes())
        else:
            for row in vertices.tolist():
                f.write((" ".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in row) + "\n").encode())
            for face in [] if faces is None else faces.tolist():
                f.write(f"3 {face[0]} {face[1]} {face[2]}\n".encode())
    return path


@dataclass(frozen=True)
class PlyData:
    """What :func:`read_ply` returns: the format line, vertices and, when present, colours and triangles."""

    format: str
    points: np.ndarray
    colours: np.ndarray | None
    faces: np.ndarray | None


def read_ply(path: Path | str) -> PlyData:
    """Read back a PLY written by :func:`write_ply` (float xyz, optional uchar rgb, optional triangles)."""
    path = Path(path)
    data = path.read_bytes()
    end = data.find(b"end_header\n")
    if not data.startswith(b"ply\n") or end < 0:
        raise ValueError(f"{path} is not a PLY file: expected a 'ply' header ending in 'end_header'")
    header = data[:end].decode("ascii").splitlines()
    fmt = next(line.split()[1] for line in header if line.startswith("format"))
    counts = {line.split()[1]: int(line.split()[2]) for line in header if line.startswith("element")}
    has_colour = any(line.endswith(" red") for line in header)
    n, m = counts.get("vertex", 0), counts.get("face")
    body = data[end + len(b"end_header\n"):]
    if fmt == "ascii":
        rows = body.decode("ascii").splitlines()
        table = np.array([r.split() for r in rows[:n]], dtype=np.float64).reshape(n, -1)
        faces = None if m is None else np.array([r.split()[1:4] for r in rows[n:n + m]], dtype=np.int64).reshape(m, 3)
        points, colours = table[:, :3].astype(np.float32), table[:, 3:6].astype(np.uint8) if has_colour else None
        return PlyData(fmt, points, colours, faces)
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    fields += [("r", "u1"), ("g", "u1"), ("b", "u1")] if has_colour else []
    vertices = np.frombuffer(body, dtype=fields, count=n)
    faces = None
    if m is not None:
        table = np.frombuffer(body, dtype=[("n", "u1"), ("v", "<i4", (3,))], count=m, offset=vertices.nbytes)
        faces = table["v"].astype(np.int64)
    points = np.stack([vertices["x"], vertices["y"], vertices["z"]], axis=1)
    colours = np.stack([vertices["r"], vertices["g"], vertices["b"]], axis=1) if has_colour else None
    return PlyData(fmt, points, colours, faces)
