"""Ceilings from the exact truth (``prediction=exact_behind [prediction_margin=K]``, evaluation/ceilings.py)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from bts.checkpoints.format import save_checkpoint
from bts.inference import LoadedModel
from bts.models.factory import build_model
from datasets.kitti_360 import Kitti360Config, Kitti360Dataset
from datasets.kitti_360.frames import FrameSelection
from datasets.synthetic import load_scene
from datasets.synthetic.scene import Ground, Lighting, Material, SceneDescription, make_primitive_set
from evaluation.ceilings import check_margin, exact_ceiling, exact_depth_map, frame_ceiling, ExactScenes
from evaluation.gt_cache import GroundTruthCache
from evaluation.metrics import occupancy_metrics
from evaluation.occupancy import check_prediction, evaluate_occupancy
from evaluation.protocols import Frame, build_protocol
from evaluation.summary import rows_of

REPO = Path(__file__).resolve().parents[2]
SEQ = "2013_05_28_drive_0000_sync"
STEP, COUNT = 0.5, 50                    # points every 0.5 m, from 0.5 m to 25 m along each row
SLOPE = 0.08                             # the oblique row: direction (1, 0.08, 0)
ORIGIN = torch.tensor([0.0, 0.0, 2.0], dtype=torch.float64)


# --- a hand-built scene: two boxes in front of a camera at (0, 0, 2) -------------------------------------------------

def _box(lo, hi):
    return ([*lo, *hi], Material.FACADE, [0.5, 0.5, 0.5], [0.0, 0.0, 0.0, 0.0])


@pytest.fixture(scope="module")
def boxes_scene(tmp_path_factory):
    """Flat ground at z = 0; box A x in [10, 12], box B x in [16, 17] (both |y| <= 1, z in [0, 4])."""
    root = tmp_path_factory.mktemp("hand_scene")
    description = SceneDescription(
        Ground(road_half_width=50.0, kerb_height=0.0, sidewalk_width=1.0), Lighting((0.0, 0.0, 1.0), 0.3, 0.7),
        make_primitive_set("box", [_box([10, -1, 0], [12, 1, 4]), _box([16, -1, 0], [17, 1, 4])]),
        make_primitive_set("cylinder", []), make_primitive_set("sphere", []))
    description.save(root / "ground_truth" / SEQ / "scene.json")
    return load_scene(root, SEQ)


def _rows() -> tuple[torch.Tensor, torch.Tensor]:
    """Three rows of 50 points at the camera's height, at distances s = 0.5, 1, ..., 25 m from it:
    row 0 along +x (hits A's face at 10 m, passes A and B), row 1 along (1, 0.08, 0) (hits A's face at
    10 sqrt(1 + 0.08²) m, misses B), row 2 towards (x, 3, 2) (misses everything)."""
    s = STEP * torch.arange(1, COUNT + 1, dtype=torch.float64)
    row0 = torch.stack([s, torch.zeros_like(s), torch.full_like(s, 2.0)], -1)
    u = torch.tensor([1.0, SLOPE, 0.0], dtype=torch.float64)
    row1 = ORIGIN + s[:, None] * u / u.norm()
    row2 = torch.stack([s, torch.full_like(s, 3.0), torch.full_like(s, 2.0)], -1)
    return torch.cat([row0, row1, row2]), s


def _expected(s: torch.Tensor, margin: float | None) -> torch.Tensor:
    """By hand: behind the first surface (and at most ``margin`` behind it along the ray)."""
    hits = [10.0, 10.0 * math.sqrt(1 + SLOPE**2), math.inf]
    rows = []
    for h in hits:
        behind = s > h
        if margin is not None:
            behind &= s <= h + margin
        rows.append(behind)
    return torch.cat(rows)


def test_ceilings_point_by_point_on_a_hand_built_scene(boxes_scene):
    points, s = _rows()
    counts = {None: 30, 1.0: 2, 2.0: 4, 4.0: 8}  # per hit row: behind 10 m (10.5 .. 25), then the first k m
    for margin, n in counts.items():
        got = exact_ceiling(points, ORIGIN, boxes_scene, margin)
        assert got.dtype == torch.bool and got.shape == (3 * COUNT,)
        assert torch.equal(got, _expected(s, margin)), margin
        assert got[:COUNT].sum() == n and got[COUNT:2 * COUNT].sum() == n and not got[2 * COUNT:].any()
    # Explicit points: row 0 at 10 m (on A's face: in front, empty) and just behind it.
    face = torch.tensor([[10.0, 0, 2], [10.01, 0, 2], [12.0, 0, 2], [12.01, 0, 2]], dtype=torch.float64)
    assert exact_ceiling(face, ORIGIN, boxes_scene, 2.0).tolist() == [False, True, True, False]
    assert exact_ceiling(face, ORIGIN, boxes_scene).tolist() == [False, True, True, True]


def test_margin_is_measured_along_the_ray_not_in_depth(boxes_scene):
    """On the oblique row the face is hit at 10.0319 m along the ray; 12.036 m along the ray is 2.004 m behind
    it (empty with +2 m), though only 1.998 m behind the face in x (the depth a z-depth rule would use)."""
    u = torch.tensor([1.0, SLOPE, 0.0], dtype=torch.float64)
    u = u / u.norm()
    hit = 10.0 * math.sqrt(1 + SLOPE**2)
    points = ORIGIN + torch.tensor([12.028, 12.036], dtype=torch.float64)[:, None] * u
    assert points[1, 0] - 10.0 < 2.0 < 12.036 - hit
    assert exact_ceiling(points, ORIGIN, boxes_scene, 2.0).tolist() == [True, False]


def test_ie_metrics_of_the_ceilings_against_hand_computed_values(boxes_scene):
    points, s = _rows()
    # The truth by hand: row 0 inside A at 10.5, 11, 11.5 and inside B at 16.5; row 1 inside A at 10.5 .. 12.
    occupied = torch.zeros(3 * COUNT, dtype=torch.bool)
    for row, distances in ((0, (10.5, 11.0, 11.5, 16.5)), (1, (10.5, 11.0, 11.5, 12.0))):
        for d in distances:
            occupied[row * COUNT + int(round(d / STEP)) - 1] = True
    assert torch.equal(boxes_scene.occupied(points.float()), occupied)  # the scene is what the hand says
    visible = ~_expected(s, None)
    # 60 occluded points (30 per hit row), 8 of them occupied, 52 empty.
    expected = {None: (8 / 60, 0.0), 1.0: (56 / 60, 1.0), 2.0: (58 / 60, 51 / 52), 4.0: (50 / 60, 43 / 52)}
    for margin, (ie_acc, ie_rec) in expected.items():
        m = occupancy_metrics(exact_ceiling(points, ORIGIN, boxes_scene, margin), occupied, visible)
        assert m["ie_acc"] == pytest.approx(ie_acc) and m["ie_rec"] == pytest.approx(ie_rec), margin


def test_prediction_and_margin_are_checked_with_the_key_named():
    assert check_prediction("exact_behind") is None and check_prediction("exact_behind", 2) == 2.0
    assert check_margin("exact_behind", 0.5) == 0.5
    with pytest.raises(ValueError, match=r"prediction must be one of .*'exact_behind'.*got 'exact_depth'"):
        check_prediction("exact_depth", 2)
    for bad in (0, -1, "abc", True, math.inf, math.nan):
        with pytest.raises(ValueError, match="prediction_margin must be null .* or a positive number"):
            check_prediction("exact_behind", bad)
    with pytest.raises(ValueError, match="prediction_margin=2 applies only to prediction=exact_behind"):
        check_prediction("density", 2)


# --- on the tiny synthetic city ---------------------------------------------------------------------------------------

class _Unused(nn.Module):
    """The ceilings never run the model."""

    def __init__(self):
        super().__init__()
        self._dummy = nn.Parameter(torch.zeros(1))

    def encoder_views(self, num_views, training):
        raise AssertionError("a ceiling must not run the model")


def _dataset(root: Path, size=(48, 176)) -> Kitti360Dataset:
    cfg = Kitti360Config(image_size=size, frames=FrameSelection(num_timesteps=1, stereo=False, fisheye=False))
    return Kitti360Dataset(root, root / "splits" / "test_files.txt", cfg)


def _run(root, protocol, cache=None, **kw):
    loaded = LoadedModel(_Unused(), "bts", {}, Path("none"))
    return evaluate_occupancy(loaded, _dataset(root), protocol, cache or GroundTruthCache(None), progress=False,
                              keep_predictions=True, **kw)


def test_ceilings_on_the_synthetic_city_under_both_protocols(synthetic_root, tmp_path):
    cache = GroundTruthCache(tmp_path / "cache")
    exact = build_protocol("exact")
    behind = _run(synthetic_root, exact, cache, prediction="exact_behind", indices=[0, 1])
    assert cache.misses == 2 and behind.model["prediction"] == "exact_behind"
    assert behind.model["prediction_margin"] is None and "prediction=exact_behind |" in behind.table()
    pred = torch.from_numpy(behind.predictions["pred_occupied"][0])
    visible = torch.from_numpy(behind.predictions["exact_visible"][0])
    truth = torch.from_numpy(behind.predictions["exact_occupied"][0])
    assert torch.equal(pred, ~visible)  # no margin: exactly the occluded set of the exact protocol
    m = behind.per_frame[0]["metrics"]["exact"]
    assert m["ie_rec"] == 0.0 and m["o_rec"] == 1.0
    assert m["ie_acc"] == pytest.approx(truth[~visible].float().mean().item())
    # With a margin (same model-independent truth: cache hits): a subset, growing with the margin.
    previous = torch.zeros_like(pred)
    for k in (1, 2, 4):
        r = _run(synthetic_root, exact, cache, prediction="exact_behind", prediction_margin=k, indices=[0, 1])
        assert r.model["prediction_margin"] == float(k) and f"prediction=exact_behind+{k}m" in r.table()
        p = torch.from_numpy(r.predictions["pred_occupied"][0])
        assert (previous <= p).all() and (p <= pred).all() and (p != pred).any()
        previous = p
    assert (cache.hits, cache.misses) == (6, 2)
    label = rows_of(json.loads(json.dumps(r.to_json(), default=float)))[0]["model"]
    assert label == "bts (exact_behind+4m)"
    # protocol=bts: the visibility's "model depth" is the exact depth; the ceiling itself does not change.
    bts = _run(synthetic_root, build_protocol("bts"), prediction="exact_behind", indices=[0])
    assert torch.equal(torch.from_numpy(bts.predictions["pred_occupied"][0]), pred)
    assert set(bts.per_frame[0]["metrics"]) == {"bts"}
    assert 0.0 <= bts.per_frame[0]["metrics"]["bts"]["ie_acc"] <= 1.0


def test_exact_depth_is_the_generators_depth(synthetic_root):
    """The bts visibility's depth for the ceilings: at the native size it equals the z-depth the generator wrote."""
    ds = _dataset(synthetic_root, size=(64, 240))
    item = ds[1]
    scene = load_scene(synthetic_root, ds.datapoints[1][0])
    c2w = item["world_from_view0"].double() @ item["cam_to_world"][0].double()
    depth = exact_depth_map(scene, item["intrinsics"][0], c2w, 64, 240)
    written = scene.depth("image_00", int(item["frame_ids"][0]))
    assert depth.shape == written.shape
    finite = torch.isfinite(written)
    assert torch.equal(torch.isfinite(depth), finite) and finite.any() and (~finite).any()
    assert torch.allclose(depth[finite], written[finite], atol=1e-3, rtol=0)
    # frame_ceiling hands that depth (at the model's input size) to the protocol.
    _, at_input = frame_ceiling(build_protocol("bts"), Frame(ds, 1, item), None, ExactScenes())
    assert at_input.ray_positions == "centres" and torch.equal(at_input.values, depth)


