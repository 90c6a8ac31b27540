"""Depth evaluation (docs/method.md §8.2): median scaling, upsampling, the crop, and evaluation/depth.py end to end."""

import csv
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from tests.evaluation.eval_fixtures import DATE, ROOT, save_untrained, write_kitti_raw_tree
from hydra import compose, initialize_config_dir

from evaluation.depth import evaluate_frame, run, upsample_nearest
from evaluation.metrics import DEPTH_METRICS, depth_metrics, median_scale_ratio


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("depth_ckpt")
    return {kind: save_untrained(folder / f"{kind}.pt", kind) for kind in ("bts", "mvbts", "kdbts")}


def eval_config(*overrides):
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return compose(config_name="eval_depth", overrides=list(overrides))


def synthetic_overrides(root, checkpoint, out):
    return [f"checkpoint={checkpoint}", "data=synthetic", f"data.root={root}", "data.num_workers=0",
            "data.image_size=[64,240]", "num_samples=8", f"output_dir={out}"]


def test_median_scaling_on_hand_values():
    gt, pred = torch.tensor([2.0, 4.0, 6.0]), torch.tensor([1.0, 2.0, 3.0])
    assert median_scale_ratio(pred, gt) == pytest.approx(2.0)
    assert depth_metrics(pred, gt)["abs_rel"] == pytest.approx(0.5)
    assert depth_metrics(pred, gt, median_scaling=True)["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    # Even count: medians are the means of the two middle values; invalid GT (0, 100) is left out.
    gt, pred = torch.tensor([1.0, 2.0, 3.0, 4.0, 0.0, 100.0]), torch.tensor([1.0, 1.0, 1.0, 1.0, 9.0, 9.0])
    assert median_scale_ratio(pred, gt) == pytest.approx(2.5)
    expected = (1.5 / 1 + 0.5 / 2 + 0.5 / 3 + 1.5 / 4) / 4
    assert depth_metrics(pred, gt, median_scaling=True)["abs_rel"] == pytest.approx(expected)


def test_prediction_is_clamped_after_median_scaling():
    gt, pred = torch.tensor([70.0, 79.0]), torch.tensor([1.0, 1.2])
    s = 74.5 / 1.1  # 67.7 and 81.3: the second is clamped to 80
    expected = (abs(s - 70) / 70 + abs(80 - 79) / 79) / 2
    assert depth_metrics(pred, gt, median_scaling=True)["abs_rel"] == pytest.approx(expected)


def test_nearest_upsampling_repeats_pixels():
    depth = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    up = upsample_nearest(depth, (4, 6))
    assert up.shape == (4, 6)
    assert up[:2, :3].eq(1).all() and up[:2, 3:].eq(2).all() and up[2:, :3].eq(3).all() and up[2:, 3:].eq(4).all()


def test_evaluate_frame_ignores_pixels_outside_the_crop_and_without_ground_truth():
    gt = torch.full((4, 6), 10.0)
    gt[0, 0] = 0.0  # no ground truth
    gt[1, 1] = float("nan")
    pred = torch.full((2, 3), 10.0)
    crop = torch.zeros(4, 6, dtype=torch.bool)
    crop[2:, :] = True
    perfect = evaluate_frame(pred, gt, crop)
    assert perfect["abs_rel"] == 0 and perfect["valid_pixels"] == 12 and perfect["scale"] == 1.0
    pred[0, :] = 50.0  # wrong only in the rows outside the crop
    assert evaluate_frame(pred, gt, crop)["abs_rel"] == 0
    assert evaluate_frame(pred, gt)["abs_rel"] > 0
    scaled = evaluate_frame(pred * 3, gt, crop, median_scaling=True)
    assert scaled["abs_rel"] == pytest.approx(0.0, abs=1e-12) and scaled["scale"] == pytest.approx(1 / 3)


def test_script_writes_results(synthetic_root, checkpoints, tmp_path):
    out = tmp_path / "out"
    args = synthetic_overrides(synthetic_root, checkpoints["bts"], out) + ["max_frames=2"]
    proc = subprocess.run([sys.executable, "evaluation/depth.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"depth | protocol=kitti360_lidar | model=bts ({checkpoints['bts']})" in proc.stdout
    assert "data=synthetic test, 2 frames" in proc.stdout
    summary = json.loads((out / "results.json").read_text())
    assert summary["frames"] == 2 and summary["protocol"]["name"] == "kitti360_lidar"
    assert summary["protocol"]["num_samples"] == 8 and summary["data"]["image_size"] == [64, 240]
    assert all(0 < summary["metrics"][k] < math.inf for k in DEPTH_METRICS)
    with open(out / "per_frame.csv") as f:
        rows = list(csv.DictReader(f))
    seq = "2013_05_28_drive_0002_sync"
    assert [r["frame"] for r in rows] == [f"{seq}/0000000002", f"{seq}/0000000003"]
    mean = np.mean([float(r["abs_rel"]) for r in rows])
    assert summary["metrics"]["abs_rel"] == pytest.approx(mean)


def test_exact_ground_truth_median_scaling_and_model_kinds(synthetic_root, checkpoints, tmp_path):
    kd = run(eval_config(*synthetic_overrides(synthetic_root, checkpoints["kdbts"], tmp_path / "kd"), "gt=exact",
                         "median_scaling=true", "max_frames=1"), tmp_path / "kd", progress=False)
    assert kd["protocol"]["name"] == "exact" and kd["model"]["description"] == "kdbts"
    assert kd["median_scale"]["mean"] > 0 and math.isfinite(kd["metrics"]["abs_rel"])
    mv = run(eval_config(*synthetic_overrides(synthetic_root, checkpoints["mvbts"], tmp_path / "mv"),
                         "views=stereo", "frames=[2]"), tmp_path / "mv", progress=False)
    assert mv["model"]["description"] == "mvbts[stereo]" and mv["frames"] == 1
    assert math.isfinite(mv["metrics"]["rmse"])


def test_exact_ground_truth_needs_the_synthetic_city(synthetic_root, checkpoints, tmp_path):
    root = tmp_path / "no_gt"
    root.mkdir()
    for child in synthetic_root.iterdir():
        if child.name != "ground_truth":
            (root / child.name).symlink_to(child)
    cfg = eval_config(*synthetic_overrides(root, checkpoints["bts"], tmp_path / "o"), "gt=exact")
    with pytest.raises(ValueError, match="gt=exact needs the synthetic city's exact depth"):
        run(cfg, tmp_path / "o", progress=False)


def test_kitti_raw_eigen_protocol(checkpoints, tmp_path):
    tree = write_kitti_raw_tree(tmp_path / "raw", {3: np.zeros((0, 3)), 4: np.zeros((0, 3))})
    points = np.stack([tree.velodyne_point(c, r, 20.0) for c in range(10, 110, 3) for r in (20, 30, 38)])
    write_kitti_raw_tree(tree.root, {3: points, 4: points[:0]})
    common = ["data=kitti_raw", f"data.root={tree.root}",
              f"data.split_file={tree.root / 'split.txt'}", "data.num_workers=0", "image_size=[40,120]",
              "num_samples=8"]
    summary = run(eval_config(*common, f"checkpoint={checkpoints['bts']}", f"output_dir={tmp_path / 'o'}"),
                  tmp_path / "o", progress=False)
    assert summary["protocol"]["name"] == "kitti_raw_eigen" and summary["protocol"]["crop"] == "eigen"
    assert summary["frames"] == 2 and summary["frames_without_ground_truth"] == 1
    assert math.isfinite(summary["metrics"]["abs_rel"])
    with open(tmp_path / "o" / "per_frame.csv") as f:
        rows = list(csv.DictReader(f))
    # Rows 20, 30, 38 of a 40-row image and 34 columns in 10..109: the crop keeps rows [16, 39) and columns
    # [4, 115), so all 102 points are inside.
    assert rows[0]["frame"] == f"{DATE}/2011_09_26_drive_0001_sync/0000000003" and rows[0]["valid_pixels"] == "102"
    assert rows[1]["valid_pixels"] == "0"
    with pytest.raises(ValueError, match="KITTI Raw items have one input view; mvbts\\[stereo\\]"):
        run(eval_config(*common, f"checkpoint={checkpoints['mvbts']}", "views=stereo"), tmp_path / "o2")
    with pytest.raises(ValueError, match="gt=exact is not available on KITTI Raw"):
        run(eval_config(*common, f"checkpoint={checkpoints['bts']}", "gt=exact"), tmp_path / "o4")
    with pytest.raises(ValueError, match="data=kitti_raw needs the KITTI Raw root"):
        run(eval_config(*common, f"checkpoint={checkpoints['bts']}", "data.root=null"), tmp_path / "o3")


def test_figures_of_listed_frames_show_truth_prediction_and_error(synthetic_root, checkpoints, tmp_path):
    import imageio.v3 as iio

    out = tmp_path / "fig"
    summary = run(eval_config(*synthetic_overrides(synthetic_root, checkpoints["bts"], out), "gt=exact",
                              "frames=[0,1]", "figures=[1]"), out, progress=False)
    assert summary["frames"] == 2
    figures = sorted((out / "figures").iterdir())
    assert [f.name for f in figures] == ["2013_05_28_drive_0002_sync_0000000003.png"]
    image = iio.imread(figures[0])
    assert image.ndim == 3 and image.shape[0] > image.shape[1] * 0.8  # four panels stacked
    assert np.unique(image.reshape(-1, image.shape[-1]), axis=0).shape[0] > 50  # drawn, not blank
    with pytest.raises(ValueError, match=r"figures=\[7\]: not among the evaluated frames"):
        run(eval_config(*synthetic_overrides(synthetic_root, checkpoints["bts"], out), "frames=[0]", "figures=[7]"),
            out, progress=False)


def test_depth_figure_error_panel_is_zero_where_prediction_is_exact(tmp_path):
    from evaluation.figures import depth_figure

    gt = torch.full((12, 40), 10.0)
    gt[:, :5] = 0.0  # no ground truth there
    with pytest.raises(ValueError, match="differ in size"):
        depth_figure(torch.zeros(3, 12, 40), gt[:6], gt, tmp_path / "x.png")
    path = depth_figure(torch.zeros(3, 12, 40), gt.clone(), gt, tmp_path / "d.png", title="t")
    assert path.is_file() and path.stat().st_size > 0
