"""A tiny BTS fitted to a few synthetic frames learns: lower photometric loss and better depth
(docs/decisions.md §10)."""

import torch
from torch.utils.data import default_collate

from bts.models import build_model
from bts.rendering.renderer import RendererConfig, render_depth
from bts.training.objective import ObjectiveConfig, training_step
from datasets.kitti_360 import Kitti360Config, Kitti360Dataset, read_calibration
from datasets.synthetic import load_scene

OBJECTIVE = ObjectiveConfig(rays_per_element=1024)
RENDERER = RendererConfig(num_samples=32)


def evaluate(model, batch, dataset, indices, root):
    """Photometric loss on fixed patches (no flip) and abs_rel of the rendered depth against the exact depth."""
    model.eval()
    with torch.no_grad():
        loss = training_step(model, batch, OBJECTIVE, RENDERER, torch.Generator().manual_seed(123), flip=False)
        encoded = model.encode(batch["images"], batch["intrinsics"], batch["cam_to_world"], [0])
        h, w = batch["images"].shape[-2:]

        depth = render_depth(model.density_fn(encoded), batch["intrinsics"][:, 0], batch["cam_to_world"][:, 0],
                             h, w, RENDERER)
    errors = []
    for b, i in enumerate(indices):
        seq, row, side = dataset.datapoints[i]
        exact = load_scene(root, seq).depth("image_00" if side == "l" else "image_01",
                                            int(dataset.poses[seq].frame_ids[row]))
        valid = torch.isfinite(exact) & (exact > 3) & (exact < 40)
        errors.append(((depth[b][valid] - exact[valid]).abs() / exact[valid]).mean())
    model.train()
    return loss.loss.terms["photometric"].item(), torch.stack(errors).mean().item()


def test_overfitting_a_few_frames_improves_loss_and_depth(synthetic_root):
    torch.manual_seed(0)
    w, h = read_calibration(synthetic_root / "calibration").rect_size["image_00"]
    dataset = Kitti360Dataset(synthetic_root, synthetic_root / "splits" / "train_files.txt",
                              Kitti360Config(image_size=(h, w)))
    # Two frames, each as both stereo roles: the street's first frames are lined with parked vans whose large,
    # plain flanks give a single frame little photometric signal (generator version 3).
    indices = [0, 1, 2, 3]
    batch = default_collate([dataset[i] for i in indices])
    model = build_model({"kind": "bts", "encoder": {"depth": 18, "pretrained": False}, "field": {}})
    loss0, abs_rel0 = evaluate(model, batch, dataset, indices, synthetic_root)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)
    generator = torch.Generator().manual_seed(1)
    for _ in range(100):
        out = training_step(model, batch, OBJECTIVE, RENDERER, generator)
        optimizer.zero_grad()
        out.loss.total.backward()
        optimizer.step()
    loss1, abs_rel1 = evaluate(model, batch, dataset, indices, synthetic_root)
    assert loss1 <= 0.8 * loss0, (loss0, loss1)
    assert abs_rel1 <= 0.7 * abs_rel0, (abs_rel0, abs_rel1)


def test_gradients_reach_the_encoder(synthetic_root):
    dataset = Kitti360Dataset(synthetic_root, synthetic_root / "splits" / "train_files.txt",
                              Kitti360Config(image_size=(64, 240)))
    model = build_model({"kind": "bts", "encoder": {"depth": 18, "pretrained": False}, "field": {}})
    out = training_step(model, default_collate([dataset[0]]), ObjectiveConfig(rays_per_element=256),
                        RendererConfig(num_samples=16))
    out.loss.total.backward()
    assert model.encoder.backbone.net.conv1.weight.grad.abs().sum() > 0
    assert model.field.head.lin_in.weight.grad.abs().sum() > 0
