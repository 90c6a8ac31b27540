"""The experiment scripts' ``--smoke`` runs as the tests start them: a subprocess from the repository root on the
session's tiny synthetic city, at a tiny resolution and ray count, with its own evaluation cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TINY = ("data.image_size=[48,176]", "data.num_workers=0", "trainer.batch_size=1", "loss.rays_per_element=64",
        "renderer.num_samples=8")


def smoke_command(script: str, options: list[str], root: Path, tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    """``python <script> --smoke <options>`` with ``--override`` for the city at ``root`` and :data:`TINY`, and
    the environment (``BTS_CACHE_DIR`` under ``tmp_path``)."""
    args = [sys.executable, script, "--smoke", *options]
    for override in (f"data.root={root}", *TINY):
        args += ["--override", override]
    return args, {**os.environ, "BTS_CACHE_DIR": str(tmp_path / "cache")}


def run_ok(args: list[str], env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess:
    """Run ``args`` from the repository root; fail the test with the end of its output unless it succeeds."""
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc
