"""The encoder's fast path (``trainer.amp=bf16``, ``trainer.channels_last=true``) against the plain float32 path on
one training step."""

import pytest
import torch
from torch.utils.data import default_collate

from scripts.benchmarks import model_config
from bts.models import build_model
from bts.rendering.renderer import RendererConfig
from bts.training.engine import encoder_precision
from bts.training.objective import ObjectiveConfig, training_step
from datasets.kitti_360 import Kitti360Config, Kitti360Dataset


def _step(model, batch):
    out = training_step(model, batch, ObjectiveConfig(rays_per_element=256), RendererConfig(num_samples=32),
                        torch.Generator().manual_seed(3), flip=False)
    model.zero_grad(set_to_none=True)
    out.loss.total.backward()
    grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    return out, grads


@pytest.fixture(scope="module")
def model_and_batch(synthetic_root):
    torch.manual_seed(0)
    model = build_model(model_config("bts", 18))
    model.train()
    dataset = Kitti360Dataset(synthetic_root, synthetic_root / "splits/train_files.txt",
                              Kitti360Config(image_size=(64, 240)))
    return model, {k: v.clone() for k, v in model.state_dict().items()}, default_collate([dataset[0], dataset[1]])


def _compare(model_and_batch, dtype, channels_last):
    model, state, batch = model_and_batch
    model.load_state_dict(state)
    model.encoder.use_fast_path()
    reference, ref_grads = _step(model, batch)
    model.load_state_dict(state)  # the same BatchNorm statistics for the second pass
    model.encoder.use_fast_path(dtype, channels_last)
    try:
        fast, fast_grads = _step(model, batch)
    finally:
        model.encoder.use_fast_path()
    assert fast.encoded.features.dtype == torch.float32  # the field and the losses stay float32
    assert fast.encoded.features.movedim(2, -1).is_contiguous()  # stored channels-last, as every encoding is
    assert fast.render.sigma.dtype == torch.float32
    assert torch.equal(fast.rays.directions, reference.rays.directions)  # geometry untouched by the encoder's path
    rel = {name: abs(float(fast.loss.terms[name]) / float(reference.loss.terms[name]) - 1)
           for name in ("photometric", "smoothness", "total")}
    cosine = float(torch.nn.functional.cosine_similarity(fast_grads, ref_grads, dim=0))
    return rel, cosine


def test_channels_last_alone_changes_only_rounding(model_and_batch):
    rel, cosine = _compare(model_and_batch, None, True)
    assert max(rel.values()) < 1e-4 and cosine > 0.9999


def test_bf16_encoder_step_agrees_with_the_float32_step(model_and_batch):
    rel, cosine = _compare(model_and_batch, encoder_precision("bf16", torch.device("cpu")), True)
    # bf16 keeps 8 bits of mantissa (about 0.4 % per value), but the loss averages it out: measured 3e-6 on the
    # total and 1.3e-4 on the smoothness, gradient cosine 1 - 1e-5. And it did run in bf16 (not bit-identical).
    assert max(rel.values()) < 2e-3 and rel["total"] > 0
    assert cosine > 0.999


def test_precision_choices_are_checked():
    assert encoder_precision("none", torch.device("cpu")) is None
    assert encoder_precision("bf16", torch.device("cpu")) is torch.bfloat16
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        encoder_precision("fp16", torch.device("cpu"))
    with pytest.raises(ValueError, match="trainer.amp must be one of"):
        encoder_precision("bfloat16", torch.device("cpu"))


def test_amp_auto_picks_bf16_only_where_the_device_has_native_bf16(monkeypatch):
    from bts.training import engine

    cpu = torch.device("cpu")
    for native in (True, False):
        monkeypatch.setattr(engine, "native_bf16", lambda device, native=native: native)
        assert engine.resolve_amp("auto", cpu) == ("bf16" if native else "none")
        assert engine.encoder_precision("auto", cpu) == (torch.bfloat16 if native else None)
    assert engine.resolve_amp("none", cpu) == "none" and engine.resolve_amp("bf16", cpu) == "bf16"
    assert isinstance(engine.native_bf16(cpu), bool)
    with pytest.raises(ValueError, match="trainer.amp must be one of"):
        engine.encoder_precision("fp8", cpu)
