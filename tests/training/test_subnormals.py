"""Subnormal floats flushed to zero (``trainer.flush_denormal``, bts/numerics.py): the mode reaches every PyTorch
thread only when set before the first parallel operation, and a training step gives the same loss either way.

The mode is per process and thread, so each case runs in a fresh interpreter (never in the test process)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(code: str, *args: str, threads: int = 2) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_flushing_set_first_reaches_every_thread():
    r = _run("import json, torch; from bts.numerics import flush_subnormals, flushed_share\n"
             "torch.set_num_threads(2); ok = flush_subnormals(True)\n"
             "print(json.dumps({'ok': ok, 'share': flushed_share(), 'tiny': float(torch.tensor([1e-39]) * 1)}))")
    assert r == {"ok": True, "share": 1.0, "tiny": 0.0}


def test_flushing_set_after_the_threads_started_is_reported():
    r = _run("import json, torch; from bts.numerics import flush_subnormals, flushed_share\n"
             "torch.set_num_threads(2); torch.ones(1 << 22).sum()  # the worker thread starts, not flushing\n"
             "ok = flush_subnormals(True)\n"
             "print(json.dumps({'ok': ok, 'share': flushed_share()}))")
    assert r["ok"] is False and 0.0 < r["share"] < 1.0  # the main thread flushes, the worker does not


def test_turning_it_off_keeps_subnormals():
    r = _run("import json, torch; from bts.numerics import flush_subnormals, flushed_share\n"
             "ok = flush_subnormals(False)\n"
             "print(json.dumps({'ok': ok, 'share': flushed_share(), 'tiny': float(torch.tensor([1e-39]) * 1)}))")
    assert r["ok"] is True and r["share"] == 0.0 and r["tiny"] > 0.0


STEP = """
import json, sys, torch
from bts.numerics import flush_subnormals
flush_subnormals(sys.argv[1] == "1")
from scripts.benchmarks import model_config, synthetic_batch
from bts.models import build_model
from bts.rendering.renderer import RendererConfig
from bts.training.objective import ObjectiveConfig, training_step
torch.manual_seed(0)
model = build_model(model_config("mvbts", 18))
model.train()
out = training_step(model, synthetic_batch(1, 48, 160, torch.device("cpu")), ObjectiveConfig(rays_per_element=256),
                    RendererConfig(num_samples=64), torch.Generator().manual_seed(0), flip=False)
out.loss.total.backward()
grads = [p.grad.flatten() for p in model.parameters() if p.grad is not None]
tiny = torch.finfo(torch.float32).tiny
values = torch.cat([out.render.weights.detach().flatten(), *grads])
print(json.dumps({"loss": {k: float(v) for k, v in out.loss.terms.items()},
                  "grad_norm": float(torch.cat(grads).norm()),
                  "subnormal": int(((values != 0) & (values.abs() < tiny)).sum())}))
"""


@pytest.mark.slow
def test_a_training_step_is_the_same_with_subnormals_flushed():
    kept = _run(STEP, "0", threads=1)
    flushed = _run(STEP, "1", threads=1)
    assert kept["subnormal"] > 0  # the step does produce subnormal weights or gradients ...
    assert flushed["subnormal"] == 0  # ... and flushing removes them
    for name, value in kept["loss"].items():
        assert abs(flushed["loss"][name] - value) <= 1e-6 * abs(value) + 1e-12, name
    assert abs(flushed["grad_norm"] / kept["grad_norm"] - 1) < 1e-5
