"""Training as a user runs it: the debug preset end to end, resume, bad input, NaN handling, two processes."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bts.checkpoints.format import CheckpointError, load_checkpoint
from bts.training import engine as engine_module
from bts.training.config import TrainConfig
from tests.training.helpers import debug_config, on_nth_call, run_train, train
from train import build_datasets

REPO = Path(__file__).resolve().parents[2]


def test_train_bts_debug_as_a_subprocess(synthetic_root, tmp_path):
    run_train(["-cn", "bts", "preset=debug", f"data.root={synthetic_root}", f"paths.output_dir={tmp_path}"],
              cwd=tmp_path)
    latest = tmp_path / "bts" / "latest"
    assert latest.is_symlink()
    run = latest.resolve()
    assert (run / "config.yaml").is_file() and any((run / "tensorboard").iterdir())
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt", kinds=("bts",))
    assert ckpt["trainer"]["iteration"] == 4 and ckpt["config"]["encoder"]["depth"] == 18
    assert sorted(p.name for p in (run / "checkpoints").glob("step_*.pt")) == ["step_2.pt", "step_4.pt"]


def test_unknown_config_key_fails_at_start_naming_it(tmp_path):
    out = run_train(["-cn", "bts", "preset=debug", "trainer.batchsize=3"], cwd=tmp_path, check=False)
    assert out.returncode != 0 and "trainer.batchsize" in out.stderr


def params(path):
    return load_checkpoint(path)["model"]


def test_resume_continues_with_identical_parameters_and_step(synthetic_root, tmp_path):
    straight = debug_config(synthetic_root)
    train(straight, tmp_path / "a")
    first_half = debug_config(synthetic_root, overrides=["trainer.max_steps=2"])
    train(first_half, tmp_path / "b")
    assert torch.equal(params(tmp_path / "b/checkpoints/step_2.pt")["field.head.lin_out.weight"],
                       params(tmp_path / "a/checkpoints/step_2.pt")["field.head.lin_out.weight"])
    resumed = debug_config(synthetic_root, overrides=[f"trainer.resume_from={tmp_path / 'b/checkpoints/step_2.pt'}"])
    train(resumed, tmp_path / "c")
    a, c = params(tmp_path / "a/checkpoints/last.pt"), params(tmp_path / "c/checkpoints/last.pt")
    assert load_checkpoint(tmp_path / "c/checkpoints/last.pt")["trainer"]["iteration"] == 4
    for key in a:
        assert torch.equal(a[key], c[key]), key


def test_resume_refuses_a_checkpoint_of_another_config(synthetic_root, tmp_path):
    train(debug_config(synthetic_root, overrides=["trainer.max_steps=2"]), tmp_path / "a")
    other = debug_config(synthetic_root, overrides=["model.encoder.depth=34",
                                                    f"trainer.resume_from={tmp_path / 'a/checkpoints/last.pt'}"])
    with pytest.raises(CheckpointError, match=r"encoder.depth: checkpoint 18 != config 34"):
        train(other, tmp_path / "b")


def test_nan_loss_stops_with_step_and_terms_after_saving(synthetic_root, tmp_path, monkeypatch):
    def poisoned(out, *args, **kwargs):
        out.loss.terms["photometric"] = torch.tensor(float("nan"))
        return out

    on_nth_call(monkeypatch, engine_module, "training_step", 3, output=poisoned)
    expected = r"non-finite loss at step 3: photometric=nan.*state before this step is saved"
    with pytest.raises(FloatingPointError, match=expected):
        train(debug_config(synthetic_root), tmp_path / "run")
    saved = load_checkpoint(tmp_path / "run/checkpoints/last.pt")
    assert saved["trainer"]["iteration"] == 2


@pytest.mark.slow
def test_two_processes_with_gloo(synthetic_root, tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29531",
           str(REPO / "train.py"), "-cn", "bts", "preset=debug", f"data.root={synthetic_root}",
           "trainer.backend=gloo", "trainer.max_steps=2", f"hydra.run.dir={tmp_path / 'run'}"]
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "in 2 processes" in out.stderr or "world size: 2" in out.stderr.lower() or "2 processes" in out.stderr
    assert load_checkpoint(tmp_path / "run/checkpoints/last.pt")["trainer"]["iteration"] == 2


def test_train_mvbts_debug_as_a_subprocess(synthetic_root, tmp_path):
    run_train(["-cn", "mvbts", "preset=debug", f"data.root={synthetic_root}", f"paths.output_dir={tmp_path}"],
              cwd=tmp_path)
    ckpt = load_checkpoint(tmp_path / "mvbts" / "latest" / "checkpoints" / "last.pt", kinds=("mvbts",))
    assert ckpt["config"]["fusion"]["type"] == "confidence" and ckpt["trainer"]["iteration"] == 4
    assert "field.head.phi1.lin_in.weight" in ckpt["model"]


def test_train_mvbts_with_the_transformer_head(synthetic_root, tmp_path):
    cfg = debug_config(synthetic_root, name="mvbts", overrides=["model=mvbts_transformer", "trainer.max_steps=2"])
    train(cfg, tmp_path / "run")
    ckpt = load_checkpoint(tmp_path / "run/checkpoints/last.pt", kinds=("mvbts",))
    assert ckpt["config"]["fusion"]["type"] == "transformer" and ckpt["trainer"]["iteration"] == 2
    assert "field.head.readout" in ckpt["model"]


def test_learning_rate_schedule_warms_up_linearly_then_steps_down():
    factor = engine_module.lr_factor(step_size=10, gamma=0.1, warmup_steps=4)
    assert [factor(s) for s in range(5)] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0])
    assert factor(9) == pytest.approx(1.0) and factor(10) == pytest.approx(0.1) and factor(25) == pytest.approx(0.01)
    plain = engine_module.lr_factor(step_size=10, gamma=0.1)
    assert plain(0) == 1.0 and plain(19) == pytest.approx(0.1)  # StepLR's schedule, the original's
    with pytest.raises(ValueError, match="warmup_steps"):
        engine_module.lr_factor(step_size=10, gamma=0.1, warmup_steps=-1)


def _rates(parts, steps: int) -> list[float]:
    """The learning rate of each of the first ``steps`` updates (optimizer and scheduler stepped, no gradients)."""
    rates = []
    for _ in range(steps):
        rates.append(parts.optimizer.param_groups[0]["lr"])
        parts.optimizer.step()
        parts.scheduler.step()
    return rates


def test_warmup_sets_the_rate_of_the_first_updates(synthetic_root, tmp_path):
    cfg = debug_config(synthetic_root, overrides=["trainer.warmup_steps=4", "trainer.lr=1e-3"])
    parts = engine_module.build_parts(TrainConfig.from_dict(cfg), torch.device("cpu"))
    assert _rates(parts, 3) == pytest.approx([2.5e-4, 5e-4, 7.5e-4])


def test_lr_decay_at_steps_the_rate_down_at_a_fraction_of_max_steps(synthetic_root):
    cfg = debug_config(synthetic_root, overrides=["trainer.max_steps=10", "trainer.lr_decay_at=0.7", "trainer.lr=1e-3"])
    parts = engine_module.build_parts(TrainConfig.from_dict(cfg), torch.device("cpu"))
    assert _rates(parts, 10) == pytest.approx([1e-3] * 7 + [1e-4] * 3)  # updates 0-6 at the rate, 7-9 decayed
    plain = TrainConfig.from_dict(debug_config(synthetic_root, overrides=["trainer.lr_step=5"])).trainer
    assert plain.schedule_step() == 5
    with pytest.raises(ValueError, match=r"trainer.lr_decay_at must be null .* in \(0, 1\], got 1.5"):
        TrainConfig.from_dict(debug_config(synthetic_root, overrides=["trainer.max_steps=10",
                                                                      "trainer.lr_decay_at=1.5"]))
    with pytest.raises(ValueError, match="trainer.lr_decay_at is a fraction of trainer.max_steps, which is null"):
        TrainConfig.from_dict(debug_config(synthetic_root, overrides=["trainer.max_steps=null",
                                                                      "trainer.lr_decay_at=0.5"]))


def test_grad_clip_bounds_the_update_norm_and_the_norm_is_logged(synthetic_root):
    cfg = TrainConfig.from_dict(debug_config(synthetic_root, overrides=["trainer.grad_clip=1e-3",
                                                                       "trainer.batch_size=1"]))
    parts = engine_module.build_parts(cfg, torch.device("cpu"))
    train_set, _ = build_datasets(cfg)
    batch = torch.utils.data.default_collate([train_set[0]])
    terms = parts.engine._process_function(parts.engine, batch)
    clipped = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in parts.trainee.parameters()
                                                    if p.grad is not None]))
    assert terms["grad_norm"] > 1e-2  # the norm before clipping is what is logged
    assert float(clipped) == pytest.approx(1e-3, rel=1e-4)
    with pytest.raises(ValueError, match="trainer.grad_clip must be null .* got -1"):
        engine_module.build_parts(TrainConfig.from_dict(debug_config(synthetic_root,
                                                                     overrides=["trainer.grad_clip=-1"])),
                                  torch.device("cpu"))
