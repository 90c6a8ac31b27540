"""Fisheye offsets drawn per training datapoint from a list (the KDBTS loader's offset list)."""

from __future__ import annotations

import pytest
import torch

from datasets.factory import loader_config
from datasets.kitti_360 import FrameSelection, Kitti360Config, Kitti360Dataset
from datasets.kitti_360.frames import select_views

OFFSETS = (4, 7, 10)


def test_offsets_in_the_views_and_clamped_at_the_sequence_end():
    selection = FrameSelection(fisheye_offset=list(OFFSETS))
    assert selection.fisheye_offset == OFFSETS and selection.fisheye_offsets == OFFSETS
    views = select_views(selection, row=3, side="l", num_rows=30)
    assert [v.row for v in views[4:]] == [7, 8, 7, 8], "outside training: the list's first offset"
    views = select_views(selection, row=3, side="r", num_rows=30, fisheye_offset=10)
    assert [(v.camera, v.row) for v in views[4:]] == [("image_03", 13), ("image_03", 14), ("image_02", 13),
                                                      ("image_02", 14)]
    views = select_views(selection, row=25, side="l", num_rows=30, fisheye_offset=10)
    assert [v.row for v in views[4:]] == [29, 29, 29, 29], "rows past the end are clamped to the last one"
    assert [v.offset for v in views[4:]] == [10, 11, 10, 11]


@pytest.mark.parametrize("bad", [[], [3, -1], [2.5], "10", [True]])
def test_bad_offsets_are_refused(bad):
    with pytest.raises(ValueError, match="fisheye_offset"):
        FrameSelection(fisheye_offset=bad)


def _dataset(root, draw: bool) -> Kitti360Dataset:
    config = Kitti360Config(image_size=(32, 120), frames=FrameSelection(fisheye_offset=OFFSETS),
                            draw_fisheye_offset=draw, use_preprocessed=False)
    return Kitti360Dataset(root, root / "splits" / "train_files.txt", config)


def test_every_drawn_offset_is_from_the_list(synthetic_root):
    dataset = _dataset(synthetic_root, draw=True)
    torch.manual_seed(0)
    seen = set()
    for _ in range(12):
        for i in range(len(dataset)):
            sequence, row, _ = dataset.datapoints[i]
            item = dataset[i]
            ids = dataset.poses[sequence].frame_ids
            last = len(ids) - 1
            fisheye = item["frame_ids"][4:].tolist()
            drawn = [o for o in OFFSETS if fisheye == [int(ids[min(row + o + k, last)]) for k in (0, 1, 0, 1)]]
            assert drawn, f"fisheye frames {fisheye} of row {row} match no offset of {OFFSETS}"
            if row + max(OFFSETS) + 1 <= last:
                assert len(drawn) == 1
                seen.add(drawn[0])
    assert seen == set(OFFSETS), "each offset of the list is drawn"


def test_no_draw_outside_training(synthetic_root):
    dataset = _dataset(synthetic_root, draw=False)
    sequence, row, _ = dataset.datapoints[0]
    ids = dataset.poses[sequence].frame_ids
    for _ in range(5):
        assert dataset[0]["frame_ids"][4].item() == ids[min(row + OFFSETS[0], len(ids) - 1)]


def test_the_factory_draws_for_training_only():
    data = {"name": "synthetic", "root": None, "split_dir": None, "num_workers": 0, "synthetic": {},
            "image_size": [32, 120], "frames": {"num_timesteps": 2, "stereo": True, "fisheye": True,
                                                "fisheye_offset": list(OFFSETS)},
            "fisheye_mode": "pinhole", "fisheye_rotation": [0, -15], "fisheye_size": None, "color_jitter": True,
            "use_preprocessed": True, "apply_fisheye_tangential": False, "pixel_convention": "center"}
    assert loader_config(data, train=True).draw_fisheye_offset
    assert not loader_config(data, train=False).draw_fisheye_offset
    assert loader_config(data, train=False).frames.fisheye_offsets == OFFSETS
