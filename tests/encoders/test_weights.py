"""Encoder weights files (bts/encoders/weights.py) and ``model.encoder.weights`` in the model factory."""

from __future__ import annotations

import pytest
import torch

from bts.checkpoints.format import CheckpointError, save_checkpoint
from bts.encoders import ImageEncoder
from bts.encoders.weights import WEIGHTS_FORMAT, load_encoder_weights, read_encoder_weights, save_encoder_weights
from bts.models.factory import build_encoder

SMALL = {"depth": 18, "pretrained": False, "on_missing_weights": "error", "decoder_widths": [16, 16, 32, 64, 128],
         "feature_dim": 16}


def _small(seed: int) -> ImageEncoder:
    torch.manual_seed(seed)
    kwargs = {k: v for k, v in SMALL.items()}
    return build_encoder(kwargs)


def _same(a: ImageEncoder, b: ImageEncoder) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_weights_file_round_trips_through_the_config(tmp_path):
    source = _small(0)
    path = save_encoder_weights(tmp_path / "enc.pt", source, SMALL, {"task": "test"})
    data = read_encoder_weights(path)
    assert data["format"] == WEIGHTS_FORMAT and data["architecture"]["feature_dim"] == 16
    assert not _same(_small(1), source)  # two seeds differ, so the next check can fail
    loaded = build_encoder({**SMALL, "weights": str(path)})
    assert _same(loaded, source)
    # Rebuilding from a checkpoint (pretrained=False) skips the file: it may be gone on the evaluating machine.
    path.unlink()
    assert isinstance(build_encoder({**SMALL, "weights": str(path)}, pretrained=False), ImageEncoder)
    with pytest.raises(CheckpointError, match="enc.pt: encoder weights file not found"):
        build_encoder({**SMALL, "weights": str(path)})


def test_another_architecture_is_refused_naming_the_key(tmp_path):
    path = save_encoder_weights(tmp_path / "enc.pt", _small(0), SMALL, {})
    with pytest.raises(CheckpointError, match=r"feature_dim: file 16, config 32"):
        build_encoder({**SMALL, "feature_dim": 32, "weights": str(path)})
    with pytest.raises(CheckpointError, match=r"depth: file 18, config 34"):
        load_encoder_weights(ImageEncoder(34, feature_dim=16, decoder_widths=(16, 16, 32, 64, 128)), path,
                             {**SMALL, "depth": 34})


def test_a_model_checkpoint_or_a_foreign_file_is_not_a_weights_file(tmp_path):
    ckpt = save_checkpoint(tmp_path / "model.pt", model_kind="bts", config={}, model={})
    with pytest.raises(CheckpointError, match="looks like a model checkpoint"):
        read_encoder_weights(ckpt)
    junk = tmp_path / "junk.pt"
    junk.write_text("not torch")
    with pytest.raises(CheckpointError, match="junk.pt: not a readable encoder weights file"):
        read_encoder_weights(junk)
    torch.save({"format": WEIGHTS_FORMAT, "format_version": 99}, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="format_version 99"):
        read_encoder_weights(tmp_path / "future.pt")


def test_imagenet_and_a_weights_file_together_are_refused(tmp_path):
    with pytest.raises(ValueError, match="pretrained=true .* and weights=FILE"):
        build_encoder({**SMALL, "pretrained": True, "weights": str(tmp_path / "enc.pt")})
