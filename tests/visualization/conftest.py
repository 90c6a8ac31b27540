"""Fixtures of the rendering tests: an untrained tiny BTS checkpoint in a run folder on the tiny city, and the exact
synthetic scene standing in for a model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import yaml

from bts.checkpoints.format import save_checkpoint
from bts.geometry import transform_points
from bts.models.factory import build_model
from bts.rendering.renderer import RendererConfig
from bts.visualization.frames import InputView
from datasets.factory import build_dataset
from datasets.synthetic import load_scene
from tests.visualization.helpers import CONFIGS, IMAGE_SIZE, tiny_model_config

@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, synthetic_root) -> Path:
    """``<run>/checkpoints/last.pt`` with ``<run>/config.yaml`` pointing at the tiny synthetic city."""
    torch.manual_seed(0)
    cfg = tiny_model_config()
    model = build_model(cfg)
    run = tmp_path_factory.mktemp("bts") / "run"
    run_config = {
        "data": {**yaml.safe_load((CONFIGS / "data" / "kitti_360.yaml").read_text()), "name": "synthetic",
                 "root": str(synthetic_root), "image_size": list(IMAGE_SIZE), "num_workers": 0},
        "model": cfg,
        "renderer": {**dataclasses.asdict(RendererConfig()), "num_samples": 8},
    }
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(run_config))
    return save_checkpoint(run / "checkpoints" / "last.pt", model_kind="bts", config=cfg, model=model.state_dict())


class ExactSceneModel:
    """Stands in for a network: the density is large inside the true synthetic scene and zero outside."""

    def __init__(self, scene, world_from_view0: torch.Tensor, sigma: float = 100.0):
        self.scene, self.world_from_view0, self.sigma = scene, world_from_view0.double(), sigma

    def encode(self, images, intrinsics, cam_to_world):
        return None

    def density_fn(self, encoded):
        def fn(points):
            world = transform_points(self.world_from_view0, points[0].double()).float()
            occupied = self.scene.occupied(world)
            return (occupied.float() * self.sigma)[None], torch.zeros_like(occupied)[None]

        return fn


@pytest.fixture(scope="session")
def exact_scene(synthetic_root):
    """The first test datapoint of the tiny city at its native 64x240 as an input view, with its exact model."""
    data = yaml.safe_load((CONFIGS / "data" / "kitti_360.yaml").read_text())
    data.update(name="synthetic", root=str(synthetic_root), image_size=[64, 240],
                frames={"num_timesteps": 1, "stereo": False, "fisheye": False, "fisheye_offset": 10})
    dataset = build_dataset(data, {"cache_dir": None}, "test")
    item = dataset[0]
    scene = load_scene(synthetic_root, dataset.datapoints[0][0])
    view = InputView("exact", item["images"], item["intrinsics"], item["cam_to_world"], item["world_from_view0"])
    return view, ExactSceneModel(scene, item["world_from_view0"]), scene, int(item["frame_ids"][0])
