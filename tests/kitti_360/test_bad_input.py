"""Every bad-input case of the data layer gets an error that names the file (and line) and what was expected."""

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from datasets.kitti_360 import Kitti360Config, Kitti360Dataset, MalformedFileError, MissingFileError
from datasets.kitti_360.lidar import lidar_depth_map

SEQ = "2013_05_28_drive_0000_sync"
CONFIG = Kitti360Config(image_size=(16, 64))


@pytest.fixture
def tree(synthetic_root, tmp_path):
    root = tmp_path / "KITTI-360"
    shutil.copytree(synthetic_root, root)
    return root


def split_of(root, lines):
    path = root / "my_split.txt"
    path.write_text("".join(line + "\n" for line in lines))
    return path


def first_posed_frame(root):
    return int((root / "data_poses" / SEQ / "poses.txt").read_text().split()[0])


def load(root, split=None, config=CONFIG):
    split = split or split_of(root, [f"{SEQ} {first_posed_frame(root):010d} l"])
    return Kitti360Dataset(root, split, config)


@pytest.mark.parametrize("name,package", [
    ("perspective.txt", "calibration"), ("calib_cam_to_pose.txt", "calibration"),
    ("calib_cam_to_velo.txt", "calibration"), ("image_02.yaml", "calibration"),
])
def test_missing_calibration_file(tree, name, package):
    (tree / "calibration" / name).unlink()
    with pytest.raises(MissingFileError) as e:
        load(tree)
    assert str(tree / "calibration" / name) in str(e.value) and package in str(e.value)


def test_missing_root(tmp_path):
    with pytest.raises(MissingFileError, match="KITTI-360 root"):
        Kitti360Dataset(tmp_path / "nowhere", tmp_path / "split.txt", CONFIG)


def test_missing_poses_is_an_error_not_a_reuse(tree):
    split = split_of(tree, [f"2013_05_28_drive_0002_sync {first_posed_frame(tree):010d} l",
                            f"{SEQ} {first_posed_frame(tree):010d} l"])
    (tree / "data_poses" / SEQ / "poses.txt").unlink()
    with pytest.raises(MissingFileError) as e:
        load(tree, split)
    assert str(tree / "data_poses" / SEQ / "poses.txt") in str(e.value) and "vehicle poses" in str(e.value)


@pytest.mark.parametrize("camera,folder,package", [
    ("image_00", "data_rect", "perspective images"), ("image_03", "data_rgb", "fisheye images"),
])
def test_missing_image_folder_and_file(tree, camera, folder, package):
    ids = (tree / "data_poses" / SEQ / "poses.txt").read_text().split("\n")
    offset = 0 if camera == "image_00" else 10  # the other fisheye is loaded at t+10 and t+11
    frame = int(ids[min(offset, len([r for r in ids if r]) - 1)].split()[0])
    image = tree / "data_2d_raw" / SEQ / camera / folder / f"{frame:010d}.png"
    image.unlink()
    with pytest.raises(MissingFileError) as e:  # when the dataset is built, not at the datapoint
        load(tree)
    assert str(image) in str(e.value) and package in str(e.value) and "my_split.txt" in str(e.value)
    with pytest.raises(MissingFileError) as e:
        load(tree, config=Kitti360Config(image_size=(16, 64), check_files=False))[0]
    assert str(image) in str(e.value) and package in str(e.value)
    shutil.rmtree(image.parent)
    with pytest.raises(MissingFileError) as e:
        load(tree)
    assert str(image.parent) in str(e.value) and package in str(e.value)


def test_missing_velodyne_scan(tree):
    frame = first_posed_frame(tree)
    scan = tree / "data_3d_raw" / SEQ / "velodyne_points" / "data" / f"{frame:010d}.bin"
    scan.unlink()
    with pytest.raises(MissingFileError) as e:
        load(tree, config=Kitti360Config(image_size=(16, 64), lidar_depth=True))
    assert str(scan) in str(e.value) and "velodyne" in str(e.value)
    load(tree)  # without lidar depth the scan is not needed


def corrupt_line(path, lineno, text):
    lines = path.read_text().splitlines()
    lines[lineno - 1] = text
    path.write_text("\n".join(lines) + "\n")


