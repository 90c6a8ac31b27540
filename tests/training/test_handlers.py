import os

from bts.training.handlers import _link_or_copy


def test_last_checkpoint_survives_rotation_and_is_not_written_through(tmp_path):
    step = tmp_path / "step_2.pt"
    step.write_bytes(b"state of step 2")
    last = tmp_path / "last.pt"
    last.write_bytes(b"older state")
    _link_or_copy(step, last)
    assert last.read_bytes() == b"state of step 2"
    # A later atomic save of the step file (write elsewhere, then replace) must not change last.pt.
    (tmp_path / "new").write_bytes(b"rewritten")
    os.replace(tmp_path / "new", step)
    assert last.read_bytes() == b"state of step 2"
    step.unlink()  # rotation of old step files
    assert last.read_bytes() == b"state of step 2"
    assert not (tmp_path / "last.pt.tmp").exists()


def test_the_training_patch_image_is_large_enough_to_see(synthetic_root, tmp_path):
    """Three rows (target, closest reconstruction, distance) of eight 8x8 patches, each enlarged 8x: 64-pixel tiles
    instead of the 24x64-pixel strip an 8x8 patch gave."""
    from types import SimpleNamespace

    import torch
    from ignite.engine import Engine
    from torch.utils.data import default_collate

    from scripts.benchmarks import model_config
    from bts.models import build_model
    from bts.rendering.renderer import RendererConfig
    from bts.training.handlers import PATCH_ZOOM, Logger
    from bts.training.objective import ObjectiveConfig, training_step
    from datasets.kitti_360 import Kitti360Config, Kitti360Dataset

    torch.manual_seed(0)
    model = build_model(model_config("bts", 18)).train()
    dataset = Kitti360Dataset(synthetic_root, synthetic_root / "splits/train_files.txt",
                              Kitti360Config(image_size=(64, 240)))
    with torch.no_grad():
        out = training_step(model, default_collate([dataset[0]]), ObjectiveConfig(rays_per_element=512),
                            RendererConfig(num_samples=16), torch.Generator().manual_seed(0))
    logger = Logger(tmp_path, every=1)
    images = {}
    logger.writer = SimpleNamespace(add_image=lambda tag, image, step: images.setdefault(tag, image))
    engine = Engine(lambda e, b: None)  # an ignite engine standing after step 7, as the handler sees it
    engine.state.last_step, engine.state.iteration = out, 7
    logger.log_images(engine)
    image = images["train/patches_target_reconstruction_distance"]
    tile = 8 * PATCH_ZOOM + 2
    assert image.shape == (3, 3 * tile, 8 * tile)
    end = 1 + 8 * PATCH_ZOOM
    target = image[:, 1:end:PATCH_ZOOM, 1:end:PATCH_ZOOM]  # the first patch, one pixel per texel
    torch.testing.assert_close(target, out.target[0, 0].clamp(0, 1))


class _Field:
    """A stand-in model for ``validate``: empty space, or a ground plane 1.5 m below the camera (y down)."""

    def __init__(self, empty: bool):
        import torch
        from torch import nn

        self.empty, self.training, self._module = empty, False, nn.Linear(1, 1)
        self.torch = torch

    def eval(self):
        self.training = False
        return self

    def train(self, mode=True):
        self.training = mode
        return self

    def encoder_views(self, num_views, training):
        return [0]

    def encode(self, images, intrinsics, cam_to_world, views):
        return cam_to_world[:, 0]

    def density_fn(self, cam_to_world):
        torch = self.torch

        def fn(points):
            if self.empty:
                sigma = torch.zeros(points.shape[:2])
            else:
                cam = (points - cam_to_world[:, None, :3, 3]) @ cam_to_world[:, :3, :3]
                sigma = (cam[..., 1] > 1.5).float() * 100.0
            return sigma, torch.zeros(points.shape[:2], dtype=torch.bool)

        return fn


def test_validation_warns_when_the_field_has_collapsed_to_empty_space(synthetic_root, caplog):
    import logging

    import torch

    from bts.rendering.renderer import RendererConfig
    from bts.training.handlers import COLLAPSE_FRACTION, validate
    from datasets.kitti_360 import Kitti360Config, Kitti360Dataset

    dataset = Kitti360Dataset(synthetic_root, synthetic_root / "splits/val_files.txt",
                              Kitti360Config(image_size=(32, 120), lidar_depth=True))
    cfg = RendererConfig(num_samples=16)
    with caplog.at_level(logging.WARNING, logger="bts.training.handlers"):
        empty = validate(_Field(empty=True), dataset, cfg, device=torch.device("cpu"), num_samples=2)
    assert empty["far_fraction"] > COLLAPSE_FRACTION and "collapsed to empty space" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bts.training.handlers"):
        ground = validate(_Field(empty=False), dataset, cfg, device=torch.device("cpu"), num_samples=2)
    assert ground["far_fraction"] < 0.9 and "collapsed" not in caplog.text  # the sky is far, the road is not
