"""The reproduction recipe (issue 7) composes and runs end to end for two steps per stage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["bts", "mvbts", "kdbts"])
def test_reproduce_preset_composes(name):
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose(name, overrides=["preset=reproduce"])
    assert cfg.data.name == "synthetic" and cfg.data.synthetic.sequences >= 4  # held-out test sequence
    assert cfg.model.encoder.depth == 18 and cfg.model.encoder.pretrained is False
    assert cfg.model.kind == name


@pytest.mark.slow
def test_reproduce_smoke_runs_every_stage(synthetic_root, tmp_path):
    out = tmp_path / "reproduce"
    small = [f"data.root={synthetic_root}", "data.image_size=[48,176]", "data.num_workers=0",
             "model.encoder.depth=18", "trainer.batch_size=1", "loss.rays_per_element=64", "renderer.num_samples=8"]
    args = [sys.executable, "-m", "bts.reproduce", "--smoke", "--out", str(out), "--render-override",
            "render.num_samples=8", "--render-override", "bev.resolution=[16,16]", "--render-override",
            "bev.num_slices=8"]
    for o in small:
        args += ["--override", o]
    env = {**os.environ, "BTS_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    summary = json.loads((out / "results.json").read_text())
    names = [r["model"] for r in summary["rows"]]
    assert names[:3] == ["empty (baseline)", "behind BTS depth (baseline)", "BTS"] and "KDBTS" in names
    kd = next(r for r in summary["rows"] if r["model"] == "KDBTS")
    assert set(kd["occupancy"]) >= {"exact", "bts"}
    empty = summary["rows"][0]["occupancy"]["exact"]
    assert empty["ie_rec"] == 1.0  # the all-empty baseline predicts every hidden empty cell right
    assert "| KDBTS |" in (out / "results.md").read_text()
    assert {"train bts", "train mvbts", "train kdbts"} <= set(summary["stages"])
    import imageio.v3 as iio

    frames = iio.imread(out / summary["video"])
    single = iio.imread(out / "videos" / "bts.mp4")
    assert len(frames) == 2 and frames.shape[1] >= 3 * single.shape[1] - 6  # three models stacked
    # A second run resumes: every stage is done already.
    again = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "train bts: done already" in again.stdout
