"""Start a KDBTS run from a trained MVBTS checkpoint: the encoder and the teacher head come from it."""

from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from bts.checkpoints.format import CheckpointError, load_checkpoint, load_state_strict
from bts.training.state import config_differences

log = logging.getLogger(__name__)

# What must agree between the teacher's config and the KDBTS model config (training-only knobs may differ).
_ARCHITECTURE = {"encoder": ("depth", "decoder_widths", "feature_dim"),
                 "field": ("num_freqs", "freq_factor", "code_near", "code_far"), "fusion": None}


def _architecture(cfg: dict) -> dict:
    return {group: cfg[group] if keys is None else {k: cfg[group][k] for k in keys}
            for group, keys in _ARCHITECTURE.items()}


def load_teacher(model: nn.Module, model_config: dict, path: Path) -> None:
    """Load encoder and fusion field of ``model`` (a KDBTS model) from an MVBTS checkpoint; the student head keeps
    its fresh initialisation."""
    if not path.is_file():
        raise CheckpointError(
            f"the MVBTS teacher checkpoint {path} does not exist: train the teacher first with "
            f"`python train.py -cn mvbts` (same data and preset), or set kd.teacher_checkpoint=PATH "
            f"(or the environment variable MVBTS_CHECKPOINT)")
    data = load_checkpoint(path, kinds=("mvbts",))
    mismatch = config_differences(_architecture(data["config"]), _architecture(model_config))
    if mismatch:
        raise CheckpointError(f"the teacher {path} does not match model config: " + "; ".join(mismatch))
    views = {k: data["config"].get("views", {}).get(k) for k in ("num_train_views", "train_candidates")}
    ours = {k: model_config.get("views", {}).get(k) for k in views}
    if views != ours:
        log.warning("the teacher %s was trained encoding views %s, this run's teacher encodes %s (model.views; "
                    "e.g. model/views=seeing for a teacher trained with it)", path, views, ours)
    shared = nn.ModuleDict({"encoder": model.encoder, "field": model.field})
    load_state_strict(shared, data["model"], str(path))
    log.info("encoder and teacher head loaded from %s; student head freshly initialised", path)

