"""The project's checkpoint format (docs/decisions.md §5).

A checkpoint is a dict that ``torch.load(weights_only=True)`` reads: ``format_version``, ``model_kind``
(``bts``, ``mvbts`` or ``kdbts``), ``config`` (the resolved model config as plain containers), ``model`` (the state
dict) and, for resuming, ``optimizer``, ``lr_scheduler`` and ``trainer`` (``iteration``, ``epoch``). Rebuilding a
model from a checkpoint never downloads weights: they come from the file.

Versions: 2 names the density field's inverse-depth code range ``field.code_near`` / ``field.code_far`` (version 1:
``field.near`` / ``field.far``, easily mistaken for the renderer's ray range). Older files are read through
:data:`MIGRATIONS`, one step per version, and the loaded dict says where it came from (``migrated_from``).
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bts.errors import UserError

FORMAT_VERSION = 2
MODEL_KINDS = ("bts", "mvbts", "kdbts")
_REQUIRED = ("format_version", "model_kind", "config", "model")


class CheckpointError(ValueError, UserError):
    """A checkpoint file that is missing, not a checkpoint, or of another model or config (the file named)."""


def save_checkpoint(path: Path | str, *, model_kind: str, config: dict, model: dict, optimizer: dict | None = None,
                    lr_scheduler: dict | None = None, trainer: dict | None = None,
                    provenance: dict | None = None) -> Path:
    """Write atomically (a temporary file renamed into place), so a crash never leaves a half-written file.

    ``provenance`` says where a derived checkpoint came from (:mod:`bts.checkpoints.average`: the averaged files).
    """
    if model_kind not in MODEL_KINDS:
        raise CheckpointError(f"model_kind must be one of {MODEL_KINDS}, got {model_kind!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {"format_version": FORMAT_VERSION, "model_kind": model_kind, "config": config,
                               "model": model}
    for key, value in (("optimizer", optimizer), ("lr_scheduler", lr_scheduler), ("trainer", trainer),
                       ("provenance", provenance)):
        if value is not None:
            payload[key] = value
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def _field_code_range(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 -> 2: ``field.near`` / ``field.far`` become ``field.code_near`` / ``field.code_far``."""
    config = dict(data["config"])
    field = dict(config.get("field", {}))
    for old, new in (("near", "code_near"), ("far", "code_far")):
        if old in field:
            field[new] = field.pop(old)
    config["field"] = field
    return {**data, "config": config, "format_version": 2}


MIGRATIONS = {1: _field_code_range}  # format_version -> the function that lifts a checkpoint to the next version


def load_checkpoint(path: Path | str, kinds: tuple[str, ...] = MODEL_KINDS) -> dict[str, Any]:
    """Read and validate a checkpoint; ``kinds`` are the model kinds the caller accepts."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if not zipfile.is_zipfile(path):
        with path.open("rb") as f:
            head = f.read(2)
        if head[:1] != b"\x80":  # neither torch.save's zip archive nor a legacy pickle
            raise CheckpointError(f"{path} is not a checkpoint: a PyTorch checkpoint (torch.save) is a zip archive, "
                                  f"this file of {path.stat().st_size} bytes is something else")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's advice (weights_only=False) would run arbitrary code from the file: not offered here.
        raise CheckpointError(f"{path} is not a checkpoint of this project: it holds Python objects beyond tensors and "
                              "plain containers, and checkpoints of this project load with weights_only=True (an "
                              "original BTS/KDBTS file is converted with `python -m scripts.convert_original`)") from e
    except Exception as e:  # noqa: BLE001 - reading errors have many types
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(e).__name__}: "
                              f"{str(e).strip().splitlines()[0] if str(e).strip() else ''})") from e
    if not isinstance(data, dict) or any(k not in data for k in _REQUIRED):
        have = sorted(data) if isinstance(data, dict) else type(data).__name__
        hint = " (an original BTS/KDBTS checkpoint? convert it with `python -m scripts.convert_original`)" \
            if isinstance(data, dict) and "model" in data else ""
        raise CheckpointError(f"{path} is not a checkpoint of this project: expected keys {list(_REQUIRED)}, "
                              f"found {have}{hint}")
    first = data["format_version"]
    while data["format_version"] in MIGRATIONS:
        data = MIGRATIONS[data["format_version"]](data)
    if data["format_version"] != FORMAT_VERSION:
        raise CheckpointError(f"{path} has format_version {first}, this code reads versions "
                              f"{sorted({*MIGRATIONS, FORMAT_VERSION})}")
    if first != FORMAT_VERSION:
        data["migrated_from"] = first
    if data["model_kind"] not in kinds:
        raise CheckpointError(f"{path} holds a {data['model_kind']!r} model, expected one of {list(kinds)}")
    return data


def load_state_strict(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """``load_state_dict(strict=True)`` with a message naming missing and unexpected keys and differing shapes."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                    for k in set(own) & set(state) if state[k].shape != own[k].shape)
    if missing or unexpected or shapes:
        parts = [f"{name} ({len(keys)}): {', '.join(keys[:10])}{' ...' if len(keys) > 10 else ''}"
                 for name, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                                    ("different shapes", shapes)) if keys]
        raise CheckpointError(f"{source} does not match the model: " + "; ".join(parts))
    module.load_state_dict(state, strict=True)
