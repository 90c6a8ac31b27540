"""Occupancy evaluation: lidar ground truth, protocols, cache, the entry point (issue 5)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from bts.checkpoints.format import save_checkpoint
from bts.inference import LoadedModel, load_model
from bts.models.factory import build_model
from datasets.kitti_360.errors import MissingFileError
from evaluation.gt_cache import GroundTruthCache
from evaluation.lidar_occupancy import lidar_votes, polar_profile, query_grid, vote_threshold
from bts.losses.distillation import KD_CLIP
from evaluation.compare import Predictions, compare, load_predictions, ranking_auc, region_scores, regions, table
from evaluation.occupancy import write_outputs
from evaluation.protocols import SURFACE_LAYER, BtsProtocol, Frame, build_protocol, observed_from
from tests.evaluation.oracle import dataset, oracle_run

REPO = Path(__file__).resolve().parents[2]
TINY_MODEL = {"kind": "bts", "encoder": {"depth": 18, "pretrained": False, "on_missing_weights": "error",
                                         "decoder_widths": [32, 32, 64, 128, 256], "feature_dim": 64},
              "field": {"hidden_dim": 16, "num_freqs": 6, "freq_factor": 1.5, "code_near": 3.0, "code_far": 80.0}}


# --- lidar ground truth on hand-built scans ----------------------------------------------------------------------

def test_the_papers_grid():
    points, size = query_grid((-4, 4), (0, 0.75), (20, 4), 10, 4, 1)
    assert size == (80, 1, 160) and points.shape == (12800, 3)
    assert torch.all(points[:, 1] == 0.375)
    assert points[0].tolist() == pytest.approx([-4, 0.375, 20]) and points[-1].tolist() == pytest.approx([4, 0.375, 4])


def test_polar_profile_of_a_ring_and_of_a_wall():
    angles = torch.linspace(-math.pi, math.pi, 7201)[:-1]
    ring = torch.stack([10 * angles.cos(), 10 * angles.sin()], -1).double()
    profile = polar_profile(ring)
    assert profile.shape == (362, 2)
    assert torch.allclose(profile[:, 1], torch.full((362,), 10.0, dtype=torch.float64))
    assert profile[0, 0] < -math.pi and profile[-1, 0] > math.pi  # wrapped copies cover the full circle
    # A wall at x = 10 in front (|y| <= 5): the minimum radius per bin is at the bin edge nearest to 0°.
    y = torch.linspace(-5, 5, 20001).double()
    wall = torch.stack([torch.full_like(y, 10.0), y], -1)
    profile = polar_profile(wall)
    centre = profile[1:-1]
    ahead = centre[:, 0].abs() < math.radians(0.6)
    assert torch.allclose(centre[ahead, 1], torch.tensor(10.0, dtype=torch.float64), atol=1e-3)
    beyond = centre[:, 0] > math.radians(30)  # no point there: the previous bin's value carries on
    edge = centre[(centre[:, 0] > math.radians(25)) & (centre[:, 0] < math.radians(26.6))][-1, 1]
    assert torch.all(centre[beyond, 1] == edge)
    behind = centre[:, 0] < math.radians(-30)  # before the first point: the smallest-angle point's radius
    assert torch.allclose(centre[behind, 1], torch.tensor(math.hypot(10, 5), dtype=torch.float64))


def test_votes_wall_blind_zone_and_the_homogeneous_norm():
    y = torch.linspace(-20, 20, 40001).double()
    wall = polar_profile(torch.stack([torch.full_like(y, 10.0), y], -1))[None]
    identity = torch.eye(4, dtype=torch.float64)[None]
    pts = torch.tensor([[5.0, 0, 0], [12.0, 0, 0], [2.0, 0, 0], [9.96, 0, 0], [9.0, 0, 4.5]], dtype=torch.float64)
    quirk = lidar_votes(pts, wall, identity, min_distance=3.0, homogeneous_norm=True)[0]
    plain = lidar_votes(pts, wall, identity, min_distance=3.0, homogeneous_norm=False)[0]
    assert quirk.tolist() == [False, True, True, True, True]   # √(9.96² + 1) > 10; 4.5 m of height counts
    assert plain.tolist() == [False, True, True, False, False]


def test_vote_rule_needs_all_but_two_scans():
    votes = torch.tensor([17, 18, 20, 0])
    assert vote_threshold(votes, 20).tolist() == [False, True, True, False]
    assert vote_threshold(torch.tensor([0]), 2).tolist() == [True]  # the rule as written: N = 2 is always occupied


def test_unknown_protocol_and_parameter_are_named():
    with pytest.raises(ValueError, match=r"unknown occupancy protocol 'vipocc'.*\['bts', 'exact', 'kyn'\]"):
        build_protocol("vipocc")
    with pytest.raises(ValueError, match=r"\['num_scan'\]"):
        build_protocol("bts", {"num_scan": 20})


# --- protocols on the synthetic city with oracle models ----------------------------------------------------------

def test_exact_density_scores_one_against_exact_and_nearly_one_against_lidar(synthetic_root):
    result = oracle_run(synthetic_root, build_protocol("exact"), indices=[0, 1])
    mean = result.mean()
    assert mean["exact"]["o_acc"] == 1.0 and mean["exact"]["ie_acc"] == 1.0 and mean["exact"]["ie_rec"] == 1.0
    # The lidar-built truth marks space no scan sees free as occupied; with parked vehicles in both halves of the
    # slice (the German residential cross-section) that is about a tenth of the tiny city's slice.
    assert mean["bts"]["o_acc"] > 0.85, mean["bts"]
    assert 0.0 <= mean["lidar_vs_exact"]["disagree"] < 0.1


def test_all_empty_model_gets_the_numbers_the_definitions_predict(synthetic_root):
    protocol = build_protocol("exact")
    result = oracle_run(synthetic_root, protocol, empty=True, indices=[0])
    gt = protocol.ground_truth(Frame(dataset(synthetic_root), 0, dataset(synthetic_root)[0]))
    occ, vis = gt["exact_occupied"], gt["exact_visible"]
    assert occ.any() and (~vis).any()
    m = result.mean()["exact"]
    assert m["o_acc"] == pytest.approx(1 - occ.float().mean().item())
    assert m["ie_acc"] == pytest.approx((~occ[~vis]).float().mean().item())
    assert m["ie_rec"] == 1.0 and m["ie_prec"] == pytest.approx(m["ie_acc"])
    assert m["o_rec"] == 0.0 and math.isnan(m["o_prec"])


def test_bts_ground_truth_uses_the_scans_there_are_and_says_so(synthetic_root):
    protocol = BtsProtocol({"num_scans": 20})
    ds = dataset(synthetic_root)
    frame = Frame(ds, 0, ds[0])
    rows = protocol.scan_rows(frame)
    assert len(rows) < 20 and len(rows) == len(ds.poses[frame.sequence]) - frame.row
    gt = protocol.ground_truth(frame)
    assert int(gt["num_scans"]) == len(rows)
    result = oracle_run(synthetic_root, protocol, indices=[0])
    assert result.to_json()["frames_with_fewer_scans"] == 1
    assert "fewer than 20 scans" in result.table()


def test_cache_hits_give_identical_results_and_changed_data_misses(synthetic_root, tmp_path):
    root = tmp_path / "city"
    shutil.copytree(synthetic_root, root)
    cache = GroundTruthCache(tmp_path / "cache")
    first = oracle_run(root, build_protocol("exact"), cache=cache, indices=[0, 1])
    assert (cache.hits, cache.misses) == (0, 2)
    second = oracle_run(root, build_protocol("exact"), cache=cache, indices=[0, 1])
    assert (cache.hits, cache.misses) == (2, 2)
    assert [r["metrics"] for r in first.per_frame] == [r["metrics"] for r in second.per_frame]
    assert all(r["gt_cached"] for r in second.per_frame)
    # Other protocol parameters, or a changed scan, are other keys.
    oracle_run(root, build_protocol("exact", {"num_scans": 5}), cache=cache, indices=[0])
    assert cache.misses == 3
    ds = dataset(root)
    frame = Frame(ds, 0, ds[0])
    scan = ds.layout.velodyne_file(frame.sequence, frame.frame_id)
    st = scan.stat()
    os.utime(scan, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched, same bytes: still the same truth
    oracle_run(root, build_protocol("exact"), cache=cache, indices=[0])
    assert cache.misses == 3
    # Rewritten with other points of the same size and the old mtime: the content key misses (a size-and-mtime
    # key would reuse the stale ground truth).
    data = bytearray(scan.read_bytes())
    data[:16] = bytes(16)
    scan.write_bytes(bytes(data))
    os.utime(scan, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert scan.stat().st_size == st.st_size and scan.stat().st_mtime_ns == st.st_mtime_ns
    oracle_run(root, build_protocol("exact"), cache=cache, indices=[0])
    assert cache.misses == 4


def test_missing_lidar_scan_is_named(synthetic_root, tmp_path):
    root = tmp_path / "city"
    shutil.copytree(synthetic_root, root)
    ds = dataset(root)
    frame = Frame(ds, 0, ds[0])
    poses = ds.poses[frame.sequence]
    missing = ds.layout.velodyne_file(frame.sequence, int(poses.frame_ids[frame.row + 2]))
    missing.unlink()
    with pytest.raises(MissingFileError, match=missing.name):
        BtsProtocol().ground_truth(frame)


# --- the entry point ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = build_model(TINY_MODEL, pretrained=False)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "bts.pt", model_kind="bts", config=TINY_MODEL,
                           model=model.state_dict())


def test_view_subset_needs_an_mvbts_checkpoint(tiny_checkpoint):
    with pytest.raises(ValueError, match="needs an MVBTS checkpoint"):
        load_model(tiny_checkpoint, views="stereo")
    with pytest.raises(KeyError, match="unknown view subset"):
        load_model(tiny_checkpoint, views="stereoo")


def strict_json(path):
    """Parse as strict JSON: NaN / Infinity (Python's json default) are refused."""

    def refuse(name):
        raise ValueError(f"{path} holds {name}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def _run_entry(args, tmp_path):
    env = {**os.environ, "BTS_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, "evaluation/occupancy.py", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_entry_point_runs_on_the_synthetic_city(synthetic_root, tiny_checkpoint, tmp_path):
    out = tmp_path / "eval"
    args = [f"checkpoint={tiny_checkpoint}", "data=synthetic", f"data.root={synthetic_root}",
            "data.image_size=[48,176]", "max_frames=2", "figures=[0]", f"output_dir={out}", "protocol=exact"]
    proc = _run_entry(args, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "protocol=exact" in proc.stdout and "O_ACC" in proc.stdout
    result = strict_json(out / "results.json")
    assert result["protocol"]["protocol"] == "exact" and result["frames"] == 2
    assert set(result["metrics"]) == {"exact", "bts", "lidar_vs_exact"}
    assert 0.0 <= result["metrics"]["exact"]["o_acc"] <= 1.0
    assert len((out / "per_frame.csv").read_text().splitlines()) == 3
    assert len(list((out / "figures").glob("*.png"))) == 1
    summary = subprocess.run([sys.executable, "-m", "evaluation.summary", str(out / "results.json"), "--markdown"],
                             cwd=REPO, capture_output=True, text=True, check=True).stdout
    run = f"{Path(tiny_checkpoint).parent.name}/bts"  # <folder>/<file stem> outside a run's checkpoints/
    assert f"| bts | {run} | synthetic test 48x176 | exact |" in summary, summary
    assert f"| bts | {run} | synthetic test 48x176 | bts |" in summary
    # The second run reads the cached ground truth, and keeps its per-point predictions for evaluation.compare.
    proc = _run_entry(args[:-3] + [f"output_dir={tmp_path / 'eval2'}", "protocol=exact", "save_predictions=true"],
                      tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "cache hits 2, misses 0" in proc.stdout
    with np.load(tmp_path / "eval2" / "predictions.npz") as saved:
        assert saved["pred_occupied"].shape == saved["exact_occupied"].shape == (2, 12800)
        assert saved["sigma"].dtype == np.float32 and np.isfinite(saved["sigma"]).all()
    same = subprocess.run([sys.executable, "-m", "evaluation.compare", str(tmp_path / "eval2"), str(tmp_path / "eval2"),
                           "--json", str(tmp_path / "cmp.json")], cwd=REPO, capture_output=True, text=True)
    assert same.returncode == 0, same.stderr[-3000:]
    cmp = json.loads((tmp_path / "cmp.json").read_text())
    assert cmp["agreement"]["all"] == 1.0 and cmp["agreement"]["density_l1_clipped"] == 0.0
    assert cmp["models"]["a"]["o_acc"] == pytest.approx(result["metrics"]["exact"]["o_acc"])
    missing = subprocess.run([sys.executable, "-m", "evaluation.compare", str(out), str(tmp_path / "eval2")],
                             cwd=REPO, capture_output=True, text=True)
    assert missing.returncode != 0 and "save_predictions=true" in missing.stderr


def test_the_ground_truth_of_a_split_is_cached_in_one_command_without_a_model(synthetic_root, tiny_checkpoint,
                                                                                tmp_path):
    cache = tmp_path / "gt"
    data = ["data=synthetic", f"data.root={synthetic_root}", f"cache_dir={cache}", "max_frames=3"]
    proc = _run_entry(["ground_truth_only=true", *data, f"output_dir={tmp_path / 'gt_run'}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ground truth of 3 frames (bts)" in proc.stdout and "misses 3" in proc.stdout
    summary = strict_json(tmp_path / "gt_run" / "ground_truth.json")
    assert summary["frames"] == 3 and summary["cache_misses"] == 3 and summary["protocol"]["num_scans"] == 20
    assert len(list((cache / "bts").glob("*.pt"))) == 3
    # A model evaluated later (at its own image size) finds every frame's ground truth there.
    proc = _run_entry([f"checkpoint={tiny_checkpoint}", *data, "data.image_size=[48,176]",
                       f"output_dir={tmp_path / 'eval'}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "cache hits 3, misses 0" in proc.stdout
    # Without data (there is no checkpoint to take it from), or with the cache off: a clear error.
    proc = _run_entry(["ground_truth_only=true", f"cache_dir={cache}"], tmp_path)
    assert proc.returncode != 0 and "data=kitti_360" in proc.stderr
    proc = _run_entry(["ground_truth_only=true", *data, "cache=false"], tmp_path)
    assert proc.returncode != 0 and "cache=false" in proc.stderr


def test_entry_point_refuses_a_file_that_is_no_checkpoint_and_an_unknown_key(tmp_path):
    bogus = tmp_path / "notes.pt"
    torch.save({"weights": torch.zeros(1)}, bogus)
    proc = _run_entry([f"checkpoint={bogus}", "data=synthetic"], tmp_path)
    assert proc.returncode != 0 and "not a checkpoint of this project" in proc.stderr
    proc = _run_entry([f"checkpoint={bogus}", "protocol.num_scan=3"], tmp_path)
    assert proc.returncode != 0 and "num_scan" in proc.stderr


def test_imported_models_get_the_original_intrinsics_convention():
    from omegaconf import OmegaConf

    from evaluation.selection import data_config

    cfg = OmegaConf.create({"data": {"name": "kitti_360", "pixel_convention": "center"}})
    imported = LoadedModel(nn.Linear(1, 1), "bts", {"imported": {"conventions": {"intrinsics": "corner"}}},
                           Path("released.pt"))
    ours = LoadedModel(nn.Linear(1, 1), "bts", {}, Path("ours.pt"))
    assert data_config(cfg, imported)[0].pixel_convention == "corner"
    assert data_config(cfg, ours)[0].pixel_convention == "center"


def test_frame_selection_with_stride_and_limit():
    from evaluation.selection import frame_indices

    assert frame_indices(10, None, None, 3) == [0, 3, 6, 9]
    assert frame_indices(10, None, 2, 3) == [0, 3]
    assert frame_indices(10, [4, 1], None, 3) == [4, 1]  # an explicit list is taken as given
    with pytest.raises(ValueError, match="frame_stride"):
        frame_indices(10, None, None, 0)
    with pytest.raises(ValueError, match=r"\[12\]"):
        frame_indices(10, [12], None)


# --- point-by-point comparison of two models (evaluation.compare) ------------------------------------------------

def _saved(root, tmp_path, name, protocol="exact", empty=False, indices=(0, 1)):
    result = oracle_run(root, build_protocol(protocol), empty=empty, indices=list(indices), keep_predictions=True)
    write_outputs(result, tmp_path / name)
    return tmp_path / name


def test_compare_an_oracle_against_an_empty_model(synthetic_root, tmp_path):
    empty = load_predictions(_saved(synthetic_root, tmp_path, "empty", empty=True), "empty")
    oracle = load_predictions(_saved(synthetic_root, tmp_path, "oracle"), "oracle")
    hidden = ~empty.visible
    occupied_hidden = empty.truth & hidden
    assert occupied_hidden.any() and (hidden & ~empty.truth).any()
    r = compare(empty, oracle)
    assert r["occluded_points"] == int(hidden.sum())
    assert r["occluded_occupied_fraction"] == pytest.approx(occupied_hidden.sum() / hidden.sum())
    # The empty model is wrong exactly on the occluded occupied points, and the oracle is right on all of them.
    assert r["where_a_is_wrong"]["points"] == int(occupied_hidden.sum())
    assert r["where_a_is_wrong"]["b_right"] == 1.0 and r["where_a_is_wrong"]["b_right_on_occupied"] == 1.0
    assert math.isnan(r["where_a_is_wrong"]["b_right_on_empty"])
    assert r["where_b_is_wrong"]["points"] == 0
    assert r["occluded_net_gain_of_b"] == pytest.approx(r["occluded_occupied_fraction"])
    assert r["models"]["a"]["ie_rec"] == 1.0 and r["models"]["a"]["occluded_occupied_found"] == 0.0
    assert r["models"]["b"]["ie_acc"] == 1.0 and r["models"]["b"]["occluded_occupied_found"] == 1.0
    # Agreement: the two differ exactly where the scene is occupied; the clipped density gap is KD_CLIP there.
    assert r["agreement"]["all"] == pytest.approx(1 - empty.truth.mean())
    assert r["agreement"]["b_recall_of_a_occupied"] != r["agreement"]["b_recall_of_a_occupied"]  # A has none: NaN
    assert r["agreement"]["b_precision_wrt_a_occupied"] == 0.0
    assert r["agreement"]["density_l1_clipped"] == pytest.approx(KD_CLIP * empty.truth.mean())
    assert "B right on 1.0000" in table(r)
    # Threshold-free: the oracle ranks every occluded occupied point first; constant zeros are chance.
    assert r["models"]["b"]["occluded_auc"] == 1.0 and r["models"]["a"]["occluded_auc"] == 0.5
    assert 0 < r["seen_surface_points"] < int(empty.truth.sum())
    assert r["models"]["b"]["seen_surface_found"] == 1.0 and r["models"]["a"]["seen_surface_found"] == 0.0
    assert r["models"]["b"]["seen_surface_sigma_median"] == 1000.0
    reverse = compare(oracle, empty)
    assert reverse["where_b_is_wrong"]["points"] == r["where_a_is_wrong"]["points"]
    assert reverse["occluded_net_gain_of_b"] == pytest.approx(-r["occluded_net_gain_of_b"])


def test_compare_refuses_other_frames_other_protocols_and_missing_truth(synthetic_root, tmp_path):
    two = load_predictions(_saved(synthetic_root, tmp_path, "two"))
    one = load_predictions(_saved(synthetic_root, tmp_path, "one", indices=(0,)))
    with pytest.raises(ValueError, match="different frames"):
        compare(two, one)
    other = oracle_run(synthetic_root, build_protocol("exact", {"num_scans": 5}), indices=[0, 1],
                        keep_predictions=True)
    write_outputs(other, tmp_path / "other")
    with pytest.raises(ValueError, match="num_scans"):
        compare(two, load_predictions(tmp_path / "other"))
    with pytest.raises(ValueError, match="protocol=exact"):
        load_predictions(_saved(synthetic_root, tmp_path, "lidar", protocol="bts"))
    with pytest.raises(FileNotFoundError, match="save_predictions=true"):
        load_predictions(tmp_path / "nowhere")


def test_ranking_auc_and_the_seen_surface_on_a_hand_built_grid(tmp_path):
    assert ranking_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    assert ranking_auc(np.array([1.0, 2.0]), np.array([1, 0])) == 0.0
    assert math.isnan(ranking_auc(np.array([1.0, 2.0]), np.array([1, 1])))
    # One frame, grid x 4 by z 3 (one y): a wall of occupied points at z index 1, visible in front (z index 0).
    truth = np.zeros((1, 3, 4), dtype=bool)
    truth[0, 1:, :] = True                     # z rows 1 and 2 occupied; row 2 is behind the wall's face
    visible = np.zeros_like(truth)
    visible[0, 0, :] = True
    p = Predictions(tmp_path, "m", ["f"], {}, {}, truth.reshape(1, -1), np.zeros((1, 12)), truth.reshape(1, -1),
                    visible.reshape(1, -1), grid_size=(4, 1, 3))
    assert p.seen_surface().reshape(3, 4)[1].all() and not p.seen_surface().reshape(3, 4)[2].any()


@pytest.mark.parametrize("protocol_name", ["exact", "bts"])
def test_occupancy_figures_carry_titles_axes_in_metres_a_legend_and_a_colour_bar(synthetic_root, tmp_path,
                                                                               protocol_name, monkeypatch):
    from matplotlib.figure import Figure

    seen = []
    real = Figure.savefig

    def record(fig, path, *args, **kwargs):
        texts = [t.get_text() for ax in fig.axes for t in (ax.title, ax.xaxis.label, ax.yaxis.label)]
        texts += [t.get_text() for legend in fig.legends for t in legend.get_texts()]
        seen.append((texts, len(fig.axes)))
        return real(fig, path, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    oracle_run(synthetic_root, build_protocol(protocol_name), indices=[0], figures=(0,), figure_dir=tmp_path)
    assert len(list(tmp_path.glob("*.png"))) == 1
    (texts, n_axes), = seen
    joined = " | ".join(texts)
    for wanted in ("x, right (m)", "z, forward (m)", "prediction", "ground truth", "visibility", "density",
                   "occupied", "empty", "occluded", "visible", "frame"):
        assert wanted in joined, wanted
    assert n_axes == 6  # the image, four panels and the density's colour bar


def test_the_summary_names_a_model_by_its_run_and_checkpoint():
    from evaluation.summary import run_and_checkpoint

    run = "2026-12-01_10-00-00"
    assert run_and_checkpoint(f"outputs/bts/{run}/checkpoints/step_500.pt") == f"{run}/step_500"
    assert run_and_checkpoint("released/kdbts.pt") == "released/kdbts"


# --- selective-distillation masks scored against where the teacher is right (trust_masks, evaluation.compare) -------

def test_a_mask_is_scored_against_the_teacher_being_right():
    from evaluation.compare import score_mask

    # Eight occluded points: B (the teacher) right where A is wrong on 0-2, wrong where A is right on 3, both right
    # on 4-5, both wrong on 6-7.
    a_ok = np.array([0, 0, 0, 1, 1, 1, 0, 0], dtype=bool)
    b_ok = np.array([1, 1, 1, 0, 1, 1, 0, 0], dtype=bool)
    within = np.ones(8, dtype=bool)
    oracle = b_ok & ~a_ok
    best = score_mask(oracle, a_ok, b_ok, within)
    assert best["net_gain"] == best["oracle_gain"] == pytest.approx(3 / 8) and best["coverage"] == pytest.approx(3 / 8)
    assert best["precision"] == 1.0 and best["auc"] == pytest.approx((1.0 + 0.6) / 2)  # TPR 3/5 is 0.6, TNR 1
    everything = score_mask(np.ones(8, dtype=bool), a_ok, b_ok, within)
    assert everything["net_gain"] == everything["random_gain"] == pytest.approx((3 - 1) / 8)
    assert everything["auc"] == 0.5  # a constant mask ranks nothing
    wrong = score_mask(~b_ok, a_ok, b_ok, within)  # keeps exactly where B is wrong: B's one loss, no gain
    assert wrong["net_gain"] == pytest.approx(-1 / 8) and wrong["auc"] == 0.0
    assert wrong["random_gain"] == pytest.approx(wrong["coverage"] * 2 / 8)
    outside = score_mask(oracle, a_ok, b_ok, np.zeros(8, dtype=bool))
    assert all(math.isnan(v) for v in outside.values())


def test_trust_masks_of_an_mvbts_model_are_saved_and_scored(synthetic_root, tiny_checkpoint, tmp_path):
    from tests.evaluation.eval_fixtures import save_untrained

    mvbts = save_untrained(tmp_path / "mvbts.pt", "mvbts")
    common = ["data=synthetic", f"data.root={synthetic_root}", "data.image_size=[48,176]", "max_frames=2",
              "protocol=exact", "save_predictions=true"]
    proc = _run_entry([f"checkpoint={mvbts}", "views=mono_temporal", "trust_masks=true",
                       f"output_dir={tmp_path / 'teacher'}", *common], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(tmp_path / "teacher" / "predictions.npz") as saved:
        for name in ("visibility", "agreement"):
            mask = saved[f"trust_{name}"]
            assert mask.shape == saved["exact_occupied"].shape and mask.dtype == bool
        # Agreement needs two seeing views, so at least one besides the input: it lies within visibility.
        assert not (saved["trust_agreement"] & ~saved["trust_visibility"]).any()
        assert saved["trust_visibility"].any()  # the later frame sees part of the slice
        seen_by = saved["exact_seen_by"]
        assert seen_by.shape == saved["exact_occupied"].shape and set(np.unique(seen_by)) <= {0, 1}  # one other view
    proc = _run_entry([f"checkpoint={tiny_checkpoint}", f"output_dir={tmp_path / 'student'}", *common], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cmp = subprocess.run([sys.executable, "-m", "evaluation.compare", str(tmp_path / "student"),
                          str(tmp_path / "teacher"), "--json", str(tmp_path / "cmp.json")], cwd=REPO,
                         capture_output=True, text=True)
    assert cmp.returncode == 0, cmp.stderr[-3000:]
    assert "mask visibility of B" in cmp.stdout and "mask agreement of B" in cmp.stdout
    result = json.loads((tmp_path / "cmp.json").read_text())
    scores = result["trust_masks_of_b"]
    assert set(scores) == {"visibility", "agreement"} and 0.0 <= scores["visibility"]["coverage"] <= 1.0
    # The regions of the teacher's evidence: every point in exactly one, and the later frame (the one other view)
    # observes part of the input view's occluded space in the exact scene.
    assert set(result["regions"]) == {"visible", "occluded_seen", "occluded_unseen"}
    assert sum(r["points"] for r in result["regions"].values()) == result["points"]
    assert result["regions"]["occluded_seen"]["points"] > 0 and "region occluded_seen" in cmp.stdout
    refused = _run_entry([f"checkpoint={tiny_checkpoint}", "trust_masks=true", f"output_dir={tmp_path / 'no'}",
                          *common], tmp_path)
    assert refused.returncode != 0 and "trust_masks=true needs a multi-view model" in refused.stderr
    unsaved = _run_entry([f"checkpoint={mvbts}", "views=mono_temporal", "trust_masks=true",
                          f"output_dir={tmp_path / 'no2'}", *common[:-1]], tmp_path)
    assert unsaved.returncode != 0 and "add save_predictions=true" in unsaved.stderr


class _Wall:
    """A stub exact scene: one wall across the world at z = 10 m (the ray-distance interface of SyntheticScene)."""

    def ray_distance(self, origin, directions, max_distance=math.inf):
        t = (10.0 - origin[2]) / directions[:, 2]  # the ray parameter where it meets the plane
        t = torch.where(torch.isfinite(t) & (t > 0), t, torch.full_like(t, math.inf))
        return t * directions.norm(dim=-1)


def test_a_view_observes_points_in_front_of_its_first_surface_and_in_the_surface_layer():
    points = torch.tensor([[0.0, 0.0, 5.0], [0.0, 0.0, 10.0 + SURFACE_LAYER / 2], [0.0, 0.0, 11.0],
                           [0.0, 0.0, 5.0]], dtype=torch.float64)
    origins = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 10.5]], dtype=torch.float64)  # the second is behind it
    in_frustum = torch.tensor([[True, True, True, False], [True, True, True, True]])
    seen = observed_from(_Wall(), origins, points, in_frustum)
    # Camera 0: the empty point in front, the wall's surface layer, not the point 1 m behind it, and not a point
    # outside its frustum. Camera 1, 0.5 m beyond the wall: z = 10.1 lies before the wall on its ray and z = 11 has
    # nothing in between, but z = 5 is hidden behind the wall (5 m deep, far beyond the surface layer).
    assert seen.tolist() == [[True, True, False, False], [False, True, True, False]]


def test_the_regions_split_the_points_and_score_what_b_could_transfer():
    visible = np.array([1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    seen_by = np.array([0, 2, 1, 1, 1, 0, 0, 0])
    r = regions(visible, seen_by)
    assert [int(m.sum()) for m in r.values()] == [2, 3, 3] and not (r["visible"] & r["occluded_seen"]).any()
    truth = np.array([0, 0, 1, 1, 0, 1, 0, 0], dtype=bool)
    a_ok = np.array([1, 1, 0, 0, 1, 0, 1, 1], dtype=bool)
    b_ok = np.array([1, 0, 1, 1, 1, 0, 0, 1], dtype=bool)
    seen = region_scores(r["occluded_seen"], truth, a_ok, b_ok)
    assert seen["points"] == 3 and seen["occupied_fraction"] == pytest.approx(2 / 3)
    assert seen["b_right_where_a_wrong"] == 1.0 and seen["b_right_where_a_wrong_occupied"] == 1.0
    assert seen["b_wrong_where_a_right"] == 0.0 and seen["net_gain_of_b"] == pytest.approx(2 / 3)
    unseen = region_scores(r["occluded_unseen"], truth, a_ok, b_ok)
    assert unseen["b_wrong_where_a_right"] == 0.5 and unseen["net_gain_of_b"] == pytest.approx(-1 / 3)
    assert math.isnan(region_scores(np.zeros(8, dtype=bool), truth, a_ok, b_ok)["a_acc"])


def test_where_the_teacher_is_unsure_the_student_is_scored_against_it(tmp_path):
    # Six occluded points: the teacher (A) holds a mask that keeps the first three; outside it the teacher is right
    # on one of three points, the student (B) on all three.
    truth = np.array([[1, 0, 1, 0, 1, 0]], dtype=bool)
    visible = np.zeros_like(truth)
    teacher = truth.copy()
    teacher[0, 3:] = [1, 1, 1]  # right only on point 4 of the last three
    mask = np.array([[1, 1, 1, 0, 0, 0]], dtype=bool)
    a = Predictions(tmp_path, "teacher", ["f"], {}, {}, teacher, np.zeros((1, 6)), truth, visible, None,
                    {"visibility": mask})
    b = Predictions(tmp_path, "student", ["f"], {}, {}, truth.copy(), np.zeros((1, 6)), truth, visible)
    unsure = compare(a, b)["where_a_is_unsure"]["visibility"]
    assert unsure == {"points": 3, "a_acc": pytest.approx(1 / 3), "b_acc": 1.0}
    assert "outside A's mask visibility (A unsure): 3" in table(compare(a, b))
