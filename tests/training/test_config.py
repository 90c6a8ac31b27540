"""The typed training configuration (bts/training/config.py): each default written once, in its dataclass; the YAML
groups extend those classes as schemas, so bad keys and values fail when the config is composed; the engine takes
only the typed config."""

from __future__ import annotations

import dataclasses
import inspect
import shutil
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from bts.config import SCHEMAS
from bts.rendering.renderer import RendererConfig
from bts.training import engine
from bts.training.config import (ConfigError, DistillationConfig, PhotometricLossNode, SupervisedLossNode, TrainConfig,
                                 TrainerConfig, typed)
from bts.training.objective import ObjectiveConfig
from bts.training.supervised import SupervisedConfig
from evaluation.protocols import PROTOCOLS
from tests.training.helpers import debug_config, run_train

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"

# Each YAML group file that extends a schema: (file, the schema's dataclass).
GROUP_FILES = [
    ("trainer/default.yaml", TrainerConfig),
    ("renderer/default.yaml", RendererConfig),
    ("loss/bts.yaml", PhotometricLossNode),
    ("loss/supervised.yaml", SupervisedLossNode),
    ("kd/frozen.yaml", DistillationConfig),
    *((f"protocol/{name}.yaml", cls.params_class) for name, cls in PROTOCOLS.items()),
]


def _compose(name: str, overrides=(), config_dir: Path = CONFIGS) -> dict:
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        return OmegaConf.to_container(compose(config_name=name, overrides=list(overrides)), resolve=False)


def _defaults(cls) -> dict:
    """The dataclass defaults as YAML would write them (tuples as lists)."""
    node = OmegaConf.structured(cls)
    return OmegaConf.to_container(node, resolve=False)


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


@pytest.mark.parametrize("path,cls", GROUP_FILES, ids=[p for p, _ in GROUP_FILES])
def test_no_default_is_written_twice(path, cls):
    """A group file writes only what differs from its dataclass: a value equal to the default would be a second
    copy of it, free to drift from the first."""
    text = yaml.safe_load((CONFIGS / path).read_text()) or {}
    assert "defaults" in text, f"{path} extends no schema"
    written = _flat({k: v for k, v in text.items() if k != "defaults"})
    defaults = _flat(_defaults(cls))
    repeated = sorted(k for k, v in written.items() if k in defaults and defaults[k] == v)
    assert not repeated, f"{path} repeats the defaults of {cls.__name__}: {repeated}"


def test_every_schema_is_a_group_file_s_base():
    names = {f"{group}/{name}" for group, name in SCHEMAS}
    bases = set()
    for path in CONFIGS.glob("*/*.yaml"):
        for entry in (yaml.safe_load(path.read_text()) or {}).get("defaults", []):
            if isinstance(entry, str):
                bases.add(f"{path.parent.name}/{entry}")
    assert names <= bases, f"registered schemas no group file extends: {sorted(names - bases)}"


def test_the_composed_nodes_are_the_dataclass_defaults():
    cfg = _compose("bts")
    assert cfg["trainer"] == _defaults(TrainerConfig)
    assert cfg["renderer"] == _defaults(RendererConfig)
    loss = dict(cfg["loss"])
    assert loss.pop("num_timesteps") == "${data.frames.num_timesteps}"  # taken from the data config
    assert loss == {k: v for k, v in _defaults(PhotometricLossNode).items() if k != "num_timesteps"}
    supervised = _compose("bts_supervised")["loss"]
    assert {k: v for k, v in supervised.items() if k != "points"} == \
        {k: v for k, v in _defaults(SupervisedLossNode).items() if k != "points"}
    kd = _compose("kdbts")["kd"]
    assert kd["recipe"] == "frozen" and kd["loss"] == "l1" and kd["student_photometric"] is False
    assert _compose("kdbts", ["kd=joint"])["kd"] == {**kd, "recipe": "joint"}
    for name, protocol in PROTOCOLS.items():
        node = _compose("eval_occupancy", [f"protocol={name}", "checkpoint=x"])["protocol"]
        assert node == {**_defaults(protocol.params_class), "name": name}, name


