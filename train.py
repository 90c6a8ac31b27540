"""Train BTS, MVBTS or KDBTS: ``python train.py -cn bts|mvbts|kdbts [overrides]``.

Writes into ``outputs/<config name>/<timestamp>/``: ``config.yaml`` (the resolved config), ``checkpoints/``
(``last.pt``, ``step_<N>.pt``) and ``tensorboard/``; ``outputs/<config name>/latest`` points to the newest run.
Multi-GPU / multi-node: ``torchrun --nproc_per_node N train.py -cn bts trainer.backend=nccl``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import Dataset

from bts.training.engine import occupancy_labels_config, train
from datasets.factory import build_dataset

log = logging.getLogger("train")


def build_datasets(cfg: dict) -> tuple[Dataset, Dataset]:
    """The training set (with exact occupancy labels for the supervised objective) and the validation set (with
    lidar depth) of a resolved config; the engine calls it in every process (a module-level function: picklable)."""
    train_set = build_dataset(cfg["data"], cfg["paths"], "train", train=True,
                              occupancy_labels=occupancy_labels_config(cfg))
    val_set = build_dataset(cfg["data"], cfg["paths"], "val", lidar_depth=True)
    return train_set, val_set


def _link_latest(run_dir: Path) -> None:
    latest = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.name)
    os.replace(tmp, latest)


@hydra.main(config_path="configs", config_name="bts", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    if int(os.environ.get("RANK", "0")) == 0:
        OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
        _link_latest(run_dir)
    log.info("run folder: %s", run_dir)
    train(OmegaConf.to_container(cfg, resolve=True), run_dir, build_datasets)
    log.info("done: checkpoint %s, logs %s", run_dir / "checkpoints" / "last.pt", run_dir / "tensorboard")


if __name__ == "__main__":
    main()
