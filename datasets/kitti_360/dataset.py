"""The KITTI-360 dataset: frames of a split, in the layout of docs/method.md §7.1.

An item is a dict (see :class:`Kitti360Item`). Poses are camera-to-world and re-expressed relative to view 0,
computed in float64 (KITTI-360 world coordinates are large) and returned as float32, so the input camera is the
origin; ``world_from_view0`` keeps the absolute pose. Intrinsics are normalised (``[-1, 1]``, pixel centres,
``align_corners=False``), so they hold at any working resolution.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from bts.geometry import MeiFisheyeCamera, PixelConvention, normalize_intrinsics, relative_to
from datasets.kitti_360.augment import ColorJitterParams
from datasets.kitti_360.calibration import PERSPECTIVE_CAMERAS, Calibration, read_calibration
from datasets.kitti_360.errors import PACKAGE_VELODYNE, MalformedFileError, MissingFileError
from datasets.kitti_360.fisheye import fisheye_camera, resample, virtual_pinhole_grid, virtual_rotation
from datasets.kitti_360.frames import FrameSelection, View, select_views
from datasets.kitti_360.layout import Kitti360Layout, image_package, read_image, read_velodyne, resized_folder
from datasets.kitti_360.lidar import lidar_depth_map
from datasets.kitti_360.poses import SequencePoses, read_poses
from datasets.kitti_360.splits import read_split

log = logging.getLogger(__name__)

FISHEYE_MODES = ("pinhole", "native")


class Kitti360Item(TypedDict, total=False):
    """One datapoint. ``V`` pinhole views (perspective, plus resampled fisheyes in ``pinhole`` mode) and, in
    ``native`` mode, ``F`` native fisheye views."""

    images: Tensor  # [V, 3, H, W] in [-1, 1]
    intrinsics: Tensor  # [V, 3, 3] normalised
    cam_to_world: Tensor  # [V, 4, 4] relative to view 0
    cameras: Tensor  # [V] camera index 0..3
    frame_ids: Tensor  # [V] KITTI-360 frame ids
    fisheye_images: Tensor  # [F, 3, Hf, Wf] in [-1, 1] (native mode)
    fisheye_params: Tensor  # [F, 9] normalised MEI parameters, see MeiFisheyeCamera.pack
    fisheye_cam_to_world: Tensor  # [F, 4, 4] relative to view 0
    fisheye_cameras: Tensor  # [F]
    fisheye_frame_ids: Tensor  # [F]
    world_from_view0: Tensor  # [4, 4] float64, absolute camera-to-world of view 0
    lidar_depth: Tensor  # [1, H, W] z-depth of view 0 from the velodyne scan at t, 0 where none
    index: int


@dataclass
class Kitti360Config:
    """Options of :class:`Kitti360Dataset` (the ``data`` config group carries the same names)."""

    image_size: tuple[int, int] = (192, 640)  # (H, W) of the pinhole views
    frames: FrameSelection = field(default_factory=FrameSelection)
    fisheye_mode: str = "pinhole"
    fisheye_rotation: tuple[float, float] = (0.0, -15.0)
    fisheye_size: tuple[int, int] | None = None  # (H, W) of native fisheye views; None keeps the file's size
    color_jitter: bool = False
    draw_fisheye_offset: bool = False  # training: each datapoint draws its fisheye offset from frames.fisheye_offset
    lidar_depth: bool = False
    use_preprocessed: bool = True  # read data_HxW folders when they exist
    apply_fisheye_tangential: bool = False
    pixel_convention: str = "center"  # center (ours); corner: the original's K normalisation, for imported models
    check_files: bool = True  # list every image (and scan) the split reads when the dataset is built


class Kitti360Dataset(Dataset):
    def __init__(self, root: Path | str, split_file: Path | str, config: Kitti360Config | None = None):
        self.config = config or Kitti360Config()
        if self.config.fisheye_mode not in FISHEYE_MODES:
            raise ValueError(f"fisheye_mode must be one of {FISHEYE_MODES}, got {self.config.fisheye_mode!r}")
        conventions = [c.value for c in PixelConvention]
        if self.config.pixel_convention not in conventions:
            raise ValueError(f"pixel_convention must be one of {conventions}, got {self.config.pixel_convention!r}")
        self.layout = Kitti360Layout(Path(root))
        self.calibration: Calibration = read_calibration(self.layout.calibration_dir)
        self.split_file = Path(split_file)
        entries = read_split(self.split_file)
        self.poses: dict[str, SequencePoses] = {}
        self.datapoints: list[tuple[str, int, str]] = []
        for e in entries:
            if e.sequence not in self.poses:
                self.poses[e.sequence] = read_poses(self.layout.poses_file(e.sequence))
                self.layout.check_sequence(e.sequence, self._cameras_used())
            try:
                row = self.poses[e.sequence].row_of(e.frame_id)
            except KeyError as err:
                raise MalformedFileError(self.split_file, e.line, str(err.args[0])) from None
            self.datapoints.append((e.sequence, row, e.side))
        self._setup_cameras()
        if self.config.check_files:
            self.check_files()
        log.info("KITTI-360 %s: %d datapoints from %d sequences under %s", self.split_file.name,
                 len(self.datapoints), len(self.poses), root)

    def missing_files(self) -> list[tuple[Path, tuple[str, str]]]:
        """Every file some datapoint of the split would read and that is not there: the images of every view (at
        every fisheye offset the loader may draw; a preprocessed ``data_HxW`` copy counts), and the velodyne scan of
        view 0 with ``lidar_depth``. Each folder is listed once, so a whole KITTI-360 split takes seconds."""
        listings: dict[Path, set[str]] = {}

        def present(path: Path) -> bool:
            if path.parent not in listings:
                listings[path.parent] = set(os.listdir(path.parent)) if path.parent.is_dir() else set()
            return path.name in listings[path.parent]

        cfg = self.config
        native = cfg.fisheye_mode == "native"
        missing: dict[Path, tuple[str, str]] = {}  # path -> (what it is, the download package)
        for sequence, row, side in self.datapoints:
            poses = self.poses[sequence]
            for offset in self._fisheye_offsets():
                for view in select_views(cfg.frames, row, side, len(poses), offset):
                    frame_id = int(poses.frame_ids[view.row])
                    raw = self.layout.image_file(sequence, view.camera, frame_id)
                    resized = None if native and view.camera in self.fisheyes else \
                        self._preprocessed_file(sequence, view.camera, frame_id)
                    if not present(raw) and not (resized is not None and present(resized)):
                        missing[raw] = (f"a {view.camera} PNG image", image_package(view.camera))
            if cfg.lidar_depth:
                scan = self.layout.velodyne_file(sequence, int(poses.frame_ids[row]))
                if not present(scan):
                    missing[scan] = ("a velodyne scan (float32 x, y, z, intensity)", PACKAGE_VELODYNE)
        return list(missing.items())

    def check_files(self) -> None:
        """Raise :class:`MissingFileError` naming the first missing file (and how many are missing) at the start,
        instead of at the datapoint or the first validation thousands of steps in."""
        missing = self.missing_files()
        if missing:
            path, (what, package) = missing[0]
            more = f"; {len(missing) - 1} more files of this split are missing too" if len(missing) > 1 else ""
            raise MissingFileError(path, f"{what}, read by datapoints of {self.split_file}{more} (data.check_files="
                                   "false skips this check)", package)

    def _cameras_used(self) -> tuple[str, ...]:
        cams = ("image_00", "image_01")
        return cams + (("image_02", "image_03") if self.config.frames.fisheye else ())

    def _setup_cameras(self) -> None:
        c, cfg = self.calibration, self.config
        w, h = c.rect_size["image_00"]
        # The original uses image_00's K for every pinhole view (both rectified cameras share it).
        self.intrinsics = normalize_intrinsics(torch.from_numpy(c.p_rect["image_00"][:, :3]), w, h,
                                               PixelConvention(cfg.pixel_convention))
        self.cam_to_pose = {cam: c.rect_cam_to_pose(cam) for cam in PERSPECTIVE_CAMERAS}
        self.fisheyes = {cam: fisheye_camera(c.fisheye[cam], cfg.apply_fisheye_tangential)
                         for cam in ("image_02", "image_03")}
        self.virtual_rotations = {cam: virtual_rotation(cam, cfg.fisheye_rotation) for cam in self.fisheyes}
        for cam, rot in self.virtual_rotations.items():
            r = np.eye(4)
            r[:3, :3] = rot.numpy() if cfg.fisheye_mode == "pinhole" else np.eye(3)
            self.cam_to_pose[cam] = c.cam_to_pose[cam] @ r
        self._grids: dict[str, Tensor] = {}
        self.velo_to_pose = c.velo_to_pose()

    def __len__(self) -> int:
        return len(self.datapoints)

    def _fisheye_offsets(self) -> tuple[int, ...]:
        """The fisheye offsets a datapoint may use: the whole list when drawn (training), else the first."""
        offsets = tuple(self.config.frames.fisheye_offsets)
        return offsets if self.config.draw_fisheye_offset else offsets[:1]

    def _preprocessed_file(self, sequence: str, camera: str, frame_id: int) -> Path | None:
        """The ``data_HxW`` copy a pinhole view is read from when it exists (``None``: preprocessed copies off)."""
        if not self.config.use_preprocessed:
            return None
        h, w = self.config.image_size
        folder = resized_folder(camera, h, w, self.config.fisheye_rotation)
        return self.layout.image_file(sequence, camera, frame_id, folder)

    def _load_pinhole(self, sequence: str, view: View, frame_id: int) -> Tensor:
        h, w = self.config.image_size
        fish = view.camera in self.fisheyes
        path = self._preprocessed_file(sequence, view.camera, frame_id)
        if path is not None and path.is_file():
            return read_image(path, view.camera)
        image = read_image(self.layout.image_file(sequence, view.camera, frame_id), view.camera)
        self._check_size(image, view.camera, sequence, frame_id)
        if fish:
            return resample(image, self._virtual_grid(view.camera))
        return resize(image, h, w)

    def perspective_view(self, sequence: str, camera: str, row: int) -> tuple[Tensor, np.ndarray]:
        """One rectified perspective image as the loader gives it (``[3, H, W]`` in ``[0, 1]``, resized to
        ``image_size``, no augmentation) and its camera-to-world pose (``[4, 4]`` float64), for ``poses.txt`` row
        ``row`` of ``sequence``; the camera's normalised intrinsics are :attr:`intrinsics`."""
        if camera not in PERSPECTIVE_CAMERAS:
            raise ValueError(f"camera must be one of {PERSPECTIVE_CAMERAS}, got {camera!r}")
        poses = self.poses[sequence]
        image = self._load_pinhole(sequence, View(camera, row, 0), int(poses.frame_ids[row]))
        return image, poses.pose_to_world[row] @ self.cam_to_pose[camera]

    def _check_size(self, image: Tensor, camera: str, sequence: str, frame_id: int) -> None:
        # Normalised intrinsics are only valid for images of the calibrated size (or resized copies of them).
        if camera in self.fisheyes:
            f = self.calibration.fisheye[camera]
            want, source = (f.width, f.height), f"calibration/{camera}.yaml"
        else:
            want, source = self.calibration.rect_size[camera], "calibration/perspective.txt"
        if (image.shape[2], image.shape[1]) != want:
            path = self.layout.image_file(sequence, camera, frame_id)
            raise MalformedFileError(path, None, f"image is {image.shape[2]}x{image.shape[1]}, but "
                                     f"{source} says {want[0]}x{want[1]}")

    def _virtual_grid(self, camera: str) -> Tensor:
        if camera not in self._grids:
            h, w = self.config.image_size
            self._grids[camera] = virtual_pinhole_grid(
                self.fisheyes[camera], self.intrinsics, self.virtual_rotations[camera], h, w)
        return self._grids[camera]

    def _load_native_fisheye(self, sequence: str, view: View, frame_id: int) -> Tensor:
        image = read_image(self.layout.image_file(sequence, view.camera, frame_id), view.camera)
        self._check_size(image, view.camera, sequence, frame_id)
        size = self.config.fisheye_size
        return image if size is None else resize(image, size[0], size[1])

    def __getitem__(self, index: int) -> Kitti360Item:
        sequence, row, side = self.datapoints[index]
        poses = self.poses[sequence]
        offsets = self._fisheye_offsets()
        offset = offsets[0] if len(offsets) == 1 else offsets[int(torch.randint(len(offsets), ()))]
        views = select_views(self.config.frames, row, side, len(poses), offset)
        jitter = ColorJitterParams.sample() if self.config.color_jitter else None
        native = self.config.fisheye_mode == "native"
        groups: dict[bool, list] = {False: [], True: []}
        for view in views:
            frame_id = int(poses.frame_ids[view.row])
            is_native = native and view.camera in self.fisheyes
            if is_native:
                image = self._load_native_fisheye(sequence, view, frame_id)
            else:
                image = self._load_pinhole(sequence, view, frame_id)
            if jitter is not None:
                image = jitter.apply(image)
            c2w = poses.pose_to_world[view.row] @ self.cam_to_pose[view.camera]
            groups[is_native].append((image * 2.0 - 1.0, c2w, int(view.camera[-1]), frame_id, view.camera))
        return self._assemble(index, sequence, poses, views, groups)

    def _assemble(self, index, sequence, poses, views, groups) -> Kitti360Item:
        pinhole, native = groups[False], groups[True]
        world_from_view0 = torch.from_numpy(pinhole[0][1])
        rel = lambda ms: relative_to(world_from_view0, torch.from_numpy(np.stack(ms))).float()  # noqa: E731
        item: Kitti360Item = {
            "images": torch.stack([g[0] for g in pinhole]),
            "intrinsics": self.intrinsics.float().expand(len(pinhole), 3, 3).clone(),
            "cam_to_world": rel([g[1] for g in pinhole]),
            "cameras": torch.tensor([g[2] for g in pinhole]),
            "frame_ids": torch.tensor([g[3] for g in pinhole]),
            "world_from_view0": world_from_view0,
            "index": index,
        }
        if native:
            item["fisheye_images"] = torch.stack([g[0] for g in native])
            item["fisheye_params"] = torch.stack([self.fisheyes[g[4]].pack().float() for g in native])
            item["fisheye_cam_to_world"] = rel([g[1] for g in native])
            item["fisheye_cameras"] = torch.tensor([g[2] for g in native])
            item["fisheye_frame_ids"] = torch.tensor([g[3] for g in native])
        if self.config.lidar_depth:
            item["lidar_depth"] = self._lidar_depth(sequence, poses, views[0])
        return item

    def _lidar_depth(self, sequence: str, poses: SequencePoses, view: View) -> Tensor:
        frame_id = int(poses.frame_ids[view.row])
        scan = read_velodyne(self.layout.velodyne_file(sequence, frame_id))
        velo_to_cam = np.linalg.inv(self.cam_to_pose[view.camera]) @ self.velo_to_pose
        h, w = self.config.image_size
        return lidar_depth_map(scan[:, :3], velo_to_cam, self.intrinsics, h, w)[None]

    def fisheye_camera_of(self, params: Tensor):
        """Batched :class:`MeiFisheyeCamera` from ``fisheye_params`` of an item or batch."""
        return MeiFisheyeCamera.unpack(params, self.config.apply_fisheye_tangential)


def resize(image: Tensor, height: int, width: int) -> Tensor:
    """Bilinear resize of ``[3, H, W]`` without antialiasing, the behaviour of ``cv2.INTER_LINEAR``."""
    if image.shape[1:] == (height, width):
        return image
    return F.interpolate(image[None], size=(height, width), mode="bilinear", align_corners=False)[0]


__all__ = ["Kitti360Config", "Kitti360Dataset", "Kitti360Item", "PixelConvention", "resize"]
