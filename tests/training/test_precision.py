"""Mixed precision of the encoder (``trainer.amp``): the fast path against the float32 reference on one step."""

import pytest
import torch
from torch.utils.data import default_collate

from bts.benchmarks import model_config
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


def test_bf16_encoder_step_agrees_with_the_float32_step(synthetic_root):
    torch.manual_seed(0)
    model = build_model(model_config("bts", 18))
    model.train()
    dataset = Kitti360Dataset(synthetic_root, synthetic_root / "splits/train_files.txt",
                              Kitti360Config(image_size=(64, 240)))
    batch = default_collate([dataset[0], dataset[1]])
    state = {k: v.clone() for k, v in model.state_dict().items()}
    reference, ref_grads = _step(model, batch)
    model.load_state_dict(state)  # the same BatchNorm statistics for the second pass
    model.encoder.compute_dtype = encoder_precision("bf16", torch.device("cpu"))
    fast, fast_grads = _step(model, batch)
    assert fast.encoded.features.dtype == torch.float32  # the field and the losses stay float32
    assert fast.render.sigma.dtype == torch.float32 and fast.rays.directions.dtype == torch.float32
    assert torch.equal(fast.rays.directions, reference.rays.directions)  # geometry untouched by the encoder's dtype
    for name in ("photometric", "smoothness", "total"):
        ref, got = float(reference.loss.terms[name]), float(fast.loss.terms[name])
        assert got == pytest.approx(ref, rel=2e-2), name  # bf16 keeps 8 bits of mantissa: about 0.4 % per value
    assert fast.loss.terms["total"] != reference.loss.terms["total"]  # the bf16 path did run
    cosine = torch.nn.functional.cosine_similarity(fast_grads, ref_grads, dim=0)
    assert cosine > 0.98


def test_precision_choices_are_checked():
    assert encoder_precision("none", torch.device("cpu")) is None
    assert encoder_precision("bf16", torch.device("cpu")) is torch.bfloat16
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        encoder_precision("fp16", torch.device("cpu"))
    with pytest.raises(ValueError, match="trainer.amp must be one of"):
        encoder_precision("bfloat16", torch.device("cpu"))
