"""The ``kyn`` occupancy protocol of KYN (CVPR 2024) and ViPOcc: its grid, the far invisible area cut, object-level
scores, KYN's precomputed maps, and the lidar ground truth on the synthetic city."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from evaluation.protocols import Frame, KynProtocol, build_protocol
from tests.evaluation.oracle import dataset, oracle_run

Z, X = 460, 80


def test_the_kyn_grid_reaches_50_m():
    protocol = build_protocol("kyn")
    assert protocol.grid_size == (X, 1, Z) and protocol.points_level.shape == (Z * X, 3)
    first, last = protocol.points_level[0], protocol.points_level[-1]
    assert first.tolist() == pytest.approx([-4, 0.375, 50]) and last.tolist() == pytest.approx([4, 0.375, 4])
    assert protocol.params.num_scans == 300 and not protocol.needs_model_depth
    vipocc = build_protocol("kyn", {"z_range": [20.0, 4.0]})
    assert vipocc.grid_size == (X, 1, 160)


def bev(rows: slice, cols: slice = slice(None)) -> torch.Tensor:
    m = torch.zeros(Z, X, dtype=torch.bool)
    m[rows, cols] = True
    return m.reshape(-1)


def test_the_far_invisible_area_is_cut_2_m_beyond_the_farthest_visible_row():
    protocol = KynProtocol()
    visible = bev(slice(300, 460))  # the near 16 m seen; row 300 is the farthest visible
    keep = protocol.far_cut(visible).reshape(Z, X)
    assert not keep[:280].any() and keep[280:].all()  # 20 rows (2 m) of margin
    near_edge = bev(slice(10, 12), slice(3, 4))
    assert protocol.far_cut(near_edge).all()  # clamped at the far end: nothing to cut
    assert KynProtocol({"cut_far_invisible": False}).far_cut(visible).all()


def test_scores_by_hand_with_and_without_object_labels():
    protocol = KynProtocol()
    visible = bev(slice(300, 460))
    occupied = bev(slice(250, 300), slice(0, 40))  # behind the visible area, left half
    gt = {"visible_first_scan": visible, "occupied": occupied, "num_scans": torch.tensor(300)}
    pred = bev(slice(250, 300))  # predicts the full width of those rows occupied
    m = protocol.score(gt, pred, None, None)["kyn"]
    # kept rows 280..459: 20 rows x 80 hidden (40 occupied, all predicted so), 160 rows visible and predicted empty
    hidden = 20 * 80
    assert m["ie_acc"] == pytest.approx((20 * 40) / hidden)
    assert m["ie_rec"] == pytest.approx(0.0)  # every hidden empty point of the kept rows is predicted occupied
    assert m["o_acc"] == pytest.approx((160 * 80 + 20 * 40) / (180 * 80))
    assert set(protocol.score(gt, pred, None, None)) == {"kyn"}
    nothing_seen = {**gt, "visible_first_scan": torch.zeros(Z * X, dtype=torch.bool)}
    assert all(math.isnan(v) for v in protocol.score(nothing_seen, pred, None, None)["kyn"].values())

    labels = np.zeros((Z, X), dtype=np.uint8)
    labels[250:300, 0:40] = 255
    labels[260:270, 10:15] = 7  # one object
    region = protocol.object_region(labels)
    assert region[240:289, 5:19].all() and region.sum() == 49 * 14  # rows [260-20, 269+20), cols [10-5, 14+5)
    wider = bev(slice(245, 300))  # rows 245-249 wrongly occupied: 5 of the region's 49 rows
    obj = protocol.score({**gt, "object_region": torch.from_numpy(region).reshape(-1)}, wider, None, None)
    assert obj["kyn_object"]["ie_acc"] == pytest.approx(44 / 49) and obj["kyn_object"]["ie_rec"] == pytest.approx(
        (49 * 14 - 39 * 14 - 5 * 14) / (49 * 14 - 39 * 14))  # hidden empty: rows 240-249; 245-249 predicted occupied
    assert np.array_equal(protocol.object_region(np.where(labels == 7, 0, labels)), np.zeros((Z, X), bool))


def test_kyn_maps_are_read_with_their_shape_checked(synthetic_root, tmp_path):
    ds = dataset(synthetic_root)
    frame = Frame(ds, 0, ds[0])
    name = f"{frame.sequence}_{frame.frame_id:010d}"
    protocol = KynProtocol({"ground_truth_maps": str(tmp_path), "object_labels": str(tmp_path)})
    with pytest.raises(FileNotFoundError, match=f"{name}_occgt.npy"):
        protocol.ground_truth_files(frame)
    occ = np.zeros((Z, X), dtype=bool)
    occ[100:120] = True
    np.save(tmp_path / f"{name}_occgt.npy", occ)
    np.save(tmp_path / f"{name}_visgt.npy", np.zeros((Z, X), dtype=bool))
    labels = np.zeros((Z, X), dtype=np.uint8)
    labels[105:110, 40:42] = 3
    Image.fromarray(labels).save(tmp_path / f"{name}_occgt_anno.png")
    assert len(protocol.ground_truth_files(frame)) == 3
    gt = protocol.ground_truth(frame)
    assert torch.equal(gt["occupied"], torch.from_numpy(occ).reshape(-1)) and gt["object_region"].sum() == 44 * 11
    np.save(tmp_path / f"{name}_visgt.npy", np.zeros((160, X), dtype=bool))
    with pytest.raises(ValueError, match=r"_visgt.npy: visibility of shape \(160, 80\).*460 x 80"):
        protocol.ground_truth(frame)


def test_exact_density_on_the_synthetic_city_under_kyn(synthetic_root):
    """The lidar-built truth of every scan left in the sequence; visibility from the first scan only."""
    protocol = build_protocol("kyn")
    ds = dataset(synthetic_root)
    frame = Frame(ds, 0, ds[0])
    gt = protocol.ground_truth(frame)
    assert int(gt["num_scans"]) == len(ds.poses[frame.sequence]) - frame.row < 300
    assert gt["visible_first_scan"].any() and (gt["occupied"] & ~gt["visible_first_scan"]).any()
    result = oracle_run(synthetic_root, protocol, indices=[0])
    m = result.mean()["kyn"]
    assert m["o_acc"] > 0.8 and set(m) == {"o_acc", "ie_acc", "ie_rec"}
    empty = oracle_run(synthetic_root, protocol, empty=True, indices=[0]).mean()["kyn"]
    assert empty["ie_rec"] == 1.0 and empty["ie_acc"] < m["ie_acc"]
