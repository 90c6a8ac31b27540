"""The exact synthetic scene as a 'model' for the occupancy evaluation (an oracle that scores 1 against the exact
truth), shared by the occupancy and protocol tests."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from bts.fields import DensityOutput, EncodedViews
from bts.inference import LoadedModel
from datasets.kitti_360 import Kitti360Config, Kitti360Dataset
from datasets.kitti_360.frames import FrameSelection
from datasets.synthetic import load_scene
from evaluation.gt_cache import GroundTruthCache
from evaluation.occupancy import evaluate_occupancy


class Oracle(nn.Module):
    """A 'model' whose density is the exact occupancy of the synthetic scene (or zero everywhere); it keeps the model
    contract (bts/models/contract.py), which the evaluation's type annotations check."""

    kind = "bts"

    def __init__(self, root: Path, empty: bool = False):
        super().__init__()
        self.root, self.empty = root, empty
        self.world_from_view0: torch.Tensor | None = None
        self.sequence: str | None = None
        self._dummy = nn.Parameter(torch.zeros(1))

    def encoder_views(self, num_views, training):
        return [0]

    def encode(self, images, intrinsics, cam_to_world, views, flip=False):
        # Feature-less views: the density comes from the scene at the frame's pose (self.world_from_view0).
        b = images.shape[0]
        return EncodedViews.create(torch.zeros(b, len(views), 1, 1, 1), intrinsics[:, views], cam_to_world[:, views])

    def density(self, points, encoded):
        sigma, invalid = self.density_fn(encoded)(points)
        return DensityOutput(sigma, sigma, invalid)

    def density_fn(self, encoded):
        scene = load_scene(self.root, self.sequence)
        world_from_view0 = self.world_from_view0

        def fn(points):
            b, n, _ = points.shape
            if self.empty:
                return torch.zeros(b, n), torch.zeros(b, n, dtype=torch.bool)
            p = points.reshape(-1, 3).double() @ world_from_view0[:3, :3].T + world_from_view0[:3, 3]
            sigma = scene.occupied(p.float()).float().reshape(b, n) * 1000.0
            return sigma, torch.zeros(b, n, dtype=torch.bool)

        return fn


class Recording(Kitti360Dataset):
    """Tells the oracle which frame it is looking at."""

    oracle: Oracle

    def __getitem__(self, index):
        item = super().__getitem__(index)
        self.oracle.world_from_view0 = item["world_from_view0"]
        self.oracle.sequence = self.datapoints[index][0]
        return item


def dataset(root: Path, cls=Kitti360Dataset):
    cfg = Kitti360Config(image_size=(32, 120), frames=FrameSelection(num_timesteps=1, stereo=False, fisheye=False))
    return cls(root, root / "splits" / "test_files.txt", cfg)


def oracle_run(root, protocol, empty=False, cache=None, **kw):
    ds = dataset(root, Recording)
    ds.oracle = Oracle(root, empty)
    loaded = LoadedModel(ds.oracle, "bts", {}, Path("oracle"))
    return evaluate_occupancy(loaded, ds, protocol, cache or GroundTruthCache(None), progress=False, **kw)
