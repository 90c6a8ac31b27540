"""Freed memory kept by the process (``trainer.keep_freed_memory``, bts/numerics.py): a large tensor freed and
allocated again no longer costs a page fault per page, and a training step computes the same numbers.

The allocator's setting is per process, so each case runs in a fresh interpreter."""

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
glibc_only = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="the setting is glibc's mallopt")


def _run(code: str, *args: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


FAULTS = """
import json, resource, sys, torch
from bts.numerics import keep_freed_memory
ok = keep_freed_memory(sys.argv[1] == "1")
def cycles():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(4):
        x = torch.empty(1 << 24)  # 64 MiB: far above glibc's largest mmap threshold (32 MiB)
        x.fill_(1.0)
        del x
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 4
cycles()  # the first allocation always faults its pages in
print(json.dumps({"ok": ok, "faults_per_cycle": cycles(), "pages": (1 << 26) // resource.getpagesize()}))
"""


@glibc_only
def test_a_freed_tensor_is_reused_without_page_faults():
    kept = _run(FAULTS, "1")
    returned = _run(FAULTS, "0")
    assert kept["ok"] is True and returned["ok"] is False
    assert returned["faults_per_cycle"] >= 0.5 * returned["pages"]  # glibc's default: every page again, each cycle
    assert kept["faults_per_cycle"] <= 0.02 * kept["pages"]


STEP = """
import json, sys, torch
from bts.numerics import keep_freed_memory
keep_freed_memory(sys.argv[1] == "1")
from scripts.benchmarks import model_config, synthetic_batch
from bts.models import build_model
from bts.rendering.renderer import RendererConfig
from bts.training.objective import ObjectiveConfig, training_step
torch.manual_seed(0)
model = build_model(model_config("bts", 18))
model.train()
out = training_step(model, synthetic_batch(1, 48, 160, torch.device("cpu")), ObjectiveConfig(rays_per_element=256),
                    RendererConfig(num_samples=32), torch.Generator().manual_seed(0), flip=False)
out.loss.total.backward()
grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
print(json.dumps({"loss": {k: float(v) for k, v in out.loss.terms.items()}, "grad_norm": float(grads.norm())}))
"""


@glibc_only
def test_a_training_step_is_the_same_with_freed_memory_kept():
    kept = _run(STEP, "1")
    returned = _run(STEP, "0")
    assert kept["loss"].keys() == returned["loss"].keys() and kept["loss"]
    for name, value in returned["loss"].items():
        assert abs(kept["loss"][name] - value) <= 1e-6 * abs(value) + 1e-12, name
    assert abs(kept["grad_norm"] / returned["grad_norm"] - 1) < 1e-6


def test_the_setting_is_a_trainer_key_on_by_default():
    from bts.training.config import TrainerConfig

    assert TrainerConfig().keep_freed_memory is True
