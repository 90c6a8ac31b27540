"""The KITTI-360 loader on the tiny synthetic city: shapes, frame selection, pose conventions, consistency."""

import pytest
import torch
import torch.nn.functional as F

from bts.geometry import PinholeCamera, invert_rigid, pixel_grid, transform_points
from datasets.kitti_360 import FrameSelection, Kitti360Config, Kitti360Dataset, read_calibration, read_poses
from datasets.kitti_360.augment import ColorJitterParams
from datasets.synthetic import load_scene


def native_size(root):
    w, h = read_calibration(root / "calibration").rect_size["image_00"]
    return h, w


@pytest.fixture(scope="module")
def train(synthetic_root):
    return Kitti360Dataset(synthetic_root, synthetic_root / "splits" / "train_files.txt",
                           Kitti360Config(image_size=native_size(synthetic_root)))


def find(dataset, side, want_row=None):
    for i, (_seq, row, s) in enumerate(dataset.datapoints):
        if s == side and (want_row is None or row == want_row):
            return i
    raise AssertionError("no such datapoint")


def test_item_shapes_dtypes_and_ranges(train):
    item = train[0]
    h, w = train.config.image_size
    assert item["images"].shape == (8, 3, h, w) and item["images"].dtype == torch.float32
    assert item["images"].min() >= -1 and item["images"].max() <= 1
    assert item["intrinsics"].shape == (8, 3, 3) and item["intrinsics"].dtype == torch.float32
    assert item["cam_to_world"].shape == (8, 4, 4) and item["cam_to_world"].dtype == torch.float32
    assert torch.allclose(item["cam_to_world"][0], torch.eye(4), atol=1e-6)
    assert item["world_from_view0"].dtype == torch.float64
    assert "fisheye_images" not in item


@pytest.mark.parametrize("side,cameras", [("l", [0, 0, 1, 1, 2, 2, 3, 3]), ("r", [1, 1, 0, 0, 3, 3, 2, 2])])
def test_frame_selection_order(train, side, cameras):
    item = train[find(train, side)]
    assert item["cameras"].tolist() == cameras
    seq, row, _ = train.datapoints[find(train, side)]
    ids = train.poses[seq].frame_ids
    t = lambda k: int(ids[min(row + k, len(ids) - 1)])  # noqa: E731
    assert item["frame_ids"].tolist() == [t(0), t(1), t(0), t(1), t(10), t(11), t(10), t(11)]


def test_rows_not_frame_ids_and_clamping(synthetic_root, tmp_path):
    poses = read_poses(synthetic_root / "data_poses" / "2013_05_28_drive_0000_sync" / "poses.txt")
    assert poses.frame_ids[0] != 0, "the synthetic city starts its poses after the first images, like KITTI-360"
    last = int(poses.frame_ids[-1])
    split = tmp_path / "split.txt"
    split.write_text(f"2013_05_28_drive_0000_sync {last:010d} l\n")
    ds = Kitti360Dataset(synthetic_root, split, Kitti360Config(image_size=(16, 64)))
    assert ds.datapoints[0][1] == len(poses) - 1
    assert ds[0]["frame_ids"].tolist() == [last] * 8  # past the end, every view clamps to the last posed frame


def test_pose_conventions(train):
    item = train[find(train, "l")]
    rel = item["cam_to_world"]
    # view 2 is the right camera at t: 0.6 m to the right (+x), same orientation after rectification
    assert torch.allclose(rel[2, :3, :3], torch.eye(3), atol=1e-4)
    assert 0.5 < rel[2, 0, 3] < 0.7 and abs(rel[2, 1, 3]) < 0.05 and abs(rel[2, 2, 3]) < 0.05
    # view 1 is the next frame: the car moved forward (+z in the camera frame, the camera is pitched down)
    assert 0.5 < rel[1, 2, 3] < 2.0 and abs(rel[1, 0, 3]) < 0.5
    # the fisheye views look sideways: the main-side (left) virtual camera's optical axis points left (-x)
    assert rel[4, 0, 2] < -0.7
    assert rel[6, 0, 2] > 0.7
    right = train[find(train, "r")]["cam_to_world"]
    assert -0.7 < right[2, 0, 3] < -0.5  # for side r the partner is on the left


def reproject_colors(item, depth0, target, uv_target_fn=None):
    """Colours of view-0 pixels and of the same surface points in view ``target``."""
    h, w = item["images"].shape[-2:]
    uv = pixel_grid(h, w).reshape(-1, 2)
    depth = depth0.reshape(-1)
    keep = torch.isfinite(depth) & (depth < 40)
    uv, depth = uv[keep], depth[keep]
    pts0 = PinholeCamera(item["intrinsics"][0]).unproject(uv) * depth[:, None]
    src = item["images"][0].reshape(3, -1)[:, keep].T
    to_target = invert_rigid(item["cam_to_world"][target]) @ item["cam_to_world"][0]
    pts = transform_points(to_target, pts0)
    proj = PinholeCamera(item["intrinsics"][target]).project(pts)
    sampled = F.grid_sample(item["images"][target][None], proj.uv[None, None], align_corners=False)[0, :, 0].T
    return (src + 1) / 2, (sampled + 1) / 2, proj


