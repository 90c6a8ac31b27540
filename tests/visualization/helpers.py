"""Helpers of the visualization tests (``render_novel_view.py`` and ``bts/visualization``), imported by their
fixtures and tests."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
IMAGE_SIZE = (48, 176)  # small (the encoder needs >= 33 rows), about the synthetic aspect ratio


def decode(path: Path) -> list[np.ndarray]:
    """Frames of a video file, decoded by imageio's ffmpeg reader."""
    with imageio.get_reader(path, format="FFMPEG") as reader:
        return [np.asarray(f) for f in reader]


def tiny_model_config() -> dict:
    """The paper's BTS model config (``-cn bts``, composed with its groups) with an untrained ResNet-18."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        composed = compose(config_name="bts", overrides=["model.encoder.depth=18", "model.encoder.pretrained=false"])
    return OmegaConf.to_container(composed.model, resolve=True)
