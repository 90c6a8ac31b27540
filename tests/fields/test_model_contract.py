"""The model contract (bts/models/contract.py) and the one registry of model kinds (bts/models/factory.py)."""

import inspect
from pathlib import Path

import pytest
import torch
from jaxtyping import TypeCheckError

from bts.checkpoints.format import MODEL_KINDS
from bts.inference import LoadedModel
from bts.models.contract import DistillingModel, FieldModel
from bts.models.factory import MODELS, build_model, model_spec
from bts.models.kdbts import KDBTSModel
from bts.models.mvbts import MVBTSModel, ViewChoice
from tests.training.helpers import debug_config


@pytest.fixture(scope="module")
def configs(tmp_path_factory):
    root = tmp_path_factory.mktemp("unused")  # the model configs do not read the data
    return {kind: debug_config(root, name=kind) for kind in MODEL_KINDS}


def test_every_registered_kind_builds_and_keeps_the_contract(configs):
    assert tuple(MODELS) == MODEL_KINDS  # the checkpoint format and the registry name the same kinds
    for kind, cfg in configs.items():
        model = build_model(cfg["model"], pretrained=False)
        assert type(model) is MODELS[kind].cls and model.kind == kind
        assert isinstance(model, FieldModel)
        assert isinstance(model, DistillingModel) == MODELS[kind].distills == (kind == "kdbts")
    with pytest.raises(ValueError, match=r"model.kind must be one of \('bts', 'mvbts', 'kdbts'\), got 'nerf'"):
        model_spec("nerf")


def test_kdbts_is_a_composition_with_its_recipe_in_the_constructor(configs):
    cfg = configs["kdbts"]
    frozen = build_model(cfg["model"], pretrained=False)
    assert not isinstance(frozen, MVBTSModel)  # it renders one view: not an MVBTS model
    assert frozen.recipe == "frozen" and frozen.kd_loss == "l1"
    assert not any(p.requires_grad for p in frozen.encoder.parameters())
    joint = build_model(cfg["model"], pretrained=False,
                        distillation={"recipe": "joint", "student_photometric": True, "loss": "vis_bce",
                                      "teacher_checkpoint": "unused.pt"})
    assert joint.recipe == "joint" and joint.student_photometric and joint.kd_loss == "vis_bce"
    assert all(p.requires_grad for p in joint.encoder.parameters())
    # The state-dict keys are those of the checkpoints written before (encoder, teacher field, student head).
    assert {k.split(".")[0] for k in joint.state_dict()} == {"encoder", "field", "student_head"}
    with pytest.raises(ValueError, match="kd.recipe must be one of"):
        KDBTSModel(frozen.encoder, frozen.field, recipe="thawed")


def test_the_teacher_and_mvbts_choose_their_views_alike(configs):
    choice = ViewChoice(3, (1, 2, 3), "stereo")
    torch.manual_seed(0)
    drawn = [choice(8, training=True) for _ in range(5)]
    kd = build_model(configs["kdbts"]["model"], pretrained=False)
    torch.manual_seed(0)
    assert [kd.encoder_views(8, training=True) for _ in range(5)] == [
        [0] + sorted(v[1:]) for v in drawn] and all(len(v) == 3 for v in drawn)
    assert kd.encoder_views(8, training=False) == [0] and choice(8, training=False) == [0, 2]
    with pytest.raises(ValueError, match="num_train_views=5 needs 4"):
        ViewChoice(5, (1, 2, 3))


def test_inference_reads_the_registry_not_kind_strings(configs):
    mv = build_model(configs["mvbts"]["model"], pretrained=False)
    loaded = LoadedModel(mv, "mvbts", configs["mvbts"]["model"], Path("m.pt"))
    mv.eval_views = "stereo_temporal"
    assert loaded.multi_view and not loaded.single_view and loaded.description == "mvbts[stereo_temporal]"
    kd = LoadedModel(build_model(configs["kdbts"]["model"], pretrained=False), "kdbts", {}, Path("k.pt"))
    assert not kd.multi_view and kd.single_view and kd.views == "mono" and kd.description == "kdbts"


def test_a_model_with_training_density_but_not_the_whole_contract_is_refused(configs):
    """A distilling model that misses part of the contract (here ``density_fn``) would otherwise train without its
    distillation term: ``isinstance(model, DistillingModel)`` is false for it."""
    from bts.rendering.renderer import RendererConfig
    from bts.training.engine import objective_config
    from bts.training.objective import training_step

    cfg = configs["bts"]
    inner = build_model(cfg["model"], pretrained=False)

    class HalfDistilling(torch.nn.Module):
        kind = "bts"

        def __init__(self):
            super().__init__()
            self.inner = inner

        def encoder_views(self, num_views, training):
            return inner.encoder_views(num_views, training)

        def encode(self, *args, **kwargs):
            return inner.encode(*args, **kwargs)

        def density(self, points, encoded):
            return inner.density(points, encoded)

        def training_density(self, points, encoded, kd, **_):
            return inner.density(points, encoded)

    model = HalfDistilling()
    assert not isinstance(model, DistillingModel)
    views = 2
    batch = {"images": torch.zeros(1, views, 3, 16, 32), "intrinsics": torch.eye(3).expand(1, views, 3, 3).clone(),
             "cam_to_world": torch.eye(4).expand(1, views, 4, 4).clone()}
    args = (model, batch, objective_config(cfg), RendererConfig(**cfg["renderer"]))
    # In the test suite the annotation (model: FieldModel) rejects it; callers without the type checker get the
    # step's own check.
    with pytest.raises(TypeCheckError, match="model"):
        training_step(*args)
    with pytest.raises(TypeError, match="HalfDistilling has training_density but is not a DistillingModel.*density_fn"):
        inspect.unwrap(training_step)(*args)