def test_views_are_consistent_through_the_loaders_poses(train, synthetic_root):
    """Surface points of view 0 (exact depth) land on the same colour in the stereo and next views."""
    i = find(train, "l")
    seq, row, _ = train.datapoints[i]
    item = train[i]
    frame = int(train.poses[seq].frame_ids[row])
    depth0 = load_scene(synthetic_root, seq).depth("image_00", frame)
    for target in (1, 2, 3):
        src, dst, proj = reproject_colors(item, depth0, target)
        err = (src - dst).abs().mean(-1)[proj.valid]
        assert proj.valid.sum() > 500
        assert err.median() < 0.05, (target, err.median())


def test_lidar_depth_agrees_with_exact_depth(synthetic_root):
    ds = Kitti360Dataset(synthetic_root, synthetic_root / "splits" / "val_files.txt",
                         Kitti360Config(image_size=native_size(synthetic_root), lidar_depth=True))
    seq, row, side = ds.datapoints[0]
    lidar = ds[0]["lidar_depth"][0]
    exact = load_scene(synthetic_root, seq).depth("image_00" if side == "l" else "image_01",
                                                  int(ds.poses[seq].frame_ids[row]))
    hit = lidar > 0
    assert hit.sum() > 100
    rel = ((lidar[hit] - exact[hit]) / exact[hit]).abs()
    assert rel.median() < 0.02


def test_color_jitter_is_one_draw_for_all_frames(synthetic_root):
    split = synthetic_root / "splits" / "train_files.txt"
    plain = Kitti360Dataset(synthetic_root, split, Kitti360Config(image_size=(32, 128)))
    jittered = Kitti360Dataset(synthetic_root, split, Kitti360Config(image_size=(32, 128), color_jitter=True))
    torch.manual_seed(5)
    got = jittered[3]["images"]
    torch.manual_seed(5)
    params = ColorJitterParams.sample()
    want = torch.stack([params.apply((im + 1) / 2) * 2 - 1 for im in plain[3]["images"]])
    assert torch.allclose(got, want, atol=1e-5)
    assert not torch.allclose(got, plain[3]["images"], atol=1e-3)


def test_native_fisheye_mode(synthetic_root):
    ds = Kitti360Dataset(synthetic_root, synthetic_root / "splits" / "train_files.txt",
                         Kitti360Config(image_size=(32, 128), fisheye_mode="native"))
    item = ds[0]
    fw = read_calibration(synthetic_root / "calibration").fisheye["image_02"]
    assert item["images"].shape[0] == 4
    assert item["fisheye_images"].shape == (4, 3, fw.height, fw.width)
    assert item["fisheye_params"].shape == (4, 9) and item["fisheye_cam_to_world"].shape == (4, 4, 4)
    cam = ds.fisheye_camera_of(item["fisheye_params"][0])
    # the centre pixel of the native fisheye looks along its optical axis, sideways from the car
    dirs, ok = cam.unproject(torch.zeros(1, 2))
    axis = item["fisheye_cam_to_world"][0, :3, :3] @ dirs[0].float()
    assert ok.all() and axis[0] < -0.8


def test_fisheye_frames_are_consistent_in_native_and_pinhole_modes(synthetic_root):
    """A point seen by the virtual pinhole lands on the same colour in the native fisheye image."""
    split = synthetic_root / "splits" / "train_files.txt"
    pin = Kitti360Dataset(synthetic_root, split, Kitti360Config(image_size=(48, 160)))
    nat = Kitti360Dataset(synthetic_root, split, Kitti360Config(image_size=(48, 160), fisheye_mode="native"))
    a, b = pin[0], nat[0]
    uv = pixel_grid(48, 160).reshape(-1, 2)
    pts = PinholeCamera(a["intrinsics"][4]).unproject(uv) * 8.0
    world = transform_points(a["cam_to_world"][4], pts)
    fish = transform_points(invert_rigid(b["fisheye_cam_to_world"][0]), world)
    proj = nat.fisheye_camera_of(b["fisheye_params"][0]).project(fish.double())
    sampled = F.grid_sample(b["fisheye_images"][0][None], proj.uv.float()[None, None], align_corners=False)[0, :, 0]
    diff = (sampled.T - a["images"][4].reshape(3, -1).T).abs().mean(-1)[proj.valid]
    assert proj.valid.float().mean() > 0.9
    assert diff.median() < 0.05


def test_corner_pixel_convention_for_imported_models(synthetic_root):
    split = synthetic_root / "splits" / "test_files.txt"
    frames = FrameSelection(num_timesteps=1, stereo=False, fisheye=False)
    centre = Kitti360Dataset(synthetic_root, split, Kitti360Config(image_size=(48, 176), frames=frames))
    corner = Kitti360Dataset(synthetic_root, split, Kitti360Config(image_size=(48, 176), frames=frames,
                                                                    pixel_convention="corner"))
    w, h = centre.calibration.rect_size["image_00"]
    # The original maps pixel x to 2x/W - 1: its principal point sits half a pixel (1/W) lower.
    assert torch.allclose(corner.intrinsics[0, 2], centre.intrinsics[0, 2] - 1.0 / w, atol=1e-6)
    assert torch.allclose(corner.intrinsics[1, 2], centre.intrinsics[1, 2] - 1.0 / h, atol=1e-6)
    assert torch.equal(corner.intrinsics[:2, :2], centre.intrinsics[:2, :2])
    with pytest.raises(ValueError, match="pixel_convention must be one of"):
        Kitti360Dataset(synthetic_root, split, Kitti360Config(frames=frames, pixel_convention="edges"))