def test_ceilings_need_the_exact_scene(synthetic_root, tmp_path):
    root = tmp_path / "kitti_like"
    shutil.copytree(synthetic_root, root, ignore=shutil.ignore_patterns("ground_truth"))
    with pytest.raises(ValueError, match="prediction=exact_behind needs the synthetic city's exact scene"):
        _run(root, build_protocol("bts"), prediction="exact_behind", prediction_margin=2, indices=[0])


# --- the entry point ------------------------------------------------------------------------------------------------

TINY_MODEL = {"kind": "bts", "encoder": {"depth": 18, "pretrained": False, "on_missing_weights": "error",
                                         "decoder_widths": [32, 32, 64, 128, 256], "feature_dim": 64},
              "field": {"hidden_dim": 16, "num_freqs": 6, "freq_factor": 1.5, "code_near": 3.0, "code_far": 80.0}}


def _entry(args, tmp_path):
    env = {**os.environ, "BTS_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, "evaluation/occupancy.py", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_entry_point_with_a_ceiling_and_its_errors(synthetic_root, tmp_path):
    torch.manual_seed(0)
    checkpoint = save_checkpoint(tmp_path / "bts.pt", model_kind="bts", config=TINY_MODEL,
                                 model=build_model(TINY_MODEL, pretrained=False).state_dict())
    out = tmp_path / "eval"
    common = [f"checkpoint={checkpoint}", "data=synthetic", f"data.root={synthetic_root}", "data.image_size=[48,176]",
              "max_frames=2", "protocol=exact"]
    proc = _entry([*common, "prediction=exact_behind", "prediction_margin=2", f"output_dir={out}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "prediction=exact_behind+2m" in proc.stdout and "protocol=exact" in proc.stdout
    result = json.loads((out / "results.json").read_text())
    assert result["model"]["prediction"] == "exact_behind" and result["model"]["prediction_margin"] == 2.0
    assert result["frames"] == 2 and set(result["metrics"]) == {"exact", "bts", "lidar_vs_exact"}
    assert 0.0 < result["metrics"]["exact"]["ie_acc"] <= 1.0 and 0.0 < result["metrics"]["exact"]["ie_rec"] <= 1.0
    proc = _entry([*common, "prediction=exact_depth", f"output_dir={tmp_path / 'bad'}"], tmp_path)
    assert proc.returncode != 0 and "prediction must be one of" in proc.stderr and "exact_behind" in proc.stderr
    proc = _entry([*common, "prediction=exact_behind", "prediction_margin=-1", f"output_dir={tmp_path / 'bad'}"],
                  tmp_path)
    assert proc.returncode != 0 and "prediction_margin must be null" in proc.stderr
