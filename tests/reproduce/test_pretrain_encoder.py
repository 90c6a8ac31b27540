"""Encoder pretraining on the city's material labels (scripts/pretrain_encoder.py), and a BTS run starting from it."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from bts.encoders.weights import read_encoder_weights
from bts.models.factory import build_encoder
from tests.training.helpers import run_train

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from scripts.pretrain_encoder import main, pixel_accuracy, pretrain  # noqa: E402

SMALL = {"depth": 18, "pretrained": False, "decoder_widths": [16, 16, 32, 64, 128], "feature_dim": 16}


def test_pretraining_learns_a_per_pixel_task():
    """Labels that only the image tells apart: class 1 where a bright rectangle is, 0 elsewhere (random positions,
    25 % of the pixels). After 50 steps the pixel accuracy is well above the majority class (measured: 0.97)."""
    torch.manual_seed(0)
    n, h, w = 16, 40, 48
    images = torch.full((n, 3, h, w), 0.2)
    labels = torch.zeros(n, h, w, dtype=torch.long)
    for i in range(n):
        y, x = torch.randint(0, h - 20, ()), torch.randint(0, w - 24, ())
        images[i, :, y:y + 20, x:x + 24] = 0.9
        labels[i, y:y + 20, x:x + 24] = 1
    majority = 1.0 - float(labels.float().mean())
    encoder = build_encoder(dict(SMALL))
    record = pretrain(encoder, images, labels, steps=50, batch_size=4, lr=3e-3, seed=0, log_every=10,
                      log=lambda *_: None)
    assert record["final_loss"] < record["curve"][0]["loss"]
    assert record["final_accuracy"] > max(0.9, majority + 0.05), (record["final_accuracy"], majority)
    assert 0.0 <= pixel_accuracy(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long)) == 1.0


def test_pretraining_on_the_tiny_city_then_bts_starts_from_the_file(synthetic_root, tmp_path):
    out = tmp_path / "enc.pt"
    assert main(["--steps", "2", "--batch-size", "2", "--log-every", "1", "--amp", "none", "--out", str(out),
                 "preset=debug", f"data.root={synthetic_root}"]) == 0
    data = read_encoder_weights(out)
    provenance = data["provenance"]
    assert provenance["images"] > 0 and len(provenance["class_pixels"]) == len(provenance["classes"]) == 17
    assert sum(provenance["class_pixels"]) == provenance["images"] * 64 * 240  # the debug preset's 64x240
    assert out.with_suffix(".json").is_file()
    run = run_train(["-cn", "bts", "preset=debug", f"data.root={synthetic_root}", "trainer.max_steps=1",
                     f"model.encoder.weights={out}", f"paths.output_dir={tmp_path / 'runs'}"], cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    checkpoints = list((tmp_path / "runs").rglob("step_*.pt")) + list((tmp_path / "runs").rglob("last.pt"))
    assert checkpoints
    # A wrong file fails before any data is read, naming the file.
    bad = run_train(["-cn", "bts", "preset=debug", f"data.root={synthetic_root}", "trainer.max_steps=1",
                     f"model.encoder.weights={tmp_path / 'missing.pt'}", f"paths.output_dir={tmp_path / 'r2'}"],
                    cwd=tmp_path, check=False)
    assert bad.returncode != 0 and "missing.pt: encoder weights file not found" in bad.stderr