def test_the_typed_config_is_what_was_composed(synthetic_root):
    cfg = TrainConfig.from_dict(debug_config(synthetic_root, overrides=["trainer.lr=3e-4", "renderer.near=2.5"]))
    assert isinstance(cfg.trainer, TrainerConfig) and cfg.trainer.lr == 3e-4 and cfg.trainer.max_steps == 4
    assert cfg.renderer == RendererConfig(near=2.5, num_samples=16, chunk_points=65536)
    assert isinstance(cfg.objective, ObjectiveConfig) and cfg.objective.rays_per_element == 256
    assert cfg.occupancy_points is None and cfg.kd is None and not cfg.supervised
    supervised = TrainConfig.from_dict(debug_config(synthetic_root, "bts_supervised"))
    assert isinstance(supervised.objective, SupervisedConfig) and supervised.supervised
    assert supervised.occupancy_points["points_per_element"] > 0
    kd = TrainConfig.from_dict(debug_config(synthetic_root, "kdbts", overrides=["kd=joint", "kd.loss=bce"]))
    assert kd.kd.model_recipe() == {"recipe": "joint", "student_photometric": False, "loss": "bce", "mask": "none"}


@pytest.mark.parametrize("override,key", [
    ("trainer.lrr=1", "trainer.lrr"),
    ("trainer.lr=fast", "trainer.lr"),
    ("renderer.num_samples=1.5", "renderer.num_samples"),
    ("loss.weights.smoothnes=1", "loss.weights.smoothnes"),
    ("loss.patch_size=big", "loss.patch_size"),
])
def test_an_unknown_key_or_a_wrong_type_fails_at_compose(override, key):
    with pytest.raises(ConfigCompositionException) as e:
        _compose("bts", ["preset=debug", override])
    assert key in str(e.value.__cause__) or key in str(e.value)


def test_a_bad_key_in_a_preset_fails_at_compose(tmp_path):
    configs = tmp_path / "configs"
    shutil.copytree(CONFIGS, configs)
    (configs / "preset" / "typo.yaml").write_text("# @package _global_\ntrainer:\n  batch_sise: 2\n")
    with pytest.raises(Exception, match="batch_sise"):
        _compose("bts", ["preset=typo"], config_dir=configs)
    (configs / "preset" / "typo.yaml").write_text("# @package _global_\nrenderer:\n  far: far\n")
    with pytest.raises(Exception, match="far"):
        _compose("bts", ["preset=typo"], config_dir=configs)


def test_the_conversion_names_what_is_wrong(synthetic_root):
    good = debug_config(synthetic_root)
    with pytest.raises(ConfigError, match=r"unknown top-level config key\(s\) \['trainr'\]"):
        TrainConfig.from_dict({**good, "trainr": {}})
    with pytest.raises(ConfigError, match=r"no \['renderer'\] node"):
        TrainConfig.from_dict({k: v for k, v in good.items() if k != "renderer"})
    with pytest.raises(ConfigError, match="trainer.lrr"):
        TrainConfig.from_dict({**good, "trainer": {**good["trainer"], "lrr": 1}})
    with pytest.raises(ConfigError, match="trainer.lr"):
        TrainConfig.from_dict({**good, "trainer": {**good["trainer"], "lr": "fast"}})
    with pytest.raises(ConfigError, match="loss.num_timesteps=3 disagrees with data.frames.num_timesteps=2"):
        TrainConfig.from_dict({**good, "loss": {**good["loss"], "num_timesteps": 3}})
    with pytest.raises(ConfigError, match="trainer.max_steps must be null or >= 1"):
        TrainConfig.from_dict({**good, "trainer": {**good["trainer"], "max_steps": 0}})
    with pytest.raises(ConfigError, match="model.kind must be one of"):
        TrainConfig.from_dict({**good, "model": {**good["model"], "kind": "nerf"}})
    kd = debug_config(synthetic_root, "kdbts")
    with pytest.raises(ConfigError, match="needs the kd node"):
        TrainConfig.from_dict({k: v for k, v in kd.items() if k != "kd"})
    with pytest.raises(ConfigError, match="the kd node .* model.kind='bts' has no teacher"):
        TrainConfig.from_dict({**good, "kd": kd["kd"]})
    with pytest.raises(ConfigError, match="kd.teacher_checkpoint"):
        TrainConfig.from_dict({**kd, "kd": {"recipe": "frozen"}})
    with pytest.raises(ConfigError, match="seed must be an integer"):
        TrainConfig.from_dict({**good, "seed": "0"})
    with pytest.raises(ConfigError, match="config node 'trainer' must be a mapping"):
        typed(TrainerConfig, 3, "trainer")


