"""Fixtures of the loss tests."""

from __future__ import annotations

import pytest
from torch.utils.data import default_collate

from datasets.kitti_360 import Kitti360Config, Kitti360Dataset


@pytest.fixture(scope="module")
def kd_batch(synthetic_root):
    ds = Kitti360Dataset(synthetic_root, synthetic_root / "splits/train_files.txt",
                         Kitti360Config(image_size=(64, 240)))
    return default_collate([ds[0]])
