"""Encoder weights files: an image encoder's starting point other than ImageNet (``model.encoder.weights=FILE``).

The paper starts its encoder from ImageNet weights (``model.encoder.pretrained=true``), which need a download. A
weights file is the project's alternative: a dict that ``torch.load(weights_only=True)`` reads, with

- ``format``: :data:`WEIGHTS_FORMAT`, and ``format_version``;
- ``encoder``: the state dict of a whole :class:`~bts.encoders.ImageEncoder` (backbone and decoder);
- ``architecture``: the encoder config it was built with (``depth``, ``decoder_widths``, ``feature_dim``), checked
  against the run's ``model.encoder`` before anything is loaded;
- ``provenance``: how it was made (task, data, steps, final training scores), for the record.

``scripts/pretrain_encoder.py`` writes one from the synthetic city's material labels (the offline stand-in for
ImageNet pretraining). A run that starts from a file stores the resulting weights in its own checkpoints, so
evaluating or resuming it never reads the file again.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from bts.checkpoints.format import CheckpointError
from bts.encoders.image_encoder import ImageEncoder

WEIGHTS_FORMAT = "bts-encoder-weights"
WEIGHTS_VERSION = 1
ARCHITECTURE_KEYS = ("depth", "decoder_widths", "feature_dim")


def architecture_of(encoder_cfg: dict[str, Any]) -> dict[str, Any]:
    """The keys of an encoder config that fix the shapes of its weights (lists, so configs compare as plain data)."""
    defaults = {"depth": 50, "decoder_widths": [32, 32, 64, 128, 256], "feature_dim": 64}
    out = {k: encoder_cfg.get(k, defaults[k]) for k in ARCHITECTURE_KEYS}
    out["decoder_widths"] = [int(w) for w in out["decoder_widths"]]
    return out


def save_encoder_weights(path: Path | str, encoder: ImageEncoder, architecture: dict[str, Any],
                         provenance: dict[str, Any]) -> Path:
    """Write atomically (a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": WEIGHTS_FORMAT, "format_version": WEIGHTS_VERSION,
               "architecture": architecture_of(architecture),
               "encoder": {k: v.detach().cpu() for k, v in encoder.state_dict().items()},
               "provenance": provenance}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def read_encoder_weights(path: Path | str) -> dict[str, Any]:
    """Read and check a weights file; :class:`CheckpointError` names the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: encoder weights file not found (model.encoder.weights; "
                              "scripts/pretrain_encoder.py writes one)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is reported the same way
        raise CheckpointError(f"{path}: not a readable encoder weights file ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict) or data.get("format") != WEIGHTS_FORMAT:
        hint = " (it looks like a model checkpoint, not an encoder weights file)" \
            if isinstance(data, dict) and "model_kind" in data else ""
        raise CheckpointError(f"{path}: not an encoder weights file: expected format {WEIGHTS_FORMAT!r}{hint}")
    if data.get("format_version") != WEIGHTS_VERSION:
        raise CheckpointError(f"{path}: encoder weights format_version {data.get('format_version')!r}, this code "
                              f"reads {WEIGHTS_VERSION}")
    for key in ("architecture", "encoder"):
        if key not in data:
            raise CheckpointError(f"{path}: encoder weights file has no {key!r} entry")
    return data


def load_encoder_weights(encoder: ImageEncoder, path: Path | str, encoder_cfg: dict[str, Any]) -> dict[str, Any]:
    """Load a weights file into ``encoder`` (built from ``encoder_cfg``); returns the file's provenance. The file's
    architecture must equal the config's, key by key, or :class:`CheckpointError` names the keys that differ."""
    data = read_encoder_weights(path)
    want, have = architecture_of(encoder_cfg), data["architecture"]
    differ = [f"{k}: file {have.get(k)!r}, config {want[k]!r}" for k in ARCHITECTURE_KEYS if have.get(k) != want[k]]
    if differ:
        raise CheckpointError(f"{path}: encoder weights of another architecture than model.encoder ("
                              + "; ".join(differ) + ")")
    missing, unexpected = encoder.load_state_dict(data["encoder"], strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{path}: encoder weights do not fit the encoder (missing {list(missing)[:5]}, "
                              f"unexpected {list(unexpected)[:5]})")
    return dict(data.get("provenance", {}))


__all__ = ["WEIGHTS_FORMAT", "WEIGHTS_VERSION", "architecture_of", "load_encoder_weights", "read_encoder_weights",
           "save_encoder_weights"]
