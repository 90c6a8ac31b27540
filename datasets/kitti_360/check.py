"""Check a KITTI-360 tree before training on it: are calibration, poses and images consistent?

    python -m datasets.kitti_360.check --root PATH [--sequences S ...] [--frames 6] [--fisheye-offset 10] [--json F]

Training runs on a tree whose fisheye calibration is off, whose poses belong to other frames, or whose fisheye images
are not the raw MEI images, without a word: the photometric loss just gets worse. This check finds such trees the
way the synthetic city's multi-view consistency test does, with the lidar as the witness: the points of a velodyne
scan at frame t are taken to the world through the calibration chain and the pose of t, projected into ``image_00``
at t and into a second camera at its own frame, and where both see a point (not hidden behind another point there)
the two colours are compared. Pairs: the stereo partner ``image_01`` at t, ``image_00`` at t + 1 (the poses), and the
two fisheyes ``image_02`` / ``image_03`` at t + ``--fisheye-offset`` (their MEI calibration and mounting).

For each pair the report gives the median colour difference of the matched points and the same for the points paired
at random (what a wrong geometry gives), and their ratio as a score, ``1 - matched / random``: close to 1 for a
consistent pair, near 0 when the projection lands on unrelated pixels. A pair fails below ``--min-score``; the
command exits with status 1 when any pair fails. On the built-in synthetic city the perspective pairs score
0.98-0.99 and the fisheye pairs 0.93-0.96; a fisheye yawed by 10 degrees scores 0.40-0.43, fisheye images one frame
off their poses (a renumbered folder) 0.62-0.74, and virtual-pinhole crops stored as fisheye images 0.16-0.37
(tests/kitti_360/test_check.py). The threshold ``--min-score 0.8`` is set on the synthetic city; real images (other
exposures per camera, motion blur, moving objects, the lidar sweeping while the cameras expose) score lower, so on
KITTI-360 read the scores against each other as well: a broken camera stands out from the others. What no multi-view
check sees: all poses shifted by one frame together (scans and cameras), which keeps every relative pose but for the
change of speed between frames; training, which uses only relative poses, is nearly unaffected too.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from bts.geometry import MeiFisheyeCamera, PinholeCamera, normalized_to_pixels, transform_points
from datasets.kitti_360.calibration import Calibration, read_calibration
from datasets.kitti_360.fisheye import fisheye_camera
from datasets.kitti_360.layout import Kitti360Layout, read_image, read_velodyne
from datasets.kitti_360.poses import SequencePoses, read_poses

MIN_SCORE = 0.8
MIN_POINTS = 200  # fewer matched points than this: the pair is not judged
NEAR, FAR = 1.0, 40.0  # metres from the camera: closer points smear, farther ones are undersampled
CELL = 1.0 / 64  # z-buffer cell, as a fraction of the image width: lidar points are sparse, surfaces are not
DEPTH_TOLERANCE = 0.05  # relative: a point more than 5 % behind the nearest point of its cell is hidden


@dataclass(frozen=True)
class PairReport:
    sequence: str
    pair: str
    camera: str
    frame_offset: int
    frames: int
    points: int
    median_difference: float | None
    random_difference: float | None
    score: float | None
    status: str  # ok | FAIL | too few points | missing data

    def line(self) -> str:
        if self.score is None:
            return f"{self.sequence}  {self.pair:<24} {self.status} ({self.points} points in {self.frames} frames)"
        return (f"{self.sequence}  {self.pair:<24} score {self.score:5.2f}  colour difference "
                f"{self.median_difference:.3f} (random pairs {self.random_difference:.3f}), {self.points} points in "
                f"{self.frames} frames  {self.status}")


PAIRS = (("stereo image_01, t", "image_01", 0), ("next frame image_00, t+1", "image_00", 1),
         ("left fisheye image_02", "image_02", None), ("right fisheye image_03", "image_03", None))


class _Camera:
    """One camera of the tree: its model, image size and camera-to-pose transform."""

    def __init__(self, calib: Calibration, camera: str):
        if camera in calib.fisheye:
            f = calib.fisheye[camera]
            self.model: PinholeCamera | MeiFisheyeCamera = fisheye_camera(f).to(torch.float64)
            self.width, self.height = f.width, f.height
        else:
            self.width, self.height = calib.rect_size[camera]
            self.model = PinholeCamera.from_pixels(torch.from_numpy(calib.p_rect[camera][:, :3]), self.width,
                                                   self.height)
        self.to_pose = calib.camera_to_pose(camera)


def _visible(uv: Tensor, depth: Tensor, valid: Tensor, width: int, height: int) -> Tensor:
    """Points in front, inside the image and not hidden behind a nearer point of their z-buffer cell."""
    keep = valid & (depth > NEAR) & (depth < FAR)
    pixels = normalized_to_pixels(uv, width, height)
    cell = max(1.0, CELL * width)
    cols = int(np.ceil(width / cell))
    index = (pixels[:, 1].div(cell).floor().clamp(0, height) * cols + pixels[:, 0].div(cell).floor().clamp(0, cols - 1)
             ).long()
    nearest = torch.full((int(index.max()) + 1 if len(index) else 1,), float("inf"), dtype=depth.dtype)
    nearest.scatter_reduce_(0, index[keep], depth[keep], reduce="amin")
    return keep & (depth <= nearest[index] * (1 + DEPTH_TOLERANCE))


def _colours(image: Tensor, uv: Tensor) -> Tensor:
    """Bilinear colours ``[N, 3]`` at normalised coordinates ``[N, 2]`` of an image ``[3, H, W]``."""
    grid = uv.to(image.dtype)[None, None]
    return F.grid_sample(image[None], grid, mode="bilinear", padding_mode="border", align_corners=False)[0, :, 0].T


def _project(camera: _Camera, pose_to_world: np.ndarray, points_world: Tensor):
    world_to_cam = torch.from_numpy(np.linalg.inv(pose_to_world @ camera.to_pose))
    return camera.model.project(transform_points(world_to_cam, points_world))


def _frames(poses: SequencePoses, layout: Kitti360Layout, sequence: str, count: int, span: int) -> list[int]:
    """Up to ``count`` rows, evenly spread, whose scan exists and whose frame + ``span`` has a pose."""
    rows = [r for r in range(len(poses) - span) if poses.frame_ids[r + span] == poses.frame_ids[r] + span
            and layout.velodyne_file(sequence, int(poses.frame_ids[r])).is_file()]
    if len(rows) <= count:
        return rows
    return [rows[i] for i in np.linspace(0, len(rows) - 1, count).round().astype(int)]


def check_sequence(layout: Kitti360Layout, calib: Calibration, sequence: str, frames: int = 6,
                   fisheye_offset: int = 10, min_score: float = MIN_SCORE, seed: int = 0) -> list[PairReport]:
    """The report of every camera pair of one sequence (see the module docstring)."""
    poses = read_poses(layout.poses_file(sequence))
    cams = {name: _Camera(calib, name) for name in ("image_00", "image_01", "image_02", "image_03")}
    velo_to_pose = calib.velo_to_pose()
    reports = []
    generator = torch.Generator().manual_seed(seed)
    sources: dict[int, tuple] = {}  # row -> the scan's world points, their image_00 projection, visibility, image

    def source_view(row: int):
        """What every pair of a scan shares: read and projected once per row."""
        if row not in sources:
            frame = int(poses.frame_ids[row])
            scan = read_velodyne(layout.velodyne_file(sequence, frame))[:, :3].astype(np.float64)
            points = transform_points(torch.from_numpy(poses.pose_to_world[row] @ velo_to_pose),
                                      torch.from_numpy(scan))
            cam = cams["image_00"]
            proj = _project(cam, poses.pose_to_world[row], points)
            seen = _visible(proj.uv, proj.depth, proj.valid, cam.width, cam.height)
            image = read_image(layout.image_file(sequence, "image_00", frame), "image_00").double()
            sources[row] = (points, proj.uv, seen, image)
        return sources[row]

    for pair, camera, offset in PAIRS:
        offset = fisheye_offset if offset is None else offset
        matched, shuffled, used = [], [], 0
        for row in _frames(poses, layout, sequence, frames, offset):
            frame = int(poses.frame_ids[row])
            target_file = layout.image_file(sequence, camera, frame + offset)
            if not (target_file.is_file() and layout.image_file(sequence, "image_00", frame).is_file()):
                continue
            points, source_uv, source_seen, source_image = source_view(row)
            target = _project(cams[camera], poses.pose_to_world[row + offset], points)
            both = source_seen & _visible(target.uv, target.depth, target.valid, cams[camera].width,
                                          cams[camera].height)
            if int(both.sum()) < 2:
                continue
            a = _colours(source_image, source_uv[both])
            b = _colours(read_image(target_file, camera).double(), target.uv[both])
            matched.append((a - b).abs().mean(-1))
            shuffled.append((a - b[torch.randperm(len(b), generator=generator)]).abs().mean(-1))
            used += 1
        n = int(sum(len(m) for m in matched))
        if used == 0:
            reports.append(PairReport(sequence, pair, camera, offset, 0, 0, None, None, None, "missing data"))
            continue
        if n < MIN_POINTS:
            reports.append(PairReport(sequence, pair, camera, offset, used, n, None, None, None, "too few points"))
            continue
        med, rand = float(torch.cat(matched).median()), float(torch.cat(shuffled).median())
        score = 1.0 - med / rand if rand > 0 else 0.0
        reports.append(PairReport(sequence, pair, camera, offset, used, n, med, rand, score,
                                  "ok" if score >= min_score else "FAIL"))
    return reports


def check_tree(root: Path | str, sequences: list[str] | None = None, frames: int = 6, fisheye_offset: int = 10,
               min_score: float = MIN_SCORE) -> list[PairReport]:
    """The reports of every sequence with poses under ``root`` (or of ``sequences``)."""
    layout = Kitti360Layout(Path(root))
    calib = read_calibration(layout.calibration_dir)
    if sequences is None:
        poses_dir = Path(root) / "data_poses"
        sequences = sorted(p.parent.name for p in poses_dir.glob("*/poses.txt"))
        if not sequences:
            raise FileNotFoundError(f"{poses_dir} holds no <sequence>/poses.txt: nothing to check")
    return [r for s in sequences for r in check_sequence(layout, calib, s, frames, fisheye_offset, min_score)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m datasets.kitti_360.check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=Path, required=True, help="the KITTI-360 root (calibration/, data_poses/, ...)")
    p.add_argument("--sequences", nargs="+", default=None, help="default: every sequence with poses")
    p.add_argument("--frames", type=int, default=6, help="scans per sequence and pair (spread over the sequence)")
    p.add_argument("--fisheye-offset", type=int, default=10, help="frames between image_00 and the fisheye views")
    p.add_argument("--min-score", type=float, default=MIN_SCORE, help="a pair below this score fails")
    p.add_argument("--json", type=Path, default=None, help="also write the reports to this JSON file")
    a = p.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    try:
        reports = check_tree(a.root, a.sequences, a.frames, a.fisheye_offset, a.min_score)
    except (OSError, ValueError) as e:  # the data layer's errors name the file and what was expected
        print(f"error: {e}", file=sys.stderr)
        return 1
    for r in reports:
        print(r.line())
    if a.json:
        a.json.write_text(json.dumps([asdict(r) for r in reports], indent=1))
    failed = [r for r in reports if r.status == "FAIL"]
    if failed:
        print(f"{len(failed)} of {len(reports)} camera pairs are inconsistent: check the calibration of "
              f"{sorted({r.camera for r in failed})}, the poses and that the images are the raw KITTI-360 ones",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
