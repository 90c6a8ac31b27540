"""The KITTI Raw loader of the Eigen depth protocol on a tiny tree written here (docs/method.md §8.2)."""

import hashlib

import numpy as np
import pytest
import torch
from tests.evaluation.eval_fixtures import (CX, CY, DATE, DRIVE, FOCAL, HEIGHT, RIGHT_TX, TX, TY, TZ, WIDTH,
                                           write_kitti_raw_tree)

from datasets.kitti_raw import (EIGEN_TEST, KittiRawConfig, KittiRawDataset, MalformedFileError, MissingFileError,
                                eigen_crop_mask, read_raw_calibration, read_raw_split, velodyne_depth_map)

# (col, row, depth) of points that must appear in the ground truth as they are.
KNOWN = [(10, 20, 7.5), (60, 30, 21.25), (119, 39, 3.0), (0, 0, 55.0)]


@pytest.fixture()
def tree(tmp_path):
    t = write_kitti_raw_tree(tmp_path, {5: np.zeros((0, 3))})
    return t


def _scan(tree, *points):
    return np.stack([tree.velodyne_point(c, r, d) for c, r, d in points])


def test_known_points_land_on_their_pixels_with_their_depth(tree):
    calib = read_raw_calibration(tree.root / DATE)
    gt = velodyne_depth_map(_scan(tree, *KNOWN), calib.velo_to_image("image_02"), HEIGHT, WIDTH)
    assert gt.shape == (HEIGHT, WIDTH) and gt.dtype == np.float32
    for col, row, depth in KNOWN:
        assert gt[row, col] == pytest.approx(depth, rel=1e-6)
    assert (gt > 0).sum() == len(KNOWN)


def test_closest_point_wins_whatever_the_order(tree):
    calib = read_raw_calibration(tree.root / DATE)
    m = calib.velo_to_image("image_02")
    for order in ([(30, 10, 12.0), (30, 10, 9.0), (30, 10, 15.0)], [(30, 10, 9.0), (30, 10, 15.0), (30, 10, 12.0)]):
        gt = velodyne_depth_map(_scan(tree, *order), m, HEIGHT, WIDTH)
        assert gt[10, 30] == pytest.approx(9.0, rel=1e-6) and (gt > 0).sum() == 1


def test_points_behind_the_velodyne_and_outside_the_image_are_dropped(tree):
    calib = read_raw_calibration(tree.root / DATE)
    behind = tree.velodyne_point(40, 15, 0.3)  # in front of the camera (depth 0.3 m), behind the velodyne's x = 0
    assert behind[0] < 0
    # One pixel left of the image: round(u) - 1 = -1; one row below it: round(v) - 1 = HEIGHT.
    outside = _scan(tree, (-1, 5, 10.0), (5, HEIGHT, 10.0))
    gt = velodyne_depth_map(np.concatenate([behind[None], outside]), calib.velo_to_image("image_02"), HEIGHT, WIDTH)
    assert not gt.any()


def test_pixel_rule_is_round_minus_one(tree):
    # A point projecting to u = 10.4 (rounds to 10) lands in column 9; at u = 10.6 in column 10.
    calib = read_raw_calibration(tree.root / DATE)
    left = tree.velodyne_point(9, 5, 10.0) + np.array([0, -0.4 * 10.0 / FOCAL, 0])  # velodyne -y is camera +x
    right = tree.velodyne_point(9, 20, 10.0) + np.array([0, -0.6 * 10.0 / FOCAL, 0])
    gt = velodyne_depth_map(np.stack([left, right]), calib.velo_to_image("image_02"), HEIGHT, WIDTH)
    assert gt[5, 9] > 0 and gt[20, 10] > 0 and (gt > 0).sum() == 2


def test_eigen_crop_at_the_kitti_size():
    # 0.40810811 * 375 = 153.04, 0.99189189 * 375 = 371.96, 0.03594771 * 1242 = 44.65, 0.96405229 * 1242 = 1197.35
    mask = eigen_crop_mask(375, 1242)
    rows, cols = mask.any(axis=1).nonzero()[0], mask.any(axis=0).nonzero()[0]
    assert (rows[0], rows[-1], cols[0], cols[-1]) == (153, 370, 44, 1196)
    assert mask.sum() == (371 - 153) * (1197 - 44)


def test_dataset_item(tree):
    points = _scan(tree, *KNOWN)
    write_kitti_raw_tree(tree.root, {5: points})
    ds = KittiRawDataset(tree.root, tree.root / "split.txt", KittiRawConfig(image_size=(16, 48), stereo=True))
    item = ds[0]
    assert item["images"].shape == (2, 3, 16, 48)
    assert item["images"].min() >= -1 and item["images"].max() <= 1
    assert item["depth_gt"].shape == (HEIGHT, WIDTH)
    for col, row, depth in KNOWN:
        assert item["depth_gt"][row, col].item() == pytest.approx(depth, rel=1e-6)
    # Normalised intrinsics (pixel centres): f' = 2f/W, c' = (2c + 1)/W - 1.
    k = item["intrinsics"][0]
    assert k[0, 0].item() == pytest.approx(2 * FOCAL / WIDTH) and k[1, 1].item() == pytest.approx(2 * FOCAL / HEIGHT)
    assert k[0, 2].item() == pytest.approx((2 * CX + 1) / WIDTH - 1)
    assert k[1, 2].item() == pytest.approx((2 * CY + 1) / HEIGHT - 1)
    # P_rect = K [I | t] with t = K^-1 p4: t_left = ((TX - CX TZ) / f, (TY - CY TZ) / f, TZ), t_right = (RIGHT_TX / f,
    # 0, 0). A point x in the right camera is x - t_right + t_left in the left one (about 0.55 m to the right).
    assert torch.allclose(item["cam_to_world"][0], torch.eye(4))
    expected = [(TX - CX * TZ) / FOCAL - RIGHT_TX / FOCAL, (TY - CY * TZ) / FOCAL, TZ]
    assert item["cam_to_world"][1, :3, 3].tolist() == pytest.approx(expected, rel=1e-6)
    assert torch.allclose(item["cam_to_world"][1, :3, :3], torch.eye(3))
    assert item["cameras"].tolist() == [2, 3]


