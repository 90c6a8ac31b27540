import pytest
import torch

from bts.checkpoints.average import average_checkpoints, average_state_dicts
from bts.checkpoints.format import CheckpointError, load_checkpoint, load_state_strict, save_checkpoint
from bts.models import build_model
from scripts.average_checkpoints import main as average_main

CONFIG = {"kind": "bts", "encoder": {"depth": 18, "pretrained": False}, "field": {"hidden_dim": 16}}


def _bn_net(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    net.train()
    net(torch.randn(8, 3) * (seed + 1))  # running statistics differ per seed
    return net


def test_weighted_average_by_hand_and_integers_keep_the_largest():
    nets = [_bn_net(s) for s in range(3)]
    for _ in range(2):  # a different num_batches_tracked for the last one
        nets[2](torch.randn(8, 3))
    states = [n.state_dict() for n in nets]
    out = average_state_dicts(states, weights=[1.0, 2.0, 1.0])
    expect = (states[0]["0.weight"] + 2 * states[1]["0.weight"] + states[2]["0.weight"]) / 4
    assert torch.allclose(out["0.weight"], expect, atol=1e-7)
    var = [s["1.running_var"] for s in states]
    assert torch.allclose(out["1.running_var"], (var[0] + 2 * var[1] + var[2]) / 4)
    assert out["0.weight"].dtype == torch.float32
    assert out["1.num_batches_tracked"].dtype == torch.int64 and int(out["1.num_batches_tracked"]) == 3
    # one state dict averages to itself; equal weights are the plain mean
    assert all(torch.equal(v, states[0][k]) for k, v in average_state_dicts(states[:1]).items())
    plain = average_state_dicts(states[:2])
    assert torch.allclose(plain["0.bias"], (states[0]["0.bias"] + states[1]["0.bias"]) / 2)


def test_bad_weights_and_mismatched_states_are_refused():
    a, b = _bn_net(0).state_dict(), _bn_net(1).state_dict()
    with pytest.raises(ValueError, match="2 weights for 1 checkpoints"):
        average_state_dicts([a], weights=[1.0, 1.0])
    with pytest.raises(ValueError, match="non-negative with a positive sum"):
        average_state_dicts([a, b], weights=[1.0, -1.0])
    b["extra"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"second.pt has other state-dict keys .*unexpected \['extra'\]"):
        average_state_dicts([a, b], names=["first.pt", "second.pt"])
    del b["extra"]
    b["0.weight"] = torch.zeros(5, 3)
    with pytest.raises(CheckpointError, match=r"second.pt: 0.weight is \(5, 3\)"):
        average_state_dicts([a, b], names=["first.pt", "second.pt"])


def _save(tmp_path, name, seed, step, kind="bts", config=CONFIG):
    torch.manual_seed(seed)
    model = build_model(config)
    return save_checkpoint(tmp_path / name, model_kind=kind, config=config, model=model.state_dict(),
                           optimizer={"state": {}, "param_groups": []}, trainer={"iteration": step, "epoch": 1})


def test_averaged_model_checkpoint_loads_and_records_its_sources(tmp_path):
    paths = [_save(tmp_path, f"step_{s}.pt", seed=s, step=s) for s in (10, 20)]
    out = average_checkpoints(paths, tmp_path / "avg.pt")
    data = load_checkpoint(out, kinds=("bts",))
    assert data["provenance"] == {"averaged_from": [str(p) for p in paths], "steps": [10, 20], "weights": [1.0, 1.0]}
    assert data["trainer"] == {"iteration": 20} and "optimizer" not in data
    model = build_model(data["config"])
    load_state_strict(model, data["model"], str(out))
    a, b = (load_checkpoint(p)["model"] for p in paths)
    key = next(k for k, v in a.items() if v.is_floating_point() and not torch.equal(v, b[k]))
    assert torch.allclose(model.state_dict()[key], (a[key] + b[key]) / 2, atol=1e-6)


def test_checkpoints_of_another_model_or_config_are_refused(tmp_path, capsys):
    first = _save(tmp_path, "a.pt", 0, 1)
    other_kind = save_checkpoint(tmp_path / "mv.pt", model_kind="mvbts", config=CONFIG, model={})
    with pytest.raises(CheckpointError, match=r"mv.pt holds a 'mvbts' model, .*a.pt a 'bts' one"):
        average_checkpoints([first, other_kind], tmp_path / "out.pt")
    wider = _save(tmp_path, "b.pt", 0, 1, config={**CONFIG, "field": {"hidden_dim": 32}})
    with pytest.raises(CheckpointError, match=r"b.pt has another model config .*field.hidden_dim: checkpoint 16"):
        average_checkpoints([first, wider], tmp_path / "out.pt")
    assert not (tmp_path / "out.pt").exists()
    with pytest.raises(SystemExit) as e:  # the command line: one line naming the file, exit status 1
        average_main([str(tmp_path / "out.pt"), str(first), str(tmp_path / "missing.pt")])
    assert e.value.code == 1 and "missing.pt does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        average_main([str(first), str(first)])
    assert "the output" in capsys.readouterr().err
