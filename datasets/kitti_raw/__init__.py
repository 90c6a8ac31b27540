"""KITTI Raw for the Eigen depth protocol (docs/method.md §7.5, §8.2): calibration, split lists, velodyne ground truth
and a dataset of test frames. Training on KITTI Raw is out of scope (docs/decisions.md §2)."""

from datasets.kitti_raw.calibration import RawCalibration, read_raw_calibration
from datasets.kitti_raw.dataset import KittiRawConfig, KittiRawDataset, KittiRawItem
from datasets.kitti_raw.errors import KittiRawError, MalformedFileError, MissingFileError
from datasets.kitti_raw.ground_truth import EIGEN_CROP, eigen_crop_mask, velodyne_depth_map
from datasets.kitti_raw.splits import EIGEN_TEST, RawSplitEntry, read_raw_split

__all__ = [
    "RawCalibration", "read_raw_calibration", "KittiRawConfig", "KittiRawDataset", "KittiRawItem", "KittiRawError",
    "MalformedFileError", "MissingFileError", "EIGEN_CROP", "eigen_crop_mask", "velodyne_depth_map", "EIGEN_TEST",
    "RawSplitEntry", "read_raw_split",
]