def test_malformed_calibration_line_names_file_and_line(tree):
    path = tree.root / DATE / "calib_cam_to_cam.txt"
    lines = path.read_text().splitlines()
    idx = next(i for i, line in enumerate(lines) if line.startswith("P_rect_02"))
    lines[idx] = "P_rect_02: 1 2 3 4 5 6 7 8 9 10 11"
    path.write_text("\n".join(lines))
    with pytest.raises(MalformedFileError, match=rf"calib_cam_to_cam.txt, line {idx + 1}: P_rect_02: expected 12"):
        read_raw_calibration(tree.root / DATE)
    lines[idx] = "P_rect_02: 1 2 3 4 5 6 7 8 9 10 11 x"
    path.write_text("\n".join(lines))
    with pytest.raises(MalformedFileError, match="P_rect_02: expected 12 numbers"):
        read_raw_calibration(tree.root / DATE)
    lines[idx] = "P_rect_02: " + " ".join(["1"] * 12)
    path.write_text("\n".join(line for line in lines if not line.startswith("S_rect_03")))
    with pytest.raises(MalformedFileError, match="missing entries 'S_rect_03: <2 numbers>'"):
        read_raw_calibration(tree.root / DATE)


def test_missing_calibration_and_velodyne_files_name_file_and_archive(tree):
    (tree.root / DATE / "calib_velo_to_cam.txt").unlink()
    with pytest.raises(MissingFileError, match=rf"calib_velo_to_cam.txt: expected .*{DATE}_calib.zip"):
        KittiRawDataset(tree.root, tree.root / "split.txt")
    tree2 = write_kitti_raw_tree(tree.root, {5: np.zeros((1, 3))})
    scan = tree2.root / DATE / DRIVE / "velodyne_points" / "data" / "0000000005.bin"
    scan.unlink()
    ds = KittiRawDataset(tree2.root, tree2.root / "split.txt")
    with pytest.raises(MissingFileError, match=rf"0000000005.bin: expected a velodyne scan.*{DRIVE}.zip"):
        ds[0]
    np.zeros(5, dtype=np.float32).tofile(scan)
    with pytest.raises(MalformedFileError, match="not a multiple of 4"):
        ds[0]


def test_missing_drive_and_wrong_image_size(tree):
    split = tree.root / "other.txt"
    split.write_text(f"{DATE}/2011_09_26_drive_0099_sync 0000000005 l\n")
    with pytest.raises(MissingFileError, match="drive_0099_sync: expected the drive folder named on line 1"):
        KittiRawDataset(tree.root, split)
    ds = KittiRawDataset(tree.root, tree.root / "split.txt")
    from PIL import Image

    Image.new("RGB", (WIDTH + 2, HEIGHT)).save(tree.root / DATE / DRIVE / "image_02" / "data" / "0000000005.png")
    with pytest.raises(MalformedFileError, match=f"image is {WIDTH + 2}x{HEIGHT}, but S_rect_02"):
        ds[0]


@pytest.mark.parametrize("line, problem", [
    (f"{DATE}/{DRIVE} 0000000005", "expected '<date>/<drive> <frame id> <l|r>'"),
    (f"{DATE}/{DRIVE} 0000000005 x", "side must be 'l' or 'r'"),
    (f"{DATE}/{DRIVE} 5a l", "frame id must be a non-negative integer"),
    (f"{DRIVE} 0000000005 l", "the first field must be '<YYYY_MM_DD>/<drive folder>'"),
    (f"26_09_2011/{DRIVE} 0000000005 l", "the first field must be"),
])
def test_bad_split_line(tmp_path, line, problem):
    path = tmp_path / "split.txt"
    path.write_text(f"{DATE}/{DRIVE} 0000000001 l\n\n{line}\n")
    with pytest.raises(MalformedFileError, match=rf"split.txt, line 3: {problem}"):
        read_raw_split(path)


def test_empty_split_and_missing_split(tmp_path):
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(MalformedFileError, match="the split is empty"):
        read_raw_split(tmp_path / "empty.txt")
    with pytest.raises(MissingFileError, match="nope.txt: expected a KITTI Raw split list"):
        read_raw_split(tmp_path / "nope.txt")


def test_shipped_eigen_test_list_is_the_documented_file():
    assert hashlib.sha256(EIGEN_TEST.read_bytes()).hexdigest() == (
        "e226d4ca16e0e6e9695435014347dcf973588531330536fd8a68d298ef091a6b")
    entries = read_raw_split(EIGEN_TEST)
    assert len(entries) == 697 and all(e.side == "l" and e.camera == "image_02" for e in entries)
    assert entries[0].name == "2011_09_26/2011_09_26_drive_0002_sync 0000000069 l"
    assert "e226d4ca16e0e6e9" in (EIGEN_TEST.parent.parent / "PROVENANCE.md").read_text()
