"""The GPU path (issue "Performance", "The GPU path"): bf16 and fp16 training steps and the benchmark on CUDA. Every
test here needs a CUDA device and skips cleanly without one (CI has none; run them when a GPU is lent)."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.data import default_collate

from bts.models import build_model
from bts.rendering.renderer import RendererConfig
from bts.training.engine import encoder_precision
from bts.training.objective import ObjectiveConfig, training_step
from datasets.kitti_360 import Kitti360Config, Kitti360Dataset
from scripts.benchmarks import model_config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CUDA = torch.device("cuda")


def _batch(root):
    dataset = Kitti360Dataset(root, root / "splits/train_files.txt", Kitti360Config(image_size=(64, 240)))
    batch = default_collate([dataset[0], dataset[1]])
    return {k: v.to(CUDA) if torch.is_tensor(v) else v for k, v in batch.items()}


def _loss_and_grads(model, batch):
    out = training_step(model, batch, ObjectiveConfig(rays_per_element=256), RendererConfig(num_samples=32),
                        torch.Generator().manual_seed(3), flip=False)
    model.zero_grad(set_to_none=True)
    out.loss.total.backward()
    return out, torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_steps_on_cuda_agree_with_float32(synthetic_root, amp):
    torch.manual_seed(0)
    model = build_model(model_config("bts", 18)).to(CUDA).train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    batch = _batch(synthetic_root)
    reference, ref_grads = _loss_and_grads(model, batch)
    model.load_state_dict(state)
    model.encoder.use_fast_path(encoder_precision(amp, CUDA), True)
    fast, fast_grads = _loss_and_grads(model, batch)
    assert fast.render.sigma.dtype == torch.float32  # only the encoder runs in reduced precision
    assert abs(float(fast.loss.total) / float(reference.loss.total) - 1) < 5e-3
    assert float(torch.nn.functional.cosine_similarity(fast_grads, ref_grads, dim=0)) > 0.99


def test_the_benchmark_measures_the_paper_batches_on_cuda(capsys):
    from scripts import benchmarks

    benchmarks.main(["--device", "cuda", "--models", "bts", "--sizes", "96x320", "--depth", "18", "--steps", "1",
                     "--warmup", "1", "--amp", "none", "bf16"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    steps = [line for line in lines if line["what"] == "bts_train_step"]
    assert {line["amp"] for line in steps} == {"none", "bf16"} and all(line["batch_size"] == 16 for line in steps)
    assert all(line["peak_memory_mb"] > 0 and line["seconds_per_step"] > 0 for line in steps)
