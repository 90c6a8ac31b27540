"""The KITTI-360 data layer: calibration, poses, splits, the dataset and preprocessing."""

from datasets.kitti_360.calibration import Calibration, FisheyeCalibration, read_calibration, write_calibration
from datasets.kitti_360.dataset import Kitti360Config, Kitti360Dataset, Kitti360Item
from datasets.kitti_360.errors import Kitti360Error, MalformedFileError, MissingFileError
from datasets.kitti_360.frames import VIEW_SUBSETS, FrameSelection, select_views, view_subset
from datasets.kitti_360.poses import SequencePoses, read_poses, write_poses
from datasets.kitti_360.splits import SplitEntry, read_split, write_split

__all__ = [
    "Calibration", "FisheyeCalibration", "read_calibration", "write_calibration", "Kitti360Config",
    "Kitti360Dataset", "Kitti360Item", "Kitti360Error", "MalformedFileError", "MissingFileError", "VIEW_SUBSETS",
    "FrameSelection", "select_views", "view_subset", "SequencePoses", "read_poses", "write_poses", "SplitEntry",
    "read_split", "write_split",
]
