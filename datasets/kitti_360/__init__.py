"""The KITTI-360 data layer: calibration, poses, splits, the dataset and preprocessing.

The dataset (which imports torchvision) loads lazily, so that reading a calibration file stays cheap.
"""

from datasets.kitti_360.calibration import Calibration, FisheyeCalibration, read_calibration, write_calibration
from datasets.kitti_360.errors import Kitti360Error, MalformedFileError, MissingFileError
from datasets.kitti_360.frames import VIEW_SUBSETS, FrameSelection, select_views, view_subset
from datasets.kitti_360.poses import SequencePoses, read_poses, write_poses
from datasets.kitti_360.splits import SplitEntry, read_split, write_split

_LAZY = {"Kitti360Config", "Kitti360Dataset", "Kitti360Item"}


def __getattr__(name: str):
    if name in _LAZY:
        from datasets.kitti_360 import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module 'datasets.kitti_360' has no attribute {name!r}")


__all__ = [
    "Calibration", "FisheyeCalibration", "read_calibration", "write_calibration", "Kitti360Config",
    "Kitti360Dataset", "Kitti360Item", "Kitti360Error", "MalformedFileError", "MissingFileError", "VIEW_SUBSETS",
    "FrameSelection", "select_views", "view_subset", "SequencePoses", "read_poses", "write_poses", "SplitEntry",
    "read_split", "write_split",
]
