"""KDBTS: the distillation loss, freezing, the student as the rendered model, and -cn mvbts -> -cn kdbts."""

import subprocess
import sys

import pytest
import torch
from torch.utils.data import default_collate

from bts.checkpoints.format import CheckpointError, load_checkpoint, load_state_strict
from bts.fields import EncodedViews
from bts.losses import LossWeights
from bts.models import build_model
from bts.losses.distillation import distillation_loss
from bts.rendering.renderer import RendererConfig
from bts.training.objective import ObjectiveConfig, training_step
from bts.training.teacher import load_teacher
from datasets.kitti_360 import Kitti360Config, Kitti360Dataset
from tests.training.helpers import REPO, debug_config, run_train


def test_distillation_loss_is_zero_for_equal_heads_and_never_reaches_the_teacher():
    s = torch.randn(100, requires_grad=True)
    t = s.detach().clone().requires_grad_()
    assert distillation_loss(s, t).abs().max() == 0
    loss = distillation_loss(s, t + 1.0).mean()
    loss.backward()
    assert t.grad is None and s.grad.abs().sum() > 0
    # densities are clipped to [0, 2]: beyond, no difference and no gradient
    assert distillation_loss(torch.tensor([10.0]), torch.tensor([20.0])).item() == 0


@pytest.fixture(scope="module")
def kd_config(synthetic_root):
    return debug_config(synthetic_root, name="kdbts")


def test_frozen_recipe_changes_only_the_student(synthetic_root, kd_config):
    model = build_model(kd_config["model"])
    model.configure("frozen", student_photometric=False)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ds = Kitti360Dataset(synthetic_root, synthetic_root / "splits/train_files.txt",
                         Kitti360Config(image_size=(64, 240)))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    objective = ObjectiveConfig(rays_per_element=256, weights=LossWeights(distillation=5e-3))
    out = training_step(model, default_collate([ds[0]]), objective, RendererConfig(num_samples=16))
    assert out.loss.terms["distillation"] > 0
    opt.zero_grad()
    out.loss.total.backward()
    opt.step()
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("student_head.") for k in changed), changed


def test_kd_loss_selects_the_distillation_term_of_the_step(synthetic_root, kd_config):
    ds = Kitti360Dataset(synthetic_root, synthetic_root / "splits/train_files.txt",
                         Kitti360Config(image_size=(64, 240)))
    batch = default_collate([ds[0]])
    objective = ObjectiveConfig(rays_per_element=128, weights=LossWeights(distillation=1.0))
    model = build_model(kd_config["model"])
    terms = {}
    for loss in ("l1", "bce", "vis_bce"):
        model.configure("frozen", student_photometric=False, loss=loss)
        model.train()
        out = training_step(model, batch, objective, RendererConfig(num_samples=16),
                            generator=torch.Generator().manual_seed(0))
        terms[loss] = out.loss.terms["distillation"].item()
        if loss == "vis_bce":  # a gradient reaches the student head only
            out.loss.total.backward()
            assert model.student_head.lin_in.weight.grad.abs().sum() > 0
            assert all(p.grad is None for p in model.field.parameters())
    assert all(v > 0 for v in terms.values()) and len(set(terms.values())) == 3, terms
    with pytest.raises(ValueError, match="kd.loss must be one of"):
        model.configure("frozen", student_photometric=False, loss="l2")


def test_rendered_density_comes_from_the_student(kd_config):
    model = build_model(kd_config["model"]).eval()
    enc = EncodedViews.create(torch.randn(1, 1, 64, 12, 40), torch.eye(3).expand(1, 1, 3, 3),
                              torch.eye(4).expand(1, 1, 4, 4))
    points = torch.randn(1, 100, 3) + torch.tensor([0.0, 0.0, 6.0])
    with torch.no_grad():
        tokens = model.field.tokens(points, enc)
        want = model.student_head(tokens.tokens[:, 0]).squeeze(-1)
        got = model.density(points, enc).raw
        for p in model.field.head.parameters():  # the teacher has no say in what is rendered
            p.add_(1.0)
        again = model.density(points, enc).raw
    assert torch.equal(got, want) and torch.equal(got, again)
    assert model.encoder_views(8, training=False) == [0]


