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
    logger.log_images(SimpleNamespace(state=SimpleNamespace(last_step=out, iteration=7)))
    image = images["train/patches_target_reconstruction_distance"]
    tile = 8 * PATCH_ZOOM + 2
    assert image.shape == (3, 3 * tile, 8 * tile)
    end = 1 + 8 * PATCH_ZOOM
    target = image[:, 1:end:PATCH_ZOOM, 1:end:PATCH_ZOOM]  # the first patch, one pixel per texel
    torch.testing.assert_close(target, out.target[0, 0].clamp(0, 1))
