"""Saving and restoring the whole training state: model, optimizer, scheduler, step counter and RNG states.

Random states are stored as tensors and plain lists so that the checkpoint stays readable with
``torch.load(weights_only=True)``; with ignite's ``DeterministicEngine`` this gives an exact resume.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bts.checkpoints.format import CheckpointError, load_checkpoint, load_state_strict, save_checkpoint

log = logging.getLogger(__name__)


def encode_rng_states(states: list[Any] | None) -> dict[str, Any] | None:
    """ignite's ``[python, torch, numpy]`` RNG states as weights-only-loadable values."""
    if states is None:
        return None
    py, th, npy = states
    return {"python": [py[0], list(py[1]), py[2]], "torch": th.clone(),
            "numpy": [npy[0], torch.from_numpy(np.asarray(npy[1]).astype(np.int64)), *npy[2:]]}


def decode_rng_states(data: dict[str, Any] | None) -> list[Any] | None:
    if data is None:
        return None
    py, npy = data["python"], data["numpy"]
    return [(py[0], tuple(py[1]), py[2]), data["torch"],
            (npy[0], npy[1].numpy().astype(np.uint32), *npy[2:])]


def config_differences(saved: Any, current: Any, prefix: str = "") -> list[str]:
    """Paths where two nested configs differ, e.g. ``encoder.depth: 50 != 18``."""
    if isinstance(saved, dict) and isinstance(current, dict):
        out = []
        for key in sorted(set(saved) | set(current)):
            path = f"{prefix}{key}"
            if key not in saved:
                out.append(f"{path}: not in the checkpoint")
            elif key not in current:
                out.append(f"{path}: only in the checkpoint")
            else:
                out += config_differences(saved[key], current[key], path + ".")
        return out
    return [] if saved == current else [f"{prefix.rstrip('.')}: checkpoint {saved!r} != config {current!r}"]


def _files_resolved(model_config: Any) -> Any:
    """The model config with its encoder weights file as a resolved path, so that one file named relatively in one
    config and absolutely in the other is the same config."""
    encoder = model_config.get("encoder") if isinstance(model_config, dict) else None
    if not isinstance(encoder, dict) or not isinstance(encoder.get("weights"), str):
        return model_config
    return {**model_config, "encoder": {**encoder, "weights": str(Path(encoder["weights"]).resolve())}}


def save_training_state(path: Path, *, model_kind: str, model_config: dict, model, optimizer, scheduler,
                        engine) -> Path:
    state = engine.state_dict()
    trainer = {"iteration": int(engine.state.iteration), "epoch": int(engine.state.epoch),
               "epoch_length": int(state["epoch_length"]), "max_epochs": int(state["max_epochs"]),
               "rng_states": encode_rng_states(state.get("rng_states"))}
    return save_checkpoint(path, model_kind=model_kind, config=model_config, model=model.state_dict(),
                           optimizer=optimizer.state_dict(), lr_scheduler=scheduler.state_dict(), trainer=trainer)


def restore_training_state(path: Path, *, model_kind: str, model_config: dict, model, optimizer, scheduler,
                           engine) -> int:
    """Load a checkpoint written by :func:`save_training_state`; refuse one of another model or config."""
    data = load_checkpoint(path, kinds=(model_kind,))
    diffs = config_differences(_files_resolved(data["config"]), _files_resolved(model_config))
    if diffs:
        raise CheckpointError(f"{path} was trained with another model config: " + "; ".join(diffs))
    for key in ("optimizer", "lr_scheduler", "trainer"):
        if key not in data:
            raise CheckpointError(f"{path} has no {key!r} state, so training cannot resume from it")
    load_state_strict(model, data["model"], str(path))
    optimizer.load_state_dict(data["optimizer"])
    scheduler.load_state_dict(data["lr_scheduler"])
    t = data["trainer"]
    engine.load_state_dict({"iteration": t["iteration"], "epoch_length": t["epoch_length"],
                            "max_epochs": t["max_epochs"], "rng_states": decode_rng_states(t["rng_states"])})
    log.info("resumed from %s at step %d", path, t["iteration"])
    return t["iteration"]

