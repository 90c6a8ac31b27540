import pytest
import torch

from bts.checkpoints.format import FORMAT_VERSION, CheckpointError, load_checkpoint, load_state_strict, save_checkpoint
from bts.models import build_model


def test_round_trip_with_weights_only(tmp_path):
    model = torch.nn.Linear(3, 2)
    path = save_checkpoint(tmp_path / "c.pt", model_kind="bts", config={"a": [1, 2]}, model=model.state_dict(),
                           trainer={"iteration": 7, "epoch": 1})
    data = torch.load(path, weights_only=True)
    assert data["format_version"] == FORMAT_VERSION == 2 and data["trainer"]["iteration"] == 7
    again = load_checkpoint(path, kinds=("bts",))
    other = torch.nn.Linear(3, 2)
    load_state_strict(other, again["model"], str(path))
    assert torch.equal(other.weight, model.weight)
    assert not (tmp_path / "c.pt.tmp").exists()


def test_a_version_1_checkpoint_is_read_with_the_field_code_range_renamed(tmp_path):
    config = {"kind": "bts", "encoder": {"depth": 18, "pretrained": False},
              "field": {"hidden_dim": 16, "near": 2.0, "far": 50.0}}
    model = build_model({**config, "field": {"hidden_dim": 16, "code_near": 2.0, "code_far": 50.0}})
    torch.save({"format_version": 1, "model_kind": "bts", "config": config, "model": model.state_dict()},
               tmp_path / "v1.pt")
    data = load_checkpoint(tmp_path / "v1.pt")
    assert data["format_version"] == 2 and data["migrated_from"] == 1
    assert data["config"]["field"] == {"hidden_dim": 16, "code_near": 2.0, "code_far": 50.0}
    rebuilt = build_model(data["config"])
    assert (rebuilt.field.code_near, rebuilt.field.code_far) == (2.0, 50.0)
    assert config["field"]["near"] == 2.0  # the caller's dict is not changed in place
    torch.save({"format_version": 7, "model_kind": "bts", "config": config, "model": {}}, tmp_path / "v7.pt")
    with pytest.raises(CheckpointError, match=r"v7.pt has format_version 7, this code reads versions \[1, 2\]"):
        load_checkpoint(tmp_path / "v7.pt")


def test_wrong_kind_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", model_kind="mvbts", config={}, model={})
    with pytest.raises(CheckpointError, match="holds a 'mvbts' model, expected one of \\['bts', 'kdbts'\\]"):
        load_checkpoint(path, kinds=("bts", "kdbts"))


def test_foreign_file_is_refused(tmp_path):
    torch.save({"model": {}, "optimizer": {}}, tmp_path / "orig.pt")
    with pytest.raises(CheckpointError, match="not a checkpoint of this project.*original BTS/KDBTS"):
        load_checkpoint(tmp_path / "orig.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")


def test_mismatching_keys_and_shapes_are_named():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    state = {"0.weight": torch.zeros(2, 4), "0.bias": torch.zeros(2), "2.weight": torch.zeros(1, 2)}
    with pytest.raises(CheckpointError) as e:
        load_state_strict(model, state, "ckpt.pt")
    msg = str(e.value)
    assert "missing keys (2): 1.bias, 1.weight" in msg
    assert "unexpected keys (1): 2.weight" in msg
    assert "0.weight: checkpoint (2, 4) vs model (2, 3)" in msg
