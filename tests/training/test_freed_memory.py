"""Where large CPU tensors get their memory (``trainer.cpu_memory``, bts/numerics.py): with ``keep`` a training
step after the first faults in a small fraction of the pages it does under glibc's defaults, and computes the same
numbers.

The setting is per process, so each case runs in a fresh interpreter."""

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


STEP = """
import json, resource, sys, torch
from bts.numerics import set_cpu_memory
ok = set_cpu_memory(sys.argv[1])
from scripts.benchmarks import model_config, synthetic_batch
from bts.models import build_model
from bts.rendering.renderer import RendererConfig
from bts.training.objective import ObjectiveConfig, training_step
torch.manual_seed(0)
model = build_model(model_config("bts", 18))
model.train()
batch = synthetic_batch(1, 48, 160, torch.device("cpu"))
faults = []
for step in range(4):  # 2048 rays x 64 samples: the point MLP's tensors are 50-100 MB, above glibc's mmap threshold
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    model.zero_grad(set_to_none=True)
    out = training_step(model, batch, ObjectiveConfig(rays_per_element=2048), RendererConfig(num_samples=64),
                        torch.Generator().manual_seed(0), flip=False)
    out.loss.total.backward()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
print(json.dumps({"ok": ok, "loss": {k: float(v) for k, v in out.loss.terms.items()},
                  "grad_norm": float(grads.norm()), "faults": faults}))
"""


@glibc_only
def test_kept_memory_spares_the_page_faults_and_changes_no_number():
    kept = _run(STEP, "keep")
    system = _run(STEP, "system")
    assert kept["ok"] is True and system["ok"] is True
    assert min(system["faults"][1:]) > 10_000  # glibc's default: the large tensors' pages again in every step ...
    assert min(kept["faults"][1:]) < 0.2 * min(system["faults"][1:])  # ... kept: the later steps reuse them
    assert kept["loss"].keys() == system["loss"].keys() and system["loss"]
    for name, value in system["loss"].items():
        assert abs(kept["loss"][name] - value) <= 1e-6 * abs(value) + 1e-12, name
    assert abs(kept["grad_norm"] / system["grad_norm"] - 1) < 1e-6


def test_the_mode_is_a_checked_trainer_key():
    from bts.training.config import ConfigError, TrainerConfig

    assert TrainerConfig().cpu_memory == "keep"
    with pytest.raises(ConfigError, match="trainer.cpu_memory must be one of"):
        TrainerConfig(cpu_memory="kept")
