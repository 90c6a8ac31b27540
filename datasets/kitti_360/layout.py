"""Paths of the KITTI-360 tree (docs/method.md §7.1), with the download package of every file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from datasets.kitti_360.errors import (
    PACKAGE_FISHEYE,
    PACKAGE_PERSPECTIVE,
    PACKAGE_VELODYNE,
    MalformedFileError,
    require_dir,
    require_file,
)


def resized_folder(camera: str, height: int, width: int, fisheye_rotation: tuple[float, float]) -> str:
    """Name of a preprocessed image folder: ``data_192x640`` or, for the fisheyes, ``data_192x640_0x-15``."""
    name = f"data_{height}x{width}"
    if camera in ("image_02", "image_03"):
        name += f"_{fisheye_rotation[0]:g}x{fisheye_rotation[1]:g}"
    return name


@dataclass(frozen=True)
class Kitti360Layout:
    root: Path

    def __post_init__(self):
        require_dir(Path(self.root), "the KITTI-360 root folder (with calibration/, data_poses/, data_2d_raw/)")

    @property
    def calibration_dir(self) -> Path:
        return Path(self.root) / "calibration"

    def poses_file(self, sequence: str) -> Path:
        return Path(self.root) / "data_poses" / sequence / "poses.txt"

    def image_dir(self, sequence: str, camera: str, folder: str | None = None) -> Path:
        default = "data_rect" if camera in ("image_00", "image_01") else "data_rgb"
        return Path(self.root) / "data_2d_raw" / sequence / camera / (folder or default)

    def image_file(self, sequence: str, camera: str, frame_id: int, folder: str | None = None) -> Path:
        return self.image_dir(sequence, camera, folder) / f"{frame_id:010d}.png"

    def velodyne_file(self, sequence: str, frame_id: int) -> Path:
        return Path(self.root) / "data_3d_raw" / sequence / "velodyne_points" / "data" / f"{frame_id:010d}.bin"

    def check_sequence(self, sequence: str, cameras: tuple[str, ...]) -> None:
        """Fail early, naming the folder, when an image folder of ``sequence`` is missing."""
        for cam in cameras:
            require_dir(self.image_dir(sequence, cam), f"the {cam} images of {sequence}", image_package(cam))


def image_package(camera: str) -> str:
    """The KITTI-360 download package that holds ``camera``'s images."""
    return PACKAGE_PERSPECTIVE if camera in ("image_00", "image_01") else PACKAGE_FISHEYE


def read_image(path: Path, camera: str) -> torch.Tensor:
    """An RGB image as float ``[3, H, W]`` in ``[0, 1]``."""
    require_file(path, f"a {camera} PNG image", image_package(camera))
    with Image.open(path) as img:
        array = np.asarray(img.convert("RGB"))
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)


def read_velodyne(path: Path) -> np.ndarray:
    """A velodyne scan as float32 ``[N, 4]`` (x, y, z, intensity) in the velodyne frame."""
    require_file(path, "a velodyne scan (float32 x, y, z, intensity)", PACKAGE_VELODYNE)
    data = np.fromfile(path, dtype=np.float32)
    if data.size % 4:
        raise MalformedFileError(path, None, f"size {data.size} float32 values is not a multiple of 4")
    return data.reshape(-1, 4)
