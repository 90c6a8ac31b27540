"""Distillation from the exact scene (scripts/perfect_teacher.py): the student learns from the distillation alone."""

from __future__ import annotations

import json

import pytest
import torch

from bts.inference import load_model
from datasets.synthetic import load_scene
from scripts import oracle_loss, perfect_teacher


def _cfg(root):
    cfg = oracle_loss.compose_config(["preset=debug", f"data.root={root}", "data.image_size=[48,176]",
                                      "loss.rays_per_element=64", "renderer.num_samples=8", "trainer.batch_size=1"])
    cfg["data"]["num_workers"] = 0
    return cfg


@pytest.mark.parametrize("loss", ["l1", "bce", "vis_bce"])
def test_the_student_trains_on_the_distillation_term_alone_and_is_an_ordinary_bts_checkpoint(synthetic_root,
                                                                                            tmp_path, loss):
    out = tmp_path / loss
    history = perfect_teacher.train(_cfg(synthetic_root), loss, steps=2, out=out, lr=1e-3, seed=0,
                                    checkpoint_every=1, log=lambda s: None)
    assert history and history[0]["step"] == 1 and history[0]["loss"] > 0
    assert 0.0 <= history[0]["predicted_occupied"] <= 1.0
    log = json.loads((out / "log.json").read_text())
    assert log["loss"] == loss and log["steps"] == 2
    first, second = (load_model(out / "checkpoints" / f"step_{s}.pt") for s in (1, 2))
    assert first.kind == "bts" and first.run_config is not None  # evaluation reads the run's renderer and data
    changed = [k for k, v in first.model.state_dict().items() if not torch.equal(v, second.model.state_dict()[k])]
    assert any(k.startswith("field.head.") for k in changed)  # the distillation gradient reaches the head


def test_the_teacher_is_the_exact_scene(synthetic_root):
    sequence = sorted(p.name for p in (synthetic_root / "ground_truth").iterdir())[0]
    model = perfect_teacher.PerfectTeacherStudent(torch.nn.Identity(), synthetic_root, "bce")
    model.teacher.sequences = [sequence]
    model.teacher.world_from_view0 = torch.eye(4, dtype=torch.float64)[None]
    points = torch.rand(1, 3000, 3) * torch.tensor([40.0, 12.0, 4.0]) - torch.tensor([0.0, 6.0, 0.5])
    raw = model.teacher_raw(points)[0]
    occupied = load_scene(synthetic_root, sequence).occupied(points[0])
    assert occupied.any() and (~occupied).any()
    assert torch.equal(raw > 0, occupied)
    assert torch.nn.functional.softplus(raw[~occupied]).max() < 1e-12
