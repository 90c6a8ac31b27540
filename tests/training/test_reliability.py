"""Training state a user can trust: the ``latest`` link, exact mid-epoch resume with workers, a NaN guard that keeps
a good state, and one folder per run."""

import dataclasses
import math
import multiprocessing
import os
from pathlib import Path

import pytest
import torch

from bts import runs
from bts.checkpoints.format import load_checkpoint
from bts.training import engine as engine_module
from bts.training.sampling import SeededItems, SeededRandomSampler
from bts.training.state import _files_resolved, config_differences
from tests.training import helpers
from tests.training.helpers import debug_config, on_nth_call, train

REPO = Path(__file__).resolve().parents[2]


def run_train(args, cwd):
    return helpers.run_train(args, cwd, check=False)


def tensors(path):
    data = load_checkpoint(path)
    return data["model"], data["optimizer"]["state"]


def assert_same_state(a_path, b_path):
    (a, a_opt), (b, b_opt) = tensors(a_path), tensors(b_path)
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} of {len(a)} tensors differ, e.g. {different[:3]}"
    for index in a_opt:
        for key, value in a_opt[index].items():
            assert torch.equal(value, b_opt[index][key]), (index, key)


def test_latest_moves_with_the_first_checkpoint_and_a_resume_continues_in_its_folder(synthetic_root, tmp_path):
    common = ["-cn", "bts", "preset=debug", f"paths.output_dir={tmp_path}", "trainer.max_steps=2"]
    good = run_train([*common, f"data.root={synthetic_root}"], tmp_path)
    assert good.returncode == 0, good.stderr[-2000:]
    latest = tmp_path / "bts" / "latest"
    run = latest.resolve()
    failed = run_train([*common, f"data.root={tmp_path / 'no_such_tree'}"], tmp_path)
    assert failed.returncode != 0
    assert latest.resolve() == run, "a run that failed before its first checkpoint moved `latest`"
    # The README's resume command, through the link; it continues in the same folder.
    resumed = run_train([*common[:-1], f"data.root={synthetic_root}", "trainer.max_steps=4",
                         f"trainer.resume_from={latest}/checkpoints/last.pt"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert latest.resolve() == run
    progress = resumed.stderr.replace("\r", "\n")
    assert "training: 100%" in progress and " 4/4 " in progress  # the bar counts the run's steps, from the resume
    assert load_checkpoint(run / "checkpoints" / "last.pt")["trainer"]["iteration"] == 4
    with_checkpoints = [p for p in (tmp_path / "bts").iterdir() if not p.is_symlink() and (p / "checkpoints").is_dir()]
    assert with_checkpoints == [run]


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_in_the_middle_of_an_epoch_is_exact(synthetic_root, tmp_path, workers):
    def config(*overrides):
        return debug_config(synthetic_root, overrides=[f"data.num_workers={workers}", "trainer.checkpoint_every=1",
                                                       "trainer.keep_checkpoints=10", *overrides])

    straight = config("trainer.max_steps=7")
    train(straight, tmp_path / "straight")
    epoch = load_checkpoint(tmp_path / "straight/checkpoints/last.pt")["trainer"]["epoch_length"]
    stop = 3
    assert stop % epoch != 0 and epoch < 7, f"the test needs a stop inside an epoch and a later epoch (epoch {epoch})"
    train(config(f"trainer.max_steps={stop}"), tmp_path / "first")
    train(config("trainer.max_steps=7", f"trainer.resume_from={tmp_path / f'first/checkpoints/step_{stop}.pt'}"),
          tmp_path / "resumed")
    for step in (stop + 1, 7):
        assert_same_state(tmp_path / f"straight/checkpoints/step_{step}.pt",
                          tmp_path / f"resumed/checkpoints/step_{step}.pt")


def test_items_get_the_same_draws_with_and_without_workers(synthetic_root):
    class Draws(torch.utils.data.Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, index):
            return torch.rand(()) + index

    def epoch(workers):
        torch.manual_seed(5)
        loader = torch.utils.data.DataLoader(SeededItems(Draws()), sampler=SeededRandomSampler(6, seed=5), batch_size=2,
                                             num_workers=workers)
        return torch.cat(list(loader))

    zero = epoch(0)
    assert torch.equal(zero, epoch(2))
    assert sorted(zero.floor().tolist()) == list(range(6))  # a permutation, each item once
    torch.manual_seed(5)
    before = torch.rand(3)
    torch.manual_seed(5)
    SeededItems(Draws())[(1, 123)]
    assert torch.equal(torch.rand(3), before), "loading an item changed the main process's generator"


def poison_batch_at(monkeypatch, step):
    """Make the ``step``-th training forward pass see NaN images (BatchNorm's statistics become NaN with it)."""

    def nan_images(trainee, batch):
        return (trainee, {**batch, "images": torch.full_like(batch["images"], math.nan)}), {}

    on_nth_call(monkeypatch, engine_module.Trainee, "forward", step, inputs=nan_images)


def all_finite(path):
    model, optimizer = tensors(path)
    bad = [k for k, v in model.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    bad += [f"opt {i} {k}" for i, s in optimizer.items() for k, v in s.items() if not torch.isfinite(v).all()]
    return bad


def test_nan_guard_saves_the_state_before_the_failing_step_and_it_resumes(synthetic_root, tmp_path, monkeypatch):
    train(debug_config(synthetic_root, overrides=["trainer.max_steps=2"]), tmp_path / "reference")
    poison_batch_at(monkeypatch, 3)
    with pytest.raises(FloatingPointError, match=r"non-finite loss at step 3.*state before this step is saved"):
        train(debug_config(synthetic_root), tmp_path / "run")
    saved = tmp_path / "run/checkpoints/last.pt"
    assert load_checkpoint(saved)["trainer"]["iteration"] == 2
    assert all_finite(saved) == []
    assert_same_state(tmp_path / "reference/checkpoints/last.pt", saved)  # BatchNorm's statistics put back
    monkeypatch.undo()
    train(debug_config(synthetic_root, overrides=[f"trainer.resume_from={saved}"]), tmp_path / "resumed")
    assert load_checkpoint(tmp_path / "resumed/checkpoints/last.pt")["trainer"]["iteration"] == 4
    assert all_finite(tmp_path / "resumed/checkpoints/last.pt") == []


def test_nan_gradients_with_a_finite_loss_stop_before_the_update(synthetic_root, tmp_path, monkeypatch):
    def poisoned(out, model, *args, **kwargs):  # sqrt(z^2) at z = 0: value 0, gradient 0 * inf = NaN
        z = model.field.head.lin_out.weight.sum() * 0
        loss = dataclasses.replace(out.loss, total=out.loss.total + torch.sqrt(z * z))
        return dataclasses.replace(out, loss=loss)

    on_nth_call(monkeypatch, engine_module, "training_step", 2, output=poisoned)
    with pytest.raises(FloatingPointError, match=r"non-finite gradients \(\d+ parameters: .*lin_out.*\) at step 2"):
        train(debug_config(synthetic_root), tmp_path / "run")
    saved = tmp_path / "run/checkpoints/last.pt"
    assert load_checkpoint(saved)["trainer"]["iteration"] == 1 and all_finite(saved) == []


def test_a_huge_learning_rate_stops_with_a_finite_saved_state(synthetic_root, tmp_path):
    with pytest.raises(FloatingPointError, match=r"non-finite"):
        train(debug_config(synthetic_root, overrides=["trainer.lr=1e30", "trainer.max_steps=8"]), tmp_path / "run")
    saved = tmp_path / "run/checkpoints/last.pt"
    if saved.is_file():
        assert all_finite(saved) == []


def _make(base, stamp, queue):
    runs._made.clear()
    queue.put(str(runs.unique_folder(base, stamp)))


def test_runs_started_in_the_same_second_get_their_own_folders(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_make, args=(tmp_path / "bts", "2026-12-02_10-00-00", queue)) for _ in range(3)]
    for p in procs:
        p.start()
    folders = sorted(queue.get(timeout=60) for _ in procs)
    for p in procs:
        p.join()
    assert len(set(folders)) == 3 and all(Path(f).is_dir() for f in folders)
    assert [Path(f).name for f in folders] == ["2026-12-02_10-00-00", "2026-12-02_10-00-00_2", "2026-12-02_10-00-00_3"]


def test_run_dir_resolver_resumes_in_the_checkpoint_folder_and_keeps_an_explicit_folder(tmp_path):
    run = tmp_path / "bts" / "2026-12-01_09-00-00"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("seed: 0\n")
    (run / "checkpoints" / "last.pt").write_bytes(b"")
    os.symlink(run.name, tmp_path / "bts" / "latest")
    runs._made.clear()
    assert runs.run_dir(str(tmp_path / "bts"), "x", str(tmp_path / "bts/latest/checkpoints/last.pt")) == str(run)
    assert runs.run_dir(str(tmp_path / "bts"), "x", None) == str(tmp_path / "bts" / "x")
    assert runs.run_dir(str(tmp_path / "bts"), "x", None) == str(tmp_path / "bts" / "x")  # cached per process
    assert runs.run_dir(str(tmp_path / "ev"), "y", None, str(tmp_path / "mine")) == str(tmp_path / "mine")
    elsewhere = tmp_path / "loose.pt"
    elsewhere.write_bytes(b"")
    assert runs.run_dir(str(tmp_path / "bts"), "z", str(elsewhere)) == str(tmp_path / "bts" / "z")


@pytest.mark.parametrize("name", ["eval_occupancy", "eval_depth", "eval_nvs"])
def test_two_evaluations_started_together_get_separate_folders(tmp_path, name):
    from hydra import compose, initialize_config_dir

    runs.register_resolvers()

    def folder(*overrides):
        runs._made.clear()  # as in a new process
        with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
            cfg = compose(config_name=name, overrides=[f"paths.output_dir={tmp_path}", *overrides],
                          return_hydra_config=True)
        return Path(cfg.hydra.run.dir)

    first, second = folder(), folder()
    assert first != second and first.parent == second.parent == tmp_path / name
    assert first.is_dir() and second.is_dir()
    assert folder(f"output_dir={tmp_path / 'mine'}") == tmp_path / "mine"


def test_a_missing_teacher_stops_kdbts_before_any_data_is_built(tmp_path):
    missing = tmp_path / "no_teacher.pt"
    out = run_train(["-cn", "kdbts", "preset=debug", f"data.root={tmp_path / 'no_such_tree'}",
                     f"kd.teacher_checkpoint={missing}", f"paths.output_dir={tmp_path}"], tmp_path)
    assert out.returncode != 0
    assert f"the MVBTS teacher checkpoint {missing} does not exist" in out.stderr
    assert out.stderr.count("does not exist") == 1  # the missing data root was never looked at


def test_kdbts_run_records_the_resolved_teacher_and_its_hash(synthetic_root, tmp_path):
    import hashlib
    import json

    teacher_run = run_train(["-cn", "mvbts", "preset=debug", "trainer.max_steps=1", f"data.root={synthetic_root}",
                             f"paths.output_dir={tmp_path}"], tmp_path)
    assert teacher_run.returncode == 0, teacher_run.stderr[-2000:]
    # model.encoder.pretrained=true: a new KDBTS run takes its encoder from the teacher, so no ImageNet weights
    # are needed (none can be downloaded here).
    student = run_train(["-cn", "kdbts", "preset=debug", "trainer.max_steps=1", f"data.root={synthetic_root}",
                         "model.encoder.pretrained=true", f"paths.output_dir={tmp_path}"], tmp_path)
    assert student.returncode == 0, student.stderr[-2000:]
    record = json.loads((tmp_path / "kdbts" / "latest" / "teacher.json").read_text())
    real = (tmp_path / "mvbts" / "latest").resolve() / "checkpoints" / "last.pt"
    assert record["path"] == str(real) and "latest" not in record["path"]
    assert record["sha256"] == hashlib.sha256(real.read_bytes()).hexdigest()


def test_depth_colouring_draws_nan_and_inf_instead_of_failing():
    from bts.visualization import colorize_depth

    rgb = colorize_depth(torch.tensor([[math.nan, math.inf, -math.inf, 5.0]]))
    assert rgb.shape == (3, 1, 4) and torch.isfinite(rgb).all()
    assert torch.equal(rgb[:, 0, 0], rgb[:, 0, 1])  # NaN drawn as far, like +Inf


def test_missing_imagenet_weights_stop_the_run_before_any_data_is_read(tmp_path, monkeypatch):
    from bts.encoders.backbone import PretrainedWeightsUnavailable, require_imagenet_weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # no weights there; no network in CI
    try:
        require_imagenet_weights(18)
        pytest.skip("ImageNet weights could be downloaded on this machine")
    except PretrainedWeightsUnavailable:
        pass
    out = run_train(["-cn", "bts", "preset=debug", "model.encoder.pretrained=true",
                     f"data.root={tmp_path / 'no_such_tree'}", f"paths.output_dir={tmp_path}"],
                    tmp_path)
    assert out.returncode == 1
    assert "ImageNet weights for ResNet-18 are not available" in out.stderr
    assert "no_such_tree" not in out.stderr.split("ImageNet weights")[1]  # the data root was not reached


def test_a_resume_may_name_the_encoder_weights_file_by_another_path(tmp_path, monkeypatch):
    """A run started with an absolute weights path resumes with a relative one to the same file (and not with
    another file)."""
    monkeypatch.chdir(tmp_path)
    saved = {"kind": "bts", "encoder": {"depth": 18, "weights": str(tmp_path / "encoder.pt")}}
    same = {"kind": "bts", "encoder": {"depth": 18, "weights": "encoder.pt"}}
    other = {"kind": "bts", "encoder": {"depth": 18, "weights": "other.pt"}}
    assert config_differences(_files_resolved(saved), _files_resolved(same)) == []
    diffs = config_differences(_files_resolved(saved), _files_resolved(other))
    assert len(diffs) == 1 and diffs[0].startswith("encoder.weights:")
    unset = {"kind": "bts", "encoder": {"depth": 18, "weights": None}}
    assert _files_resolved(unset) == unset