def test_missing_teacher_names_the_command(kd_config, tmp_path):
    with pytest.raises(CheckpointError, match=r"python train.py -cn mvbts"):
        load_teacher(build_model(kd_config["model"]), kd_config["model"], tmp_path / "nope.pt")


def test_mvbts_then_kdbts_then_single_view_export(synthetic_root, tmp_path):
    run_train(["-cn", "mvbts", "preset=debug", f"data.root={synthetic_root}", f"paths.output_dir={tmp_path}"],
              cwd=tmp_path)
    teacher = load_checkpoint(tmp_path / "mvbts/latest/checkpoints/last.pt", kinds=("mvbts",))
    run_train(["-cn", "kdbts", "preset=debug", f"data.root={synthetic_root}", f"paths.output_dir={tmp_path}"],
              cwd=tmp_path)
    student = load_checkpoint(tmp_path / "kdbts/latest/checkpoints/last.pt", kinds=("kdbts",))
    assert student["trainer"]["iteration"] == 4
    # frozen recipe: encoder and teacher are exactly the MVBTS ones
    for k, v in teacher["model"].items():
        assert torch.equal(student["model"][k], v), k
    out = subprocess.run([sys.executable, "-m", "scripts.export_single_view",
                          str(tmp_path / "kdbts/latest/checkpoints/last.pt"), "--out", str(tmp_path / "sv.pt")],
                         cwd=REPO, capture_output=True, text=True, check=True)
    assert "sv.pt" in out.stdout
    single = load_checkpoint(tmp_path / "sv.pt", kinds=("bts",))
    model = build_model(single["config"], pretrained=False)
    load_state_strict(model, single["model"], "sv.pt")
    assert torch.equal(model.field.head.lin_in.weight, student["model"]["student_head.lin_in.weight"])


def test_a_teacher_trained_on_other_views_is_named_in_a_warning(kd_config, tmp_path, caplog):
    import copy
    import logging

    from bts.checkpoints.format import save_checkpoint

    teacher_cfg = copy.deepcopy(kd_config["model"])
    teacher_cfg["kind"] = "mvbts"
    teacher_cfg.pop("student", None)
    teacher = build_model(teacher_cfg)
    path = tmp_path / "teacher.pt"
    seeing = dict(teacher_cfg, views={"num_train_views": 4, "train_candidates": [1, 2, 3, 4, 5, 6, 7],
                                      "eval_views": "all"})
    save_checkpoint(path, model_kind="mvbts", config=seeing, model=teacher.state_dict())
    student = build_model(kd_config["model"])
    with caplog.at_level(logging.WARNING, logger="bts.training.teacher"):
        load_teacher(student, kd_config["model"], path)
    assert "trained encoding views {'num_train_views': 4, 'train_candidates': [1, 2, 3, 4, 5, 6, 7]}" in caplog.text
    loaded = student.encoder.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in teacher.encoder.state_dict().items())  # loaded all the same
    caplog.clear()
    save_checkpoint(path, model_kind="mvbts", config=teacher_cfg, model=teacher.state_dict())
    with caplog.at_level(logging.WARNING, logger="bts.training.teacher"):
        load_teacher(build_model(kd_config["model"]), kd_config["model"], path)
    assert "trained encoding views" not in caplog.text


def test_the_seeing_teacher_encodes_side_fisheyes_and_trains(synthetic_root, tmp_path):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from bts.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose(config_name="mvbts", overrides=["preset=debug", "model/views=seeing"])
    model = build_model(OmegaConf.to_container(cfg.model, resolve=True))
    torch.manual_seed(0)
    drawn = {v for _ in range(30) for v in model.encoder_views(8, training=True)}
    assert drawn == set(range(8)) and model.encoder_views(8, training=False) == list(range(8))
    run_train(["-cn", "mvbts", "preset=debug", "model/views=seeing", "trainer.max_steps=2",
               f"data.root={synthetic_root}", f"paths.output_dir={tmp_path}"], cwd=tmp_path)
    ckpt = load_checkpoint(tmp_path / "mvbts/latest/checkpoints/last.pt", kinds=("mvbts",))
    assert ckpt["config"]["views"]["train_candidates"] == [1, 2, 3, 4, 5, 6, 7]
