"""Fisheye frames: resampling to a virtual pinhole (the original behaviour, docs/method.md §7.3) or native use.

The virtual pinhole has the perspective camera's normalised intrinsics and is rotated relative to the fisheye by
``fisheye_rotation = (rot_x, rot_y)`` degrees; the default ``(0, -15)`` gives ``R_x(-15°)``, a view pitched 15°
down from the side-looking fisheye's axis. For ``image_03`` the y angle is mirrored.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from bts.geometry import MeiFisheyeCamera, PinholeCamera, pixel_grid, rotation_x, rotation_y
from datasets.kitti_360.calibration import FisheyeCalibration


def fisheye_camera(calib: FisheyeCalibration, apply_tangential: bool = False) -> MeiFisheyeCamera:
    return MeiFisheyeCamera.from_pixels(
        xi=calib.xi, k1=calib.k1, k2=calib.k2, p1=calib.p1, p2=calib.p2, gamma1=calib.gamma1,
        gamma2=calib.gamma2, u0=calib.u0, v0=calib.v0, width=calib.width, height=calib.height,
        apply_tangential=apply_tangential,
    )


def virtual_rotation(camera: str, fisheye_rotation: tuple[float, float]) -> Tensor:
    """Rotation from the virtual pinhole to the fisheye frame (float64 ``[3, 3]``)."""
    rot_y, rot_x = fisheye_rotation[0], fisheye_rotation[1]
    if camera == "image_03":
        rot_y = -rot_y
    # Extrinsic x-then-y Euler rotation, as the original's ``Rotation.from_euler("xy", ...)``.
    return rotation_y(rot_y) @ rotation_x(rot_x)


def virtual_pinhole_grid(
    fisheye: MeiFisheyeCamera, intrinsics_normalized: Tensor, rotation: Tensor, height: int, width: int
) -> Tensor:
    """``grid_sample`` grid ``[H, W, 2]`` that reads a virtual pinhole image out of a fisheye image."""
    uv = pixel_grid(height, width, dtype=torch.float64).reshape(-1, 2)
    dirs = PinholeCamera(intrinsics_normalized.double()).unproject(uv)
    dirs = dirs @ rotation.double().T
    proj = fisheye.to(torch.float64).project(dirs)
    grid = torch.where(proj.valid[:, None], proj.uv, torch.full_like(proj.uv, 2.0))  # out of image -> black
    return grid.reshape(height, width, 2).float()


def resample(image: Tensor, grid: Tensor) -> Tensor:
    """Bilinearly sample ``image [3, H, W]`` at ``grid [h, w, 2]`` (zero outside)."""
    return F.grid_sample(image[None], grid[None], mode="bilinear", padding_mode="zeros", align_corners=False)[0]
