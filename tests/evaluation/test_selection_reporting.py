"""One way to choose what is evaluated or rendered (``evaluation/selection.py``) and one way to report it
(``evaluation/reporting.py``), shared by the three evaluations and ``render_novel_view.py``."""

import csv
import json
import math
from pathlib import Path

import pytest
from tests.evaluation.eval_fixtures import save_untrained
from omegaconf import OmegaConf
from torch import nn

import render_novel_view
from bts.inference import LoadedModel
from evaluation.reporting import mean_over_frames, metrics_table, write_results, written
from evaluation.selection import data_config, input_size, load

RUN_DATA = {"name": "kitti_360", "root": None, "image_size": [96, 352], "pixel_convention": "center",
            "frames": {"num_timesteps": 2, "stereo": True, "fisheye": True}}


@pytest.fixture(scope="module")
def bts_checkpoint(tmp_path_factory):
    return save_untrained(tmp_path_factory.mktemp("selection") / "bts.pt", "bts")


def test_views_is_the_one_name_of_the_view_subset(bts_checkpoint):
    cfg = OmegaConf.create({"checkpoint": str(bts_checkpoint), "device": "cpu", "views": None})
    loaded = load(cfg)
    assert loaded.views == "mono" and loaded.single_view
    assert loaded.record() == {"checkpoint": str(bts_checkpoint), "kind": "bts", "description": "bts",
                               "views": "mono", "source_format": "project"}
    cfg.views = "stereo"
    with pytest.raises(ValueError, match="views='stereo' needs an MVBTS checkpoint"):
        load(cfg)
    cfg.views = "stereoo"
    with pytest.raises(KeyError, match="unknown view subset"):
        load(cfg)


def fake(conventions=None, run_data=None):
    config = {"imported": {"conventions": conventions}} if conventions else {}
    return LoadedModel(nn.Linear(1, 1), "bts", config, Path("model.pt"),
                       {"data": run_data} if run_data is not None else None)


def test_rendering_chooses_its_data_as_the_evaluations_do(tmp_path):
    """The training run's data (at its size, reduced to the input view), the original's intrinsics for an imported
    model (which the renderer did not apply before), and data named on the command line with their own size."""
    cfg = OmegaConf.create({"data": None, "paths": {"cache_dir": str(tmp_path)}, "image_size": None})
    imported = fake({"intrinsics": "corner"}, RUN_DATA)
    data, source = data_config(cfg, imported)
    assert source == "the training run" and data.pixel_convention == "corner"
    rendered = render_novel_view.input_data(cfg, imported)
    assert rendered["pixel_convention"] == "corner" and rendered["image_size"] == [96, 352]
    assert rendered["frames"] == {"num_timesteps": 1, "stereo": False, "fisheye": False}
    ours = fake(run_data=RUN_DATA)
    assert render_novel_view.input_data(cfg, ours)["pixel_convention"] == "center"

    cfg.data = {**RUN_DATA, "image_size": [64, 240]}
    assert input_size(None, ours, data_config(cfg, ours)[0]) == (96, 352)  # evaluations: the training run's size
    assert render_novel_view.input_data(cfg, ours)["image_size"] == [64, 240]  # rendering named data: its own
    cfg.image_size = [32, 96]
    assert render_novel_view.input_data(cfg, ours)["image_size"] == [32, 96]
    assert render_novel_view.model_size(cfg, ours) == (32, 96)


def refuse_constants(name):
    raise ValueError(f"not strict JSON: {name}")


def test_one_writer_for_results(tmp_path):
    rows = [{"index": 0, "frame": "a", "x": 1.0, "y": math.nan}, {"index": 1, "frame": "b", "x": 3.0, "y": None}]
    means = mean_over_frames(rows, ["x", "y"])
    assert means == {"x": 2.0, "y": None}
    write_results(tmp_path, {"metrics": means, "spread": math.nan, "worst": math.inf}, rows, ["index", "frame", "x",
                                                                                                "y"])
    summary = json.loads((tmp_path / "results.json").read_text(), parse_constant=refuse_constants)
    assert summary == {"metrics": {"x": 2.0, "y": None}, "spread": None, "worst": "inf"}
    with open(tmp_path / "per_frame.csv") as f:
        table = list(csv.reader(f))
    assert table == [["index", "frame", "x", "y"], ["0", "a", "1.0", "nan"], ["1", "b", "3.0", ""]]
    printed = metrics_table("title", means, ["x", "y"]).splitlines()
    assert printed[0] == "title" and printed[3].split() == ["2.0000", "n/a"]
    assert written(tmp_path) == f"wrote {tmp_path / 'results.json'} and {tmp_path / 'per_frame.csv'}"
