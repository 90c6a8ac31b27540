"""The oracle-loss diagnostic (scripts/oracle_loss.py): the training objective scored on exact density fields."""

from __future__ import annotations

import json
import math

import pytest
import torch

from scripts import oracle_loss


def _cfg(root):
    cfg = oracle_loss.compose_config(["preset=debug", f"data.root={root}", "data.image_size=[32,120]",
                                      "loss.rays_per_element=64", "renderer.num_samples=24"])
    cfg["data"]["num_workers"] = 0
    return cfg


def test_oracle_fields_agree_where_the_input_view_sees_and_differ_behind(synthetic_root):
    cfg = _cfg(synthetic_root)
    summary = oracle_loss.score(cfg, ["truth", "shadow", "thin"], batches=2, seed=0, thin_m=0.3, log=lambda s: None)
    again = oracle_loss.score(cfg, ["truth"], batches=2, seed=0, thin_m=0.3, log=lambda s: None)
    fields = summary["fields"]
    # Same batches and draws: the truth scores the same every time, and the paired differences are those of the
    # per-field means.
    assert fields["truth"]["mean"] == again["fields"]["truth"]["mean"]
    for name in ("shadow", "thin"):
        diff = fields[name]["minus_truth"]["total"]["mean"]
        assert diff == pytest.approx(fields[name]["mean"]["total"] - fields["truth"]["mean"]["total"], abs=1e-9)
    # The fields are different scenes behind the surfaces, so at least one of them changes the loss.
    assert any(fields[n]["minus_truth"]["total"]["mean"] != 0.0 for n in ("shadow", "thin"))
    assert all(math.isfinite(v) for v in fields["truth"]["mean"].values())


def test_oracle_densities_follow_their_definitions(synthetic_root):
    from datasets.synthetic import load_scene

    sequence = sorted(p.name for p in (synthetic_root / "ground_truth").iterdir())[0]
    scene = load_scene(synthetic_root, sequence)
    fields = {k: oracle_loss.OracleField(synthetic_root, k) for k in oracle_loss.FIELDS}
    points = torch.rand(4000, 3) * torch.tensor([40.0, 12.0, 4.0]) - torch.tensor([0.0, 6.0, 0.5])
    origin = torch.tensor([0.0, 0.0, 1.5], dtype=torch.float64)
    pose = torch.eye(4, dtype=torch.float64)
    pose[:3, 3] = origin
    sigma = {}
    for name, field in fields.items():
        field.sequences, field.world_from_view0 = [sequence], pose[None]
        sigma[name] = field.sigma_of(points, 0) > 0
    occupied = scene.occupied(points + origin.float())  # the field's points are in the input view's frame
    assert torch.equal(sigma["truth"], occupied)
    assert (sigma["shadow"] >= occupied).all() and (sigma["thin"] <= occupied).all()
    assert sigma["shadow"].sum() > occupied.sum() and sigma["thin"].sum() < occupied.sum()


def test_summary_differences_and_command_line_errors(tmp_path):
    rows = {"truth": [{"total": 1.0}, {"total": 2.0}], "shadow": [{"total": 1.5}, {"total": 1.5}]}
    out = oracle_loss.summarise(rows)
    d = out["fields"]["shadow"]["minus_truth"]["total"]
    assert d["mean"] == 0.0 and d["wins_of_truth"] == 1 and d["stderr"] == pytest.approx(0.5)
    assert "shadow" in oracle_loss.table(out)
    with pytest.raises(SystemExit):
        oracle_loss.main(["--fields", "truth,hollow"])
    with pytest.raises(ValueError, match="unknown oracle field 'hollow'"):
        oracle_loss.OracleField(tmp_path, "hollow")
    json.dumps(out)


def _oracle_step(root, seed=3, **objective_changes):
    import dataclasses

    from torch.utils.data import DataLoader

    from bts.rendering.renderer import RendererConfig
    from bts.training.engine import objective_config
    from bts.training.objective import training_step
    from datasets.factory import build_dataset, dataset_root

    cfg = _cfg(root)
    cfg["loss"]["rays_per_element"] = 1024
    dataset = build_dataset(cfg["data"], cfg["paths"], "train", train=True)
    batch = next(iter(DataLoader(dataset, batch_size=2, num_workers=0)))
    field = oracle_loss.OracleField(dataset_root(cfg["data"], cfg["paths"]), "truth")
    field.sequences = [dataset.datapoints[int(j)][0] for j in batch["index"]]
    field.world_from_view0 = batch["world_from_view0"].double()
    objective = dataclasses.replace(objective_config(cfg), **objective_changes)
    with torch.no_grad():
        out = training_step(field, batch, objective, RendererConfig(**cfg["renderer"]),
                            generator=torch.Generator().manual_seed(seed))
    return out, batch, objective


def test_every_loss_patch_knows_its_view_and_the_camera_split_adds_up(synthetic_root):
    """``StepOutput.patch_views`` names the view each loss patch was cast from (its rays start at that view's
    camera centre), and the per-camera photometric terms of the diagnostic recombine into the loss's own term."""
    out, batch, objective = _oracle_step(synthetic_root)
    b, p = out.patch_views.shape
    ps = objective.patch_size
    origins = out.rays.origins.reshape(b, p, ps * ps, 3)[:, :, 0]
    centres = batch["cam_to_world"][torch.arange(b)[:, None], out.patch_views, :3, 3]
    torch.testing.assert_close(origins, centres.to(origins.dtype), atol=1e-4, rtol=0)
    views = set(out.patch_views.unique().tolist())
    assert len(views) > 1 and views <= set(range(batch["cam_to_world"].shape[1]))

    split = oracle_loss.by_camera(out)
    assert set(split) == {"photometric_perspective", "photometric_fisheye"}  # both kinds cast loss patches
    fisheye = float(torch.isin(out.patch_views, torch.tensor(oracle_loss.FISHEYE_VIEWS)).float().mean())
    combined = (split.get("photometric_perspective", 0.0) * (1 - fisheye)
                + split.get("photometric_fisheye", 0.0) * fisheye)
    assert combined == pytest.approx(float(out.loss.terms["photometric"]), rel=1e-5)


def test_fisheye_share_sets_where_the_loss_patches_come_from(synthetic_root):
    """``loss.fisheye_share``: that share of the loss patches from the fisheye views (views 4-7), the rest from the
    perspective ones; ``null`` keeps the frame-proportional draw (half each with 8 views)."""
    fisheye = torch.tensor(oracle_loss.FISHEYE_VIEWS)
    for share in (0.0, 1.0):
        out, _, _ = _oracle_step(synthetic_root, fisheye_share=share)
        assert bool(torch.isin(out.patch_views, fisheye).all()) == (share == 1.0)
        assert bool(torch.isin(out.patch_views, fisheye).any()) == (share == 1.0)
    out, _, _ = _oracle_step(synthetic_root, fisheye_share=0.75)
    drawn = float(torch.isin(out.patch_views, fisheye).float().mean())  # 2 x 16 patches, binomial spread
    assert 0.55 <= drawn <= 0.95
    plain, _, _ = _oracle_step(synthetic_root)
    assert set(plain.patch_views.unique().tolist()) - set(range(4))  # the default draws fisheye patches too
    with pytest.raises(ValueError, match="fisheye_share"):
        _oracle_step(synthetic_root, fisheye_share=1.5)