def test_the_defaults_of_the_dataclasses_are_valid_and_checked():
    TrainerConfig()
    with pytest.raises(ConfigError, match="trainer.batch_size must be >= 1"):
        TrainerConfig(batch_size=0)
    with pytest.raises(ConfigError, match="trainer.lr must be positive"):
        TrainerConfig(lr=0.0)
    with pytest.raises(ConfigError, match="trainer.threads must be null"):
        TrainerConfig(threads=0)
    with pytest.raises(ConfigError, match="kd.recipe"):
        DistillationConfig(recipe="melt", teacher_checkpoint="x")
    # The loss node's extra keys are not part of the objective the training step sees.
    node = PhotometricLossNode(rays_per_element=512)
    assert node.objective_config() == ObjectiveConfig(rays_per_element=512)
    assert {f.name for f in dataclasses.fields(node)} - {f.name for f in dataclasses.fields(ObjectiveConfig)} == \
        {"objective"}


def test_the_engine_takes_only_the_typed_config(synthetic_root, tmp_path):
    raw = inspect.unwrap(engine.train)  # under the test suite's type checker, past its own check of the annotation
    with pytest.raises(TypeError, match="train\\(\\) takes a TrainConfig"):
        raw(debug_config(synthetic_root), tmp_path / "run", lambda cfg: None)
    with pytest.raises(TypeError, match="build_parts takes a TrainConfig"):
        inspect.unwrap(engine.build_parts)(debug_config(synthetic_root), None)
    assert not (tmp_path / "run").exists()


def test_train_py_names_a_bad_key(tmp_path, synthetic_root):
    for override, expected in (("trainer.lrr=1", "trainer.lrr"),
                               ("trainer.amp=fp8", "trainer.amp must be one of ['none', 'bf16', 'fp16', 'auto']")):
        done = run_train(["-cn", "bts", "preset=debug", f"data.root={synthetic_root}", override,
                          f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, check=False)
        assert done.returncode != 0, override
        assert expected in done.stderr + done.stdout, (override, done.stderr[-2000:])
        assert not (tmp_path / "run" / "checkpoints").exists()


def test_the_labelled_points_of_the_supervised_loss_are_the_data_layer_s_defaults():
    """``loss.points`` is read by the data layer (``OccupancySampling``, which the library may not import), so its
    YAML copy is the one default written twice; this keeps the two equal."""
    from datasets.synthetic.occupancy_labels import OccupancySampling

    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="bts_supervised")
    points = OmegaConf.to_container(cfg.loss.points, resolve=True)
    assert points == dataclasses.asdict(OccupancySampling())


def test_trainer_threads_sets_the_cpu_threads_of_the_run(synthetic_root, tmp_path, monkeypatch):
    import torch

    from tests.training.helpers import train

    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    train(debug_config(synthetic_root, overrides=["trainer.threads=1", "trainer.max_steps=1"]), tmp_path / "run")
    assert calls == [1]
    calls.clear()
    train(debug_config(synthetic_root, overrides=["trainer.max_steps=1"]), tmp_path / "run2")
    assert calls == []  # null leaves PyTorch's default alone
