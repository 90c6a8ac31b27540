"""A released original KDBTS checkpoint runs through the evaluation and rendering entry points (issue 8)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.checkpoints.original_layout import random_original

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("released") / "training-checkpoint.pt"
    torch.save({"model": random_original("kdbts"), "trainer": {"iteration": 250000, "epoch": 20}}, path)
    yield path
    path.unlink(missing_ok=True)


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "BTS_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_released_file_runs_through_occupancy_and_rendering(released, synthetic_root, tmp_path):
    data = ["data=synthetic", f"data.root={synthetic_root}", "data.image_size=[48,176]", "data.num_workers=0"]
    proc = _run(["evaluation/occupancy.py", f"checkpoint={released}", *data, "max_frames=1",
                 f"output_dir={tmp_path / 'occ'}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "occ" / "results.json").read_text())
    assert result["model"]["source_format"] == "original" and result["model"]["kind"] == "bts"  # the student
    assert result["data"]["pixel_convention"] == "corner"  # the original's intrinsics for an imported model
    proc = _run(["render_novel_view.py", f"checkpoint={released}", "mode=figure", *data, "render.num_samples=8",
                 "bev.resolution=[16,16]", "bev.num_slices=8", "input.split=test", f"output.dir={tmp_path / 'r'}"],
                tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = Path(proc.stdout.strip().splitlines()[-1].removeprefix("wrote "))
    assert written.suffix == ".png" and written.is_file()
