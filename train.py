"""Train BTS, MVBTS or KDBTS: ``python train.py -cn bts|mvbts|kdbts [overrides]``.

Writes into ``outputs/<config name>/<timestamp>/`` (``<timestamp>_2``, ... for runs started in the same second):
``config.yaml`` (the resolved config), ``checkpoints/`` (``last.pt``, ``step_<N>.pt``) and ``tensorboard/``;
``outputs/<config name>/latest`` points to the newest run that has written a checkpoint (it moves when a run's first
checkpoint lands, so a run that fails early leaves it alone). ``trainer.resume_from=<run>/checkpoints/<file>.pt``
continues in ``<run>``. A KDBTS run writes ``teacher.json``: the teacher checkpoint's resolved path and SHA-256.
Multi-GPU / multi-node: ``torchrun --nproc_per_node N train.py -cn bts trainer.backend=nccl``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import Dataset

from bts.checkpoints.format import CheckpointError
from bts.cli import friendly_errors
from bts.config import register_configs
from bts.encoders.backbone import require_imagenet_weights
from bts.models.factory import build_encoder
from bts.numerics import flush_subnormals, set_cpu_memory
from bts.training.config import TrainConfig
from bts.training.engine import needs_imagenet_weights, train
from datasets.factory import build_dataset

log = logging.getLogger("train")


def build_datasets(cfg: TrainConfig) -> tuple[Dataset, Dataset]:
    """The training set (with exact occupancy labels for the supervised objective) and the validation set (with
    lidar depth) of a run's config; the engine calls it in every process (a module-level function: picklable)."""
    train_set = build_dataset(cfg.data, cfg.paths, "train", train=True, occupancy_labels=cfg.occupancy_points)
    val_set = build_dataset(cfg.data, cfg.paths, "val", lidar_depth=True)
    return train_set, val_set


def _link_latest(run_dir: Path) -> None:
    latest = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.name)
    os.replace(tmp, latest)


def _file_sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def check_teacher(cfg: DictConfig) -> dict | None:
    """KDBTS: the teacher checkpoint must exist before any data is generated or built; returns its record (resolved
    path, SHA-256), written to ``teacher.json``, so that the run names the file it learnt from, not ``latest``."""
    kd = cfg.get("kd")
    if kd is None or cfg.trainer.resume_from:
        return None  # a resumed KDBTS run takes every weight from its own checkpoint
    path = Path(kd.teacher_checkpoint)
    if not path.is_file():
        raise CheckpointError(
            f"the MVBTS teacher checkpoint {path} does not exist: train the teacher first with "
            "`python train.py -cn mvbts` (same data and preset), or set kd.teacher_checkpoint=PATH "
            "(or the environment variable MVBTS_CHECKPOINT)")
    resolved = path.resolve()
    return {"given": str(path), "path": str(resolved), "sha256": _file_sha256(resolved)}


def check_weights(cfg: TrainConfig) -> None:
    """ImageNet weights or an encoder weights file, where this run loads them, must be there (and fit the encoder)
    before any data is generated or built."""
    encoder = cfg.model["encoder"]
    if not needs_imagenet_weights(cfg):
        return
    if encoder.get("weights") is not None:
        build_encoder(encoder)  # reads and checks the file (CheckpointError names it); cheap next to the run
    elif encoder.get("on_missing_weights", "error") == "error":
        require_imagenet_weights(encoder["depth"])


register_configs()  # the schemas the config groups extend, and ${run_dir:...} of hydra.run.dir (configs/bts.yaml)


@hydra.main(config_path="configs", config_name="bts", version_base="1.3")
@friendly_errors
def main(cfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    typed = TrainConfig.from_dict(OmegaConf.to_container(cfg, resolve=True))  # the one conversion of the run
    set_cpu_memory(typed.trainer.cpu_memory)  # before the first large allocation (bts/numerics.py); checked in train()
    flush_subnormals(typed.trainer.flush_denormal)  # before any tensor operation (bts/numerics.py); checked in train()
    teacher = check_teacher(cfg)
    if teacher is not None:
        cfg.kd.teacher_checkpoint = teacher["path"]
        typed = dataclasses.replace(typed, kd=dataclasses.replace(typed.kd, teacher_checkpoint=teacher["path"]))
    if int(os.environ.get("RANK", "0")) == 0:
        OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
        if teacher is not None:
            (run_dir / "teacher.json").write_text(json.dumps(teacher, indent=2) + "\n")
    log.info("run folder: %s", run_dir)
    check_weights(typed)
    train(typed, run_dir, build_datasets,
          on_first_checkpoint=functools.partial(_link_latest, run_dir))
    log.info("done: checkpoint %s, logs %s", run_dir / "checkpoints" / "last.pt", run_dir / "tensorboard")


if __name__ == "__main__":
    main()