def test_malformed_perspective_line(tree):
    path = tree / "calibration" / "perspective.txt"
    lines = path.read_text().splitlines()
    n = next(i for i, line in enumerate(lines, 1) if line.startswith("P_rect_01"))
    corrupt_line(path, n, "P_rect_01: 1 2 3")
    with pytest.raises(MalformedFileError, match=rf"perspective.txt, line {n}: P_rect_01: expected 12 numbers"):
        load(tree)


def test_malformed_cam_to_pose_number(tree):
    path = tree / "calibration" / "calib_cam_to_pose.txt"
    corrupt_line(path, 2, "image_01: " + " ".join(["1.0"] * 11 + ["abc"]))
    with pytest.raises(MalformedFileError, match=r"calib_cam_to_pose.txt, line 2"):
        load(tree)


def test_malformed_fisheye_yaml(tree):
    path = tree / "calibration" / "image_03.yaml"
    path.write_text(path.read_text().replace("xi:", "chi:"))
    with pytest.raises(MalformedFileError, match=r"image_03.yaml: missing 'mirror_parameters.xi'"):
        load(tree)


def test_malformed_pose_line(tree):
    path = tree / "data_poses" / SEQ / "poses.txt"
    corrupt_line(path, 3, "12 1 2 3")
    expected = r"poses.txt, line 3: expected 13 fields \(a frame id and 12 numbers\)"
    with pytest.raises(MalformedFileError, match=expected):
        load(tree)


@pytest.mark.parametrize("line,problem", [
    (f"{SEQ} 12 x", "side must be 'l' or 'r'"),
    (f"{SEQ} abc l", "frame id must be a non-negative integer"),
    (f"{SEQ} 0000000012", "expected '<sequence> <frame id> <l|r>'"),
])
def test_malformed_split_line(tree, line, problem):
    split = split_of(tree, [f"{SEQ} {first_posed_frame(tree):010d} l", line])
    with pytest.raises(MalformedFileError, match=rf"my_split.txt, line 2: {problem}"):
        load(tree, split)


def test_split_frame_without_pose_is_an_error(tree):
    # frame 0 has images but no pose (poses start later, as in KITTI-360)
    split = split_of(tree, [f"{SEQ} {first_posed_frame(tree):010d} l", f"{SEQ} 0000000000 l"])
    with pytest.raises(MalformedFileError, match=r"my_split.txt, line 2: frame 0000000000 has no pose"):
        load(tree, split)


def test_image_of_wrong_size(tree):
    frame = first_posed_frame(tree)
    path = tree / "data_2d_raw" / SEQ / "image_01" / "data_rect" / f"{frame:010d}.png"
    Image.new("RGB", (50, 20)).save(path)
    with pytest.raises(MalformedFileError, match=r"image is 50x20, but calibration/perspective.txt says"):
        load(tree)[0]


def test_sizes_come_from_the_calibration(tree):
    from datasets.kitti_360 import read_calibration

    calib = read_calibration(tree / "calibration")
    ds = load(tree)
    w, h = calib.rect_size["image_00"]
    k = calib.p_rect["image_00"][:, :3]
    assert ds.intrinsics[0, 0].item() == pytest.approx(2 * k[0, 0] / w)
    assert ds.intrinsics[1, 2].item() == pytest.approx((2 * k[1, 2] + 1) / h - 1)


def test_lidar_points_behind_the_camera_are_dropped():
    k = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1]], dtype=torch.float64)
    # one point in front, one behind the camera that a projection without the check would put in the image
    points = np.array([[0.5, 0.2, 10.0], [-0.5, -0.2, -4.0]], dtype=np.float32)
    depth = lidar_depth_map(points, np.eye(4), k, 20, 20)
    assert (depth > 0).sum() == 1
    assert depth.max().item() == pytest.approx(10.0)


def test_every_missing_file_of_the_split_is_counted_at_the_start(tree):
    folder = tree / "data_2d_raw" / SEQ / "image_01" / "data_rect"
    ids = [int(r.split()[0]) for r in (tree / "data_poses" / SEQ / "poses.txt").read_text().splitlines() if r]
    for frame in ids[:3]:
        (folder / f"{frame:010d}.png").unlink()
    split = split_of(tree, [f"{SEQ} {frame:010d} l" for frame in ids[:3]])
    with pytest.raises(MissingFileError, match=r"image_01 PNG image.*2 more files of this split are missing"):
        load(tree, split)
