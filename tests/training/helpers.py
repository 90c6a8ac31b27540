"""Compose the real configs with the debug preset on the session's tiny synthetic city, and train on them as
``train.py`` does (its dataset builder handed to the engine)."""

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from bts.training import engine
from train import build_datasets

CONFIGS = str(Path(__file__).resolve().parents[2] / "configs")


def debug_config(root: Path, name: str = "bts", overrides=()) -> dict:
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        cfg = compose(config_name=name, overrides=["preset=debug", f"data.root={root}", *overrides])
    return OmegaConf.to_container(cfg, resolve=True)


def train(cfg: dict, run_dir: Path) -> None:
    """:func:`bts.training.engine.train` with the datasets of ``train.py``."""
    engine.train(cfg, run_dir, build_datasets)
