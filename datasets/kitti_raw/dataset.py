"""KITTI Raw frames of a split with their velodyne depth ground truth, for the Eigen depth protocol.

The layout is that of the official archives::

    <root>/<date>/calib_cam_to_cam.txt, calib_velo_to_cam.txt
    <root>/<date>/<drive>/image_02/data/<frame:010d>.png      left colour camera (image_03: right)
    <root>/<date>/<drive>/velodyne_points/data/<frame:010d>.bin   float32 (x, y, z, reflectance)

An item follows the conventions of the KITTI-360 items: ``images`` ``[V, 3, H, W]`` in ``[-1, 1]`` at the working
size, normalised ``intrinsics``, ``cam_to_world`` relative to view 0, ``cameras`` (2 or 3) and ``frame_ids``. View 0
is the input camera; with ``stereo`` view 1 is its stereo partner. ``depth_gt`` ``[H0, W0]`` is the ground truth
at the image's own size (0 where none, no crop applied).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from bts.geometry import normalize_intrinsics
from datasets.kitti_360.dataset import resize
from datasets.kitti_raw.calibration import RawCalibration, read_raw_calibration
from datasets.kitti_raw.errors import MalformedFileError, drive_archive, require_dir, require_file
from datasets.kitti_raw.ground_truth import velodyne_depth_map
from datasets.kitti_raw.splits import RawSplitEntry, read_raw_split

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = ("png", "jpg")
PARTNER = {"image_02": "image_03", "image_03": "image_02"}


class KittiRawItem(TypedDict):
    images: Tensor  # [V, 3, H, W] in [-1, 1]
    intrinsics: Tensor  # [V, 3, 3] normalised
    cam_to_world: Tensor  # [V, 4, 4] relative to view 0
    cameras: Tensor  # [V] 2 or 3
    frame_ids: Tensor  # [V]
    depth_gt: Tensor  # [H0, W0] velodyne z-depth of view 0, 0 where none
    index: int


@dataclass
class KittiRawConfig:
    image_size: tuple[int, int] = (192, 640)  # (H, W) of the model's input
    image_ext: str = "png"  # png (the official archives) or jpg (Monodepth2's converted copies)
    stereo: bool = False  # also load the stereo partner as view 1


def read_velodyne(path: Path, drive: str) -> np.ndarray:
    """A scan as float32 ``[N, 4]`` (x, y, z, reflectance) in the velodyne frame."""
    require_file(path, "a velodyne scan (float32 x, y, z, reflectance)", drive_archive(drive))
    data = np.fromfile(path, dtype=np.float32)
    if data.size % 4:
        raise MalformedFileError(path, None, f"{data.size} float32 values is not a multiple of 4 (x, y, z, "
                                 "reflectance per point)")
    return data.reshape(-1, 4)


def read_image(path: Path, drive: str) -> Tensor:
    """An RGB image as float ``[3, H, W]`` in ``[0, 1]``."""
    require_file(path, f"a {path.parent.parent.name} image", drive_archive(drive))
    with Image.open(path) as img:
        array = np.asarray(img.convert("RGB"))
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)


class KittiRawDataset(Dataset):
    def __init__(self, root: Path | str, split_file: Path | str, config: KittiRawConfig | None = None):
        self.config = config or KittiRawConfig()
        if self.config.image_ext not in IMAGE_EXTENSIONS:
            raise ValueError(f"image_ext must be one of {IMAGE_EXTENSIONS}, got {self.config.image_ext!r}")
        self.root = require_dir(Path(root), "the KITTI Raw root folder (with <date>/<drive>/ folders)")
        self.split_file = Path(split_file)
        self.entries: list[RawSplitEntry] = read_raw_split(self.split_file)
        self.calibrations: dict[str, RawCalibration] = {}
        checked: set[tuple[str, str]] = set()
        for e in self.entries:
            if e.date not in self.calibrations:
                self.calibrations[e.date] = read_raw_calibration(self.root / e.date)
            if (e.date, e.drive) not in checked:
                require_dir(self.root / e.date / e.drive, f"the drive folder named on line {e.line} of "
                            f"{self.split_file}", drive_archive(e.drive))
                checked.add((e.date, e.drive))
        log.info("KITTI Raw %s: %d frames from %d drives under %s", self.split_file.name, len(self.entries),
                 len(checked), self.root)

    def __len__(self) -> int:
        return len(self.entries)

    def image_file(self, entry: RawSplitEntry, camera: str) -> Path:
        return (self.root / entry.date / entry.drive / camera / "data" /
                f"{entry.frame_id:010d}.{self.config.image_ext}")

    def velodyne_file(self, entry: RawSplitEntry) -> Path:
        return self.root / entry.date / entry.drive / "velodyne_points" / "data" / f"{entry.frame_id:010d}.bin"

    def _load_view(self, entry: RawSplitEntry, camera: str) -> tuple[Tensor, Tensor]:
        calib = self.calibrations[entry.date]
        path = self.image_file(entry, camera)
        image = read_image(path, entry.drive)
        w, h = calib.rect_size[camera]
        if (image.shape[2], image.shape[1]) != (w, h):
            raise MalformedFileError(path, None, f"image is {image.shape[2]}x{image.shape[1]}, but S_rect_"
                                     f"{camera[-2:]} in {self.root / entry.date / 'calib_cam_to_cam.txt'} says {w}x{h}")
        k = normalize_intrinsics(torch.from_numpy(calib.intrinsics(camera)), w, h).float()
        return resize(image, *self.config.image_size) * 2.0 - 1.0, k

    def __getitem__(self, index: int) -> KittiRawItem:
        entry = self.entries[index]
        calib = self.calibrations[entry.date]
        cameras = [entry.camera] + ([PARTNER[entry.camera]] if self.config.stereo else [])
        views = [self._load_view(entry, cam) for cam in cameras]
        poses = [torch.from_numpy(calib.cam_to_cam(cam, entry.camera)).float() for cam in cameras]
        w, h = calib.rect_size[entry.camera]
        scan = read_velodyne(self.velodyne_file(entry), entry.drive)
        gt = velodyne_depth_map(scan, calib.velo_to_image(entry.camera), h, w)
        return {
            "images": torch.stack([v[0] for v in views]),
            "intrinsics": torch.stack([v[1] for v in views]),
            "cam_to_world": torch.stack(poses),
            "cameras": torch.tensor([int(c[-1]) for c in cameras]),
            "frame_ids": torch.tensor([entry.frame_id] * len(cameras)),
            "depth_gt": torch.from_numpy(gt),
            "index": index,
        }
