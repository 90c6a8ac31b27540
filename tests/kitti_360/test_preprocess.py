import shutil
import subprocess
import sys

import torch

from datasets.kitti_360 import Kitti360Config, Kitti360Dataset


def test_preprocessed_folders_match_on_the_fly_resizing(synthetic_root, tmp_path):
    root = tmp_path / "tree"
    shutil.copytree(synthetic_root, root)
    split = root / "splits" / "test_files.txt"
    subprocess.run([sys.executable, "-m", "datasets.kitti_360.preprocess", "--root", str(root), "--split",
                    str(split), "--size", "24", "96", "--workers", "0"], check=True, capture_output=True)
    written = sorted((root / "data_2d_raw").rglob("data_24x96*/*.png"))
    assert any("image_00/data_24x96/" in str(p) for p in written)
    assert any("image_02/data_24x96_0x-15/" in str(p) for p in written)
    config = Kitti360Config(image_size=(24, 96))
    fast = Kitti360Dataset(root, split, config)
    slow = Kitti360Dataset(root, split, Kitti360Config(image_size=(24, 96), use_preprocessed=False))
    for i in (0, len(fast) - 1):
        # 8-bit rounding is the only difference
        assert torch.allclose(fast[i]["images"], slow[i]["images"], atol=2.0 / 255 + 1e-6)
    # a second run has nothing left to do and leaves the files as they are
    before = {p: p.stat().st_mtime_ns for p in written}
    subprocess.run([sys.executable, "-m", "datasets.kitti_360.preprocess", "--root", str(root), "--split",
                    str(split), "--size", "24", "96", "--workers", "0"], check=True, capture_output=True)
    assert before == {p: p.stat().st_mtime_ns for p in written}
