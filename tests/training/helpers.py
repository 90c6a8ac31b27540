"""Compose the real configs with the debug preset on the session's tiny synthetic city, and train on them as
``train.py`` does (its dataset builder handed to the engine)."""

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from bts.training import engine
from bts.training.config import TrainConfig
from train import build_datasets

REPO = Path(__file__).resolve().parents[2]
CONFIGS = str(REPO / "configs")


def debug_config(root: Path, name: str = "bts", overrides=()) -> dict:
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        cfg = compose(config_name=name, overrides=["preset=debug", f"data.root={root}", *overrides])
    return OmegaConf.to_container(cfg, resolve=True)


def train(cfg: dict, run_dir: Path) -> None:
    """:func:`bts.training.engine.train` on the typed config of ``cfg``, with the datasets of ``train.py``."""
    engine.train(TrainConfig.from_dict(cfg), run_dir, build_datasets)


def run_train(args, cwd, env=None, check=True) -> subprocess.CompletedProcess:
    """``python train.py *args`` as a user runs it (output captured; ``check``: fail on a non-zero exit)."""
    return subprocess.run([sys.executable, str(REPO / "train.py"), *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, check=check)


def on_nth_call(monkeypatch, owner, name: str, n: int, *, inputs=None, output=None) -> None:
    """Patch ``owner.name`` so that its ``n``-th call gets ``inputs(*args, **kwargs) -> (args, kwargs)`` instead of
    its arguments and returns ``output(result, *args, **kwargs)`` instead of its result; other calls are untouched."""
    real = getattr(owner, name)
    calls = {"n": 0}

    def wrapper(*args, **kwargs):
        calls["n"] += 1
        hit = calls["n"] == n
        if hit and inputs is not None:
            args, kwargs = inputs(*args, **kwargs)
        result = real(*args, **kwargs)
        return output(result, *args, **kwargs) if hit and output is not None else result

    monkeypatch.setattr(owner, name, wrapper)
