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


def test_the_study_dry_run_trains_each_loss_and_seed_and_evaluates_every_budget(capsys, tmp_path):
    from scripts.perfect_teacher_study import main

    main(["--dry-run", "--out", str(tmp_path), "--losses", "l1", "bce", "--seeds", "0", "1", "--budgets", "5", "15"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[reproduce]")]
    train = [line for line in lines if "scripts.perfect_teacher" in line]
    assert len(train) == 4 and sum("--loss l1 " in line for line in train) == 2
    assert all("--steps 15 --checkpoint-every 5" in line and "preset=reproduce" in line for line in train)
    evals = [line for line in lines if "evaluation/occupancy.py" in line]
    assert len(evals) == 4 * 2 + 1 and sum("prediction=empty" in line for line in evals) == 1
    assert all("protocol=exact" in line and "save_predictions=true" in line for line in evals)
    with pytest.raises(ValueError, match="multiple"):
        main(["--dry-run", "--out", str(tmp_path), "--budgets", "5", "12"])


@pytest.mark.slow
def test_the_study_smoke_runs_every_stage(synthetic_root, tmp_path):
    from tests.reproduce.smoke import run_ok, smoke_command

    out = tmp_path / "study"
    args, env = smoke_command("scripts/perfect_teacher_study.py",
                              ["--losses", "l1", "bce", "--seeds", "0", "--out", str(out)], synthetic_root, tmp_path)
    run_ok(args, env)
    summary = json.loads((out / "results.json").read_text())
    assert set(summary["runs"]) == {"l1_seed0", "bce_seed0"}
    for info in summary["runs"].values():
        assert [p["steps"] for p in info["points"]] == [1, 2]
        assert 0.0 <= info["points"][-1]["exact"]["ie_acc"] <= 1.0
        assert 0.0 <= info["points"][-1]["predicted_occupied"] <= 1.0
    assert summary["baselines"][0]["exact"]["ie_rec"] == 1.0
    table = (out / "results.md").read_text()
    assert "| perfect teacher, kd.loss=bce | 2 | 0 |" in table and "| l1_seed0 |" in table
