"""Reading a synthetic tree back through the project's KITTI-360 readers, and reprojecting surface points."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from bts.geometry import (
    MeiFisheyeCamera,
    PinholeCamera,
    normalized_to_pixels,
    pixel_grid,
    pixels_to_normalized,
    transform_directions,
    transform_points,
)
from datasets.kitti_360.calibration import read_calibration
from datasets.kitti_360.fisheye import fisheye_camera
from datasets.kitti_360.layout import read_image
from datasets.kitti_360.poses import read_poses
from datasets.synthetic import SyntheticScene, load_scene
from datasets.synthetic.render import FISHEYE_MAX_ANGLE_DEG

SEQUENCE = "2013_05_28_drive_0000_sync"


@dataclass
class Tree:
    root: Path
    sequence: str

    def __post_init__(self):
        self.calib = read_calibration(self.root / "calibration")
        self.poses = read_poses(self.root / "data_poses" / self.sequence / "poses.txt")
        self.scene: SyntheticScene = load_scene(self.root, self.sequence)

    def cam_to_world(self, camera: str, frame: int) -> Tensor:
        pose = self.poses.pose_to_world[self.poses.row_of(frame)]
        return torch.from_numpy(pose @ self.calib.camera_to_pose(camera))

    def image(self, camera: str, frame: int) -> Tensor:
        folder = "data_rect" if camera in ("image_00", "image_01") else "data_rgb"
        return read_image(self.root / "data_2d_raw" / self.sequence / camera / folder / f"{frame:010d}.png", camera)

    def camera(self, camera: str) -> tuple[PinholeCamera | MeiFisheyeCamera, int, int]:
        if camera in ("image_00", "image_01"):
            w, h = self.calib.rect_size[camera]
            return PinholeCamera.from_pixels(torch.from_numpy(self.calib.p_rect[camera][:, :3]), w, h), w, h
        f = self.calib.fisheye[camera]
        return fisheye_camera(f), f.width, f.height


def surface_points(tree: Tree, camera: str, frame: int) -> tuple[Tensor, Tensor, Tensor]:
    """World points ``[N, 3]`` seen by the pixels of a perspective frame (from its exact depth), their colours
    ``[N, 3]`` and the flat pixel indices ``[N]``."""
    model, w, h = tree.camera(camera)
    depth = tree.scene.depth(camera, frame).double().reshape(-1)
    hit = torch.isfinite(depth)
    rays = model.unproject(pixel_grid(h, w, dtype=torch.float64).reshape(-1, 2))
    points = transform_points(tree.cam_to_world(camera, frame), rays[hit] * depth[hit, None])
    colours = tree.image(camera, frame).permute(1, 2, 0).reshape(-1, 3)[hit].double()
    return points, colours, hit.nonzero().squeeze(1)


def _in_image_circle(model, dirs: Tensor, ok: Tensor) -> Tensor:
    if isinstance(model, MeiFisheyeCamera):
        return ok & (dirs[:, 2] >= math.cos(math.radians(FISHEYE_MAX_ANGLE_DEG)))
    return ok


def reprojection_errors(tree: Tree, points: Tensor, colours: Tensor, camera: str, frame: int,
                        pose_frame: int | None = None, max_distance: float = 25.0) -> Tensor:
    """Mean absolute RGB difference between ``colours`` and the bilinearly sampled colour of ``points`` in another
    frame, over the points that frame sees cleanly.

    Kept: points in front of the camera and inside its image, not occluded there (a ray cast towards the point
    reaches it), at most ``max_distance`` away (farther, the tiny images undersample the facade patterns), and
    whose four bilinear neighbours see the same surface with the same normal (so the interpolation does not mix
    two surfaces across a silhouette or an edge). ``pose_frame`` replaces the pose (negative control).
    """
    model, w, h = tree.camera(camera)
    cam_to_world = tree.cam_to_world(camera, frame if pose_frame is None else pose_frame)
    origin = cam_to_world[:3, 3]
    proj = model.project(transform_points(torch.linalg.inv(cam_to_world), points))
    dist = (points - origin).norm(dim=-1)
    at_point = tree.scene.cast(origin, points - origin)
    keep = proj.valid & (at_point.distance.double() >= dist * (1 - 1e-3) - 1e-3) & (dist <= max_distance)
    corner = torch.floor(normalized_to_pixels(proj.uv, w, h))
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        uv = pixels_to_normalized(corner + corner.new_tensor([dx, dy]), w, h)
        if isinstance(model, MeiFisheyeCamera):
            dirs, ok = model.unproject(uv)
        else:
            dirs, ok = model.unproject(uv), torch.ones_like(keep)
        keep &= _in_image_circle(model, dirs, ok)
        near = tree.scene.cast(origin, transform_directions(cam_to_world, dirs))
        keep &= (near.surface == at_point.surface) & ((near.normal * at_point.normal).sum(-1) > 0.99)
        keep &= (near.distance.double() - dist).abs() < 0.1 * dist
    image = tree.image(camera, frame).double()
    sampled = F.grid_sample(image[None], proj.uv[keep][None, None], align_corners=False)[0, :, 0].T
    return (sampled - colours[keep]).abs().mean(-1)


def summary(errors: Tensor) -> tuple[int, float, float]:
    e = errors.numpy()
    return len(e), float(np.median(e)), float(np.quantile(e, 0.95))
