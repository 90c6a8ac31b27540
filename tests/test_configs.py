"""The config groups compose, build datasets, and reject unknown keys by name."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError

from datasets.factory import build_dataset, dataset_root, loader_config

CONFIGS = str(Path(__file__).resolve().parents[1] / "configs")


def demo_config(overrides=()):
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        return compose(config_name="demo", overrides=list(overrides))


def test_synthetic_is_the_default_and_inherits_the_loader_keys():
    cfg = demo_config()
    assert cfg.data.name == "synthetic"
    assert cfg.data.frames.fisheye_offset == 10 and cfg.data.num_workers == 2
    assert loader_config(cfg.data, train=False).color_jitter is False
    assert loader_config(cfg.data, train=True).color_jitter is True


def test_paths_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("KITTI360_ROOT", str(tmp_path))
    cfg = demo_config(["data=kitti_360"])
    assert cfg.data.root == str(tmp_path)
    assert dataset_root(cfg.data, cfg.paths) == tmp_path


def test_kitti_360_without_root_falls_back_to_the_synthetic_city(monkeypatch, synthetic_root, caplog):
    monkeypatch.delenv("KITTI360_ROOT", raising=False)
    cfg = demo_config(["data=kitti_360"])
    import datasets.synthetic

    monkeypatch.setattr(datasets.synthetic, "ensure_synthetic_city", lambda **kw: synthetic_root)
    assert dataset_root(cfg.data, cfg.paths) == synthetic_root
    assert "KITTI360_ROOT" in caplog.text and "synthetic city" in caplog.text


def test_unknown_key_is_named():
    with pytest.raises(ConfigCompositionException, match="fisheye_offest"):
        demo_config(["data.frames.fisheye_offest=3"])
    cfg = demo_config()
    with pytest.raises(ConfigAttributeError, match="colour_jitter"):
        cfg.data.colour_jitter  # noqa: B018


def test_build_synthetic_dataset_from_config(synthetic_root):
    cfg = demo_config([f"data.root={synthetic_root}", "data.image_size=[24,96]"])
    ds = build_dataset(cfg.data, cfg.paths, "val")
    assert ds[0]["images"].shape == (8, 3, 24, 96)


def test_demo_runs_as_a_user_runs_it(tmp_path):
    env = {**os.environ, "BTS_CACHE_DIR": str(tmp_path / "cache")}
    out = subprocess.run(
        [sys.executable, "-m", "scripts.demo", "data.synthetic.size=tiny", "data.synthetic.sequences=2",
         "data.synthetic.frames=14", "data.image_size=[32,120]", f"hydra.run.dir={tmp_path / 'run'}"],
        env=env, cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, check=True)
    assert "data_2d_raw/" in out.stdout and "split train" in out.stdout
    assert "images" in out.stdout and "(8, 3, 32, 120)" in out.stdout
    assert any((tmp_path / "cache").iterdir())


def test_the_missing_kitti360_root_warning_appears_once(tmp_path, caplog, monkeypatch):
    import logging

    from datasets import factory

    monkeypatch.setattr(factory, "_warned_no_root", [])
    monkeypatch.setattr("datasets.synthetic.ensure_synthetic_city", lambda **kw: tmp_path)
    data = {"name": "kitti_360", "root": None, "synthetic": {"sequences": 1, "frames": 2, "seed": 0, "size": "tiny"}}
    with caplog.at_level(logging.WARNING, logger="datasets.factory"):
        for _ in range(3):
            assert factory.dataset_root(data, {"cache_dir": None}) == tmp_path
    assert sum("no KITTI-360 root configured" in r.getMessage() for r in caplog.records) == 1


def _compose(name: str, overrides=(), config_dir: str = CONFIGS):
    with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
        return OmegaConf.to_container(compose(config_name=name, overrides=list(overrides)), resolve=False)


def test_encoder_and_fusion_are_config_groups_written_once():
    bts, mvbts, kdbts = (_compose(n)["model"] for n in ("bts", "mvbts", "kdbts"))
    assert bts["encoder"] == mvbts["encoder"] == kdbts["encoder"]  # one block, model/encoder/resnet.yaml
    assert mvbts["fusion"]["type"] == kdbts["fusion"]["type"] == "confidence"
    by_group = _compose("mvbts", ["model/fusion=transformer"])["model"]
    by_alias = _compose("mvbts", ["model=mvbts_transformer"])["model"]
    assert by_group == by_alias and by_group["fusion"]["type"] == "transformer"
    assert "hidden_dim" not in by_group["fusion"]  # the group option replaces the block, it does not merge into it
    with pytest.raises(ConfigCompositionException, match="fusion"):
        _compose("mvbts", ["model/fusion=attention"])


def test_the_released_architecture_of_the_importer_is_the_papers_config():
    """The importer's description of the released checkpoints (which do not store it) and the paper configs are
    two statements of one architecture: they must not drift apart."""
    from bts.checkpoints.convert import model_config

    for kind in ("bts", "mvbts", "kdbts"):
        ours = _compose(kind)["model"]
        ours["encoder"]["pretrained"] = False  # the released weights replace ImageNet's
        imported = model_config(kind, imported={})
        imported.pop("imported")
        assert imported == ours, kind


def test_the_local_folder_is_composed_last_by_every_command(tmp_path):
    configs = tmp_path / "configs"
    shutil.copytree(CONFIGS, configs)
    plain = _compose("bts", config_dir=str(configs))
    (configs / "local").mkdir()
    (configs / "local" / "default.yaml").write_text("# @package _global_\npaths:\n  output_dir: /elsewhere\n"
                                                    "trainer:\n  lr: 0.5\n")
    for name, overrides in (("bts", ()), ("mvbts", ()), ("kdbts", ()), ("demo", ()),
                            ("eval_occupancy", ["checkpoint=x"]), ("eval_depth", ["checkpoint=x"]),
                            ("eval_nvs", ["checkpoint=x"]), ("render", ["checkpoint=x"])):
        cfg = _compose(name, overrides, config_dir=str(configs))
        assert cfg["paths"]["output_dir"] == "/elsewhere", name
    # After the presets (which set trainer.lr), before the command line.
    assert _compose("bts", ["preset=reproduce"], config_dir=str(configs))["trainer"]["lr"] == 0.5
    assert _compose("bts", ["trainer.lr=0.25"], config_dir=str(configs))["trainer"]["lr"] == 0.25
    assert plain["paths"]["output_dir"] == "outputs"
