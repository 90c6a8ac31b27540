"""Exact occupancy labels of the supervised bound: agreement with the scene, where the points lie, reproducibility,
and the refusal of a tree without the exact scene."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from bts.geometry import PinholeCamera, normalized_to_pixels
from datasets.factory import build_dataset
from datasets.kitti_360 import Kitti360Config, Kitti360Dataset
from datasets.kitti_360.errors import MissingFileError
from datasets.synthetic import load_scene
from datasets.synthetic.occupancy_labels import (
    BEHIND,
    SURFACE,
    UNIFORM,
    MissingSceneError,
    OccupancyLabelledDataset,
    OccupancySampling,
    sampling_from_config,
)

SAMPLING = OccupancySampling(points_per_element=3000, seed=0)


def labelled(root, sampling=SAMPLING, image_size=(48, 176)) -> OccupancyLabelledDataset:
    # A working size other than the tree's (64x240): the points do not depend on it (normalised intrinsics).
    base = Kitti360Dataset(root, root / "splits" / "train_files.txt", Kitti360Config(image_size=image_size))
    return OccupancyLabelledDataset(base, sampling)


@pytest.fixture(scope="module")
def dataset(synthetic_root):
    return labelled(synthetic_root)


@pytest.mark.parametrize("index", [0, 1])  # side l (image_00) and side r (image_01)
def test_labels_are_the_exact_occupancy_of_frustum_points_at_the_stated_distances(dataset, synthetic_root, index):
    item = dataset[index]
    sequence, _, side = dataset.base.datapoints[index]
    assert side == ("l" if index == 0 else "r")
    points, labels, modes = item["occupancy_points"], item["occupancy_labels"], item["occupancy_modes"]
    n = SAMPLING.points_per_element
    assert points.shape == (n, 3) and points.dtype == torch.float32
    assert labels.shape == (n,) and labels.dtype == torch.float32 and set(labels.unique().tolist()) == {0.0, 1.0}
    assert torch.allclose(item["cam_to_world"][0], torch.eye(4), atol=1e-6)  # the item's frame is view 0's camera frame

    # Labels: the scene's occupancy of the world points (pose taken from the item, in float64).
    scene = load_scene(synthetic_root, sequence)
    world_from_view0 = item["world_from_view0"]
    world = points.double() @ world_from_view0[:3, :3].T + world_from_view0[:3, 3]
    assert torch.equal(labels, scene.occupied(world).float())

    # In view 0's frustum, on pixel centres of the exact depth image.
    camera = "image_00" if side == "l" else "image_01"
    depth = scene.depth(camera, int(item["frame_ids"][0])).double()
    h, w = depth.shape
    proj = PinholeCamera(item["intrinsics"][0].double()).project(points.double())
    assert proj.valid.all()
    pixels = normalized_to_pixels(proj.uv, w, h)
    assert (pixels - pixels.round()).abs().max() < 1e-3
    col, row = pixels.round().long().unbind(-1)
    t = points.double().norm(dim=-1)
    surface = depth[row, col] * t / points[:, 2].double()  # ray distance of the pixel's z-depth
    near, far = SAMPLING.near, SAMPLING.far
    assert ((t >= near - 1e-4) & (t <= far + 1e-4)).all()

    # Modes: the first uniform_share are uniform; the others only fall back to uniform without a surface.
    u, s, b = SAMPLING.counts()
    assert (u, s, b) == (1200, 1200, 600)
    has_surface = torch.isfinite(surface) & (surface >= near) & (surface <= far)
    assert (modes[:u] == UNIFORM).all()
    assert torch.equal(modes[u:u + s] == SURFACE, has_surface[u:u + s])
    assert torch.equal(modes[u + s:] == BEHIND, has_surface[u + s:])
    assert (modes == SURFACE).sum() > 0.5 * s and (modes == BEHIND).sum() > 0.5 * b
    tol = 1e-4
    sm, bm = modes == SURFACE, modes == BEHIND
    lo, hi = (surface - SAMPLING.surface_band).clamp(near, far), (surface + SAMPLING.surface_band).clamp(near, far)
    assert ((t[sm] >= lo[sm] - tol) & (t[sm] <= hi[sm] + tol)).all()
    assert (t[sm] < surface[sm]).sum() > 0.3 * sm.sum() and (t[sm] > surface[sm]).sum() > 0.3 * sm.sum()
    lo, hi = surface.clamp(near, far), (surface + SAMPLING.behind_max).clamp(near, far)
    assert ((t[bm] >= lo[bm] - tol) & (t[bm] <= hi[bm] + tol)).all()
    assert t[bm].max() - surface[bm].min() > 0  # behind points reach into the occluded space

    # Consistency of frames and depth: in front of the first surface is free, just behind it solid (except where a
    # ray grazes an edge or a thin part).
    in_front = t < surface - 1e-3
    assert in_front.sum() > 500 and (labels[in_front] == 0).all()
    just_behind = (t > surface + 1e-3) & (t < surface + 0.05)
    assert just_behind.sum() > 30 and labels[just_behind].mean() > 0.97


def test_sampling_is_reproducible_for_a_seed_and_fresh_per_draw_without_one(synthetic_root, dataset):
    again = labelled(synthetic_root)
    for i in range(2):
        assert torch.equal(dataset[i]["occupancy_points"], again[i]["occupancy_points"])
        assert torch.equal(dataset[i]["occupancy_labels"], again[i]["occupancy_labels"])
    other = labelled(synthetic_root, OccupancySampling(points_per_element=3000, seed=1))
    assert not torch.equal(dataset[0]["occupancy_points"], other[0]["occupancy_points"])
    assert not torch.equal(dataset[0]["occupancy_points"], dataset[1]["occupancy_points"])

    # seed=None: drawn from torch's global generator, so a seeded run repeats and each draw is new.
    free = labelled(synthetic_root, OccupancySampling(points_per_element=256, seed=None))
    torch.manual_seed(0)
    first, second = free[0]["occupancy_points"], free[0]["occupancy_points"]
    torch.manual_seed(0)
    assert torch.equal(free[0]["occupancy_points"], first)
    assert not torch.equal(first, second)

    # ... also in DataLoader workers (PyTorch seeds each worker from the main generator).
    def draw(num_workers):
        torch.manual_seed(0)
        loader = DataLoader(free, batch_size=1, num_workers=num_workers, shuffle=False)
        return torch.cat([batch["occupancy_points"] for batch in loader])

    two_workers = draw(2)
    assert torch.equal(two_workers, draw(2))
    assert not torch.equal(two_workers[0], two_workers[1])


def test_each_sequence_scene_is_loaded_once(dataset):
    dataset[0]
    scene = dataset.scene(dataset.base.datapoints[0][0])
    dataset[1]
    assert dataset.scene(dataset.base.datapoints[1][0]) is scene and len(dataset._scenes) == 1


def test_a_tree_without_the_exact_scene_is_refused_naming_the_file(synthetic_root, tmp_path):
    real_like = tmp_path / "kitti360_like"
    real_like.mkdir()
    for child in synthetic_root.iterdir():
        if child.name != "ground_truth":  # a real KITTI-360 tree has everything but the exact scene
            (real_like / child.name).symlink_to(child)
    data = {"name": "kitti_360", "root": str(real_like), "split_dir": str(synthetic_root / "splits"),
            "image_size": [48, 176], "frames": {}, "color_jitter": False, "num_workers": 0}
    with pytest.raises(MissingSceneError) as error:
        build_dataset(data, {"cache_dir": None}, "train", train=True, occupancy_labels={"points_per_element": 8})
    message = str(error.value)
    expected = real_like / "ground_truth" / "2013_05_28_drive_0000_sync" / "scene.json"
    assert str(expected) in message and "synthetic city's exact scene" in message and "supervised" in message
    assert isinstance(error.value, MissingFileError) and isinstance(error.value, FileNotFoundError)
    # Without labels the same tree is an ordinary dataset.
    assert len(build_dataset(data, {"cache_dir": None}, "train")) > 0


def test_sampling_config_rejects_bad_values_by_name():
    with pytest.raises(ValueError, match="points_per_elemnt"):
        sampling_from_config({"points_per_elemnt": 10})
    with pytest.raises(ValueError, match="sum to 1"):
        OccupancySampling(uniform_share=0.5, surface_share=0.5, behind_share=0.5)
    with pytest.raises(ValueError, match="near < far"):
        OccupancySampling(near=10.0, far=5.0)
    assert OccupancySampling(points_per_element=7).counts() == (3, 3, 1)
    assert np.sum(OccupancySampling(points_per_element=4096).counts()) == 4096
