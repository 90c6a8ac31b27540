"""Helpers of the depth / novel-view evaluation tests: tiny untrained checkpoints and a tiny KITTI Raw tree."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
DATE = "2011_09_26"
DRIVE = "2011_09_26_drive_0001_sync"
WIDTH, HEIGHT = 120, 40
FOCAL, CX, CY = 60.0, 59.5, 19.5
TX, TY, TZ = 3.0, 0.5, 0.003          # P_rect_02 = K [I | t]-like last column (third entry as in the real files)
RIGHT_TX = -30.0                       # P_rect_03's first row offset: the right camera sits 0.55 m to the right


def model_config(kind: str) -> dict:
    """The real model config of ``kind`` with a ResNet-18 encoder and no ImageNet weights."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(config_name=kind, overrides=["preset=debug"])
    return OmegaConf.to_container(cfg.model, resolve=True)


def save_untrained(path: Path, kind: str) -> Path:
    """An untrained checkpoint of ``kind`` (``bts``, ``mvbts`` or ``kdbts``), outside any run folder."""
    from bts.checkpoints.format import save_checkpoint
    from bts.models.factory import build_model

    cfg = model_config(kind)
    torch.manual_seed(0)
    model = build_model(cfg, pretrained=False)
    return save_checkpoint(path, model_kind=kind, config=cfg, model=model.state_dict())


def rotation_y(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


@dataclass
class RawTree:
    root: Path
    p_rect_02: np.ndarray
    r_rect_00: np.ndarray
    velo_to_cam: np.ndarray

    def velodyne_point(self, col: int, row: int, depth: float) -> np.ndarray:
        """A velodyne point whose ground truth lands on pixel (row, col) with ``depth``, by the protocol's rule
        ``pixel = round(P x / z) - 1``, inverted by hand: the rectified point is ``(X, Y, depth - TZ)``."""
        z = depth - TZ
        x = ((col + 1) * depth - CX * z - TX) / FOCAL
        y = ((row + 1) * depth - CY * z - TY) / FOCAL
        unrect = self.r_rect_00.T @ np.array([x, y, z])
        return (np.linalg.inv(self.velo_to_cam) @ np.append(unrect, 1.0))[:3]


def numbers(values) -> str:
    return " ".join(f"{v:.12e}" for v in np.asarray(values, dtype=np.float64).ravel())


def write_kitti_raw_tree(root: Path, frames: dict[int, np.ndarray], split_lines: list[str] | None = None) -> RawTree:
    """A KITTI Raw tree with one date and one drive: calibration files in the official format (extra keys
    included), left and right PNGs and a velodyne scan ``[N, 3]`` per frame, and ``split.txt``."""
    date_dir = root / DATE
    drive_dir = date_dir / DRIVE
    p02 = np.array([[FOCAL, 0, CX, TX], [0, FOCAL, CY, TY], [0, 0, 1, TZ]])
    p03 = np.array([[FOCAL, 0, CX, RIGHT_TX], [0, FOCAL, CY, 0], [0, 0, 1, 0]])
    r_rect = rotation_y(1.0)
    velo = np.eye(4)
    velo[:3, :3] = [[0, -1, 0], [0, 0, -1], [1, 0, 0]]  # velodyne x forward, y left, z up -> camera
    velo[:3, 3] = [0.01, -0.08, 0.5]
    date_dir.mkdir(parents=True, exist_ok=True)
    (date_dir / "calib_cam_to_cam.txt").write_text("\n".join([
        "calib_time: 09-Jan-2012 13:57:47",
        "corner_dist: 9.950000e-02",
        f"S_00: {numbers([1392, 512])}",
        f"R_rect_00: {numbers(r_rect)}",
        f"P_rect_00: {numbers(np.array([[FOCAL, 0, CX, 0], [0, FOCAL, CY, 0], [0, 0, 1, 0]]))}",
        f"S_rect_02: {numbers([WIDTH, HEIGHT])}",
        f"R_rect_02: {numbers(np.eye(3))}",
        f"P_rect_02: {numbers(p02)}",
        f"S_rect_03: {numbers([WIDTH, HEIGHT])}",
        f"P_rect_03: {numbers(p03)}",
    ]) + "\n")
    (date_dir / "calib_velo_to_cam.txt").write_text(
        f"calib_time: 15-Mar-2012 11:37:16\nR: {numbers(velo[:3, :3])}\nT: {numbers(velo[:3, 3])}\n"
        "delta_f: 0.000000e+00 0.000000e+00\ndelta_c: 0.000000e+00 0.000000e+00\n")
    rng = np.random.default_rng(0)
    for frame, points in frames.items():
        for cam in ("image_02", "image_03"):
            folder = drive_dir / cam / "data"
            folder.mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{frame:010d}.png")
        velo_dir = drive_dir / "velodyne_points" / "data"
        velo_dir.mkdir(parents=True, exist_ok=True)
        scan = np.concatenate([points, np.ones((len(points), 1))], axis=1).astype(np.float32)
        scan.tofile(velo_dir / f"{frame:010d}.bin")
    lines = split_lines if split_lines is not None else [f"{DATE}/{DRIVE} {f:010d} l" for f in frames]
    (root / "split.txt").write_text("\n".join(lines) + "\n")
    return RawTree(root, p02, r_rect, velo)


# A tiny BTS configuration and the occupancy entry point as a subprocess, shared by the evaluation tests.
TINY_MODEL = {"kind": "bts", "encoder": {"depth": 18, "pretrained": False, "on_missing_weights": "error",
                                         "decoder_widths": [32, 32, 64, 128, 256], "feature_dim": 64},
              "field": {"hidden_dim": 16, "num_freqs": 6, "freq_factor": 1.5, "code_near": 3.0, "code_far": 80.0}}


def run_occupancy_entry(args, tmp_path):
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    env = {**os.environ, "BTS_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, "evaluation/occupancy.py", *args], cwd=Path(__file__).resolve().parents[2],
                          env=env, capture_output=True, text=True, timeout=300)
