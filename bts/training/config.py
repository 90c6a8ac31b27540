"""The typed configuration of a training run: what ``train.py`` hands the engine after one conversion.

Each default is written once, here or in the library's own dataclasses (:class:`~bts.rendering.renderer.RendererConfig`,
:class:`~bts.training.objective.ObjectiveConfig`, :class:`~bts.training.supervised.SupervisedConfig`,
:class:`~bts.losses.LossWeights`). The YAML group files extend these classes as Hydra structured-config schemas
(registered by :func:`bts.config.register_configs`) and write only what differs, so an unknown key or a value of the
wrong type fails when the config is composed, naming the key. :meth:`TrainConfig.from_dict` converts a resolved
config (a plain dict, as ``OmegaConf.to_container(cfg, resolve=True)`` gives it) into these classes with the same
strictness, for callers that did not compose through Hydra.

The ``model``, ``data`` and ``paths`` nodes stay dicts: their builders (:func:`bts.models.factory.build_model`, the
data layer) check their keys themselves and name the bad ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Optional

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from bts.errors import UserError
from bts.losses.distillation import check_kd_loss
from bts.losses.trust import check_mask
from bts.models.factory import MODELS
from bts.models.kdbts import RECIPES
from bts.numerics import CPU_MEMORY_MODES
from bts.rendering.renderer import RendererConfig
from bts.training.objective import ObjectiveConfig
from bts.training.supervised import SupervisedConfig

AMP_MODES = ("none", "bf16", "fp16", "auto")  # auto: bf16 where the device has native bf16 kernels, else none
OBJECTIVES = ("photometric", "supervised")


class ConfigError(UserError, ValueError):
    """A training config that does not match its schema; the message names the key (``trainer.lr``, ...)."""


# Optional[...] rather than "X | None": OmegaConf reads these annotations, and its 2.3 does not parse the new syntax.
@dataclass(frozen=True)
class TrainerConfig:
    """Optimisation and bookkeeping (docs/method.md §6): the paper's BTS values."""

    batch_size: int = 16
    lr: float = 1.0e-4  # Adam
    lr_step: int = 120_000  # StepLR, stepped every iteration
    lr_gamma: float = 0.1
    # StepLR's step as a fraction of max_steps (overrides lr_step), for a schedule that scales with a shortened run:
    # the paper's BTS decays at 120k of its 153k steps, 0.78 (None: lr_step, the original)
    lr_decay_at: Optional[float] = None
    warmup_steps: int = 0  # linear warm-up of the rate over the first N steps (0: none, the original)
    grad_clip: Optional[float] = None  # clip the global gradient norm before each update (None: the original)
    epochs: int = 25
    max_steps: Optional[int] = None  # stop after this many steps (overrides epochs)
    amp: str = "none"  # none | bf16 | fp16 (CUDA only): mixed precision of the encoder
    channels_last: bool = False  # the encoder's convolutions in channels-last memory format (faster on the CPU)
    backend: Optional[str] = None  # None: one process; nccl / gloo under torchrun
    threads: Optional[int] = None  # CPU threads of PyTorch per process (None: its default, one per core)
    flush_denormal: bool = True  # CPU: subnormal floats (< 1.2e-38) read and written as zero (bts/numerics.py)
    # CPU: keep (freed tensor memory reused by the next step) | system (glibc's defaults) (bts/numerics.py)
    cpu_memory: str = "keep"
    log_every: int = 50
    image_every: int = 1000
    validate_every: int = 2000
    val_samples: int = 256
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    resume_from: Optional[str] = None  # a checkpoint of this run's model config

    def __post_init__(self):
        if self.amp not in AMP_MODES:
            raise ConfigError(f"trainer.amp must be one of {list(AMP_MODES)}, got {self.amp!r}")
        if self.cpu_memory not in CPU_MEMORY_MODES:
            raise ConfigError(f"trainer.cpu_memory must be one of {list(CPU_MEMORY_MODES)}, got {self.cpu_memory!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ConfigError(f"trainer.grad_clip must be null (no clipping) or a positive gradient norm, "
                              f"got {self.grad_clip!r}")
        for name in ("batch_size", "lr_step", "epochs", "log_every", "image_every", "validate_every",
                     "checkpoint_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ConfigError(f"trainer.{name} must be >= 1, got {getattr(self, name)}")
        if self.warmup_steps < 0 or self.val_samples < 0:
            raise ConfigError(f"trainer.warmup_steps and trainer.val_samples must be >= 0, got "
                              f"{self.warmup_steps} and {self.val_samples}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"trainer.threads must be null (PyTorch's default) or >= 1, got {self.threads}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"trainer.max_steps must be null or >= 1, got {self.max_steps}")
        if not self.lr > 0:
            raise ConfigError(f"trainer.lr must be positive, got {self.lr}")
        if self.lr_decay_at is not None:
            if not 0 < self.lr_decay_at <= 1:
                raise ConfigError(f"trainer.lr_decay_at must be null (use trainer.lr_step) or a fraction of "
                                  f"trainer.max_steps in (0, 1], got {self.lr_decay_at!r}")
            if self.max_steps is None:
                raise ConfigError("trainer.lr_decay_at is a fraction of trainer.max_steps, which is null: set "
                                  "trainer.max_steps, or give the step itself as trainer.lr_step")

    def schedule_step(self) -> int:
        """The step size of the StepLR schedule: ``lr_step``, or ``lr_decay_at`` times ``max_steps`` (at least 1)."""
        if self.lr_decay_at is None:
            return self.lr_step
        return max(1, round(self.lr_decay_at * self.max_steps))


@dataclass(frozen=True)
class PhotometricLossNode(ObjectiveConfig):
    """The ``loss`` node of BTS, MVBTS and KDBTS (``configs/loss/bts.yaml``): the objective plus its selector."""

    objective: str = "photometric"

    def objective_config(self) -> ObjectiveConfig:
        return ObjectiveConfig(**{f.name: getattr(self, f.name) for f in fields(ObjectiveConfig)})


@dataclass(frozen=True)
class SupervisedLossNode(SupervisedConfig):
    """The ``loss`` node of the supervised upper bound (``configs/loss/supervised.yaml``). ``points`` says how the
    data layer samples the labelled points (its keys are checked there: ``datasets/synthetic/occupancy_labels.py``)."""

    objective: str = "supervised"
    points: dict[str, Any] = MISSING
    rays_per_element: Optional[int] = None  # photometric only, unused: present so that the presets compose

    def objective_config(self) -> SupervisedConfig:
        return SupervisedConfig(**{f.name: getattr(self, f.name) for f in fields(SupervisedConfig)})


LOSS_NODES = {"photometric": PhotometricLossNode, "supervised": SupervisedLossNode}


@dataclass(frozen=True)
class DistillationConfig:
    """The ``kd`` node of a KDBTS run (docs/decisions.md §4): the recipe and the teacher checkpoint are the YAML
    recipe's to say (``configs/kd/frozen.yaml``, ``joint.yaml``)."""

    recipe: str = MISSING  # frozen | joint
    teacher_checkpoint: str = MISSING
    student_photometric: bool = False
    loss: str = "l1"  # l1 (the paper) | bce | vis_bce (bts/losses/distillation.py)
    mask: str = "none"  # none (the paper) | visibility | agreement | photometric | learned (bts/losses/trust.py)

    def __post_init__(self):
        if self.recipe not in RECIPES:
            raise ConfigError(f"kd.recipe must be one of {list(RECIPES)}, got {self.recipe!r}")
        try:  # the model's own checks, raised here as config errors before anything is built
            check_kd_loss(self.loss)
            check_mask(self.mask)
        except ValueError as e:
            raise ConfigError(str(e)) from None

    def model_recipe(self) -> dict[str, Any]:
        """What the KDBTS constructor takes (``build_model(..., distillation=...)``)."""
        return {"recipe": self.recipe, "student_photometric": self.student_photometric, "loss": self.loss,
                "mask": self.mask}


def structured(cls: type):  # -> DictConfig (not annotated: beartype reads it as a deprecated typing generic)
    """The OmegaConf node of dataclass ``cls`` (its keys, types and defaults), writable: OmegaConf marks the node of a
    frozen dataclass read-only, which would refuse every value a YAML file, an override or a dict sets."""
    if not is_dataclass(cls):
        raise TypeError(f"a config schema is a dataclass, got {cls!r}")
    node = OmegaConf.structured(cls)
    _writable(node)
    return node


def _writable(node) -> None:
    OmegaConf.set_readonly(node, False)
    for key in node.keys():
        child = node._get_node(key)
        if OmegaConf.is_dict(child):
            _writable(child)


def _message(e: OmegaConfBaseException) -> str:
    return str(e).split("\n")[0]


def typed(cls: type, node: Any, where: str):
    """``node`` (a dict or an OmegaConf node) as an instance of the dataclass ``cls``, strictly: an unknown key, a
    value of the wrong type or a missing mandatory value is a :class:`ConfigError` naming ``where.key``."""
    if isinstance(node, cls):
        return node
    if not isinstance(node, dict) and not OmegaConf.is_dict(node):
        raise ConfigError(f"config node {where!r} must be a mapping of {cls.__name__}'s keys, got {node!r}")
    try:
        merged = OmegaConf.merge(structured(cls), node)
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or getattr(e, "key", None)
        name = f"{where}.{key}" if key else where
        known = ", ".join(f.name for f in fields(cls))
        raise ConfigError(f"config key {name}: {_message(e)} (the keys of {where}: {known})") from None


def objective_of(loss: PhotometricLossNode | SupervisedLossNode, num_timesteps: int) -> ObjectiveConfig | \
        SupervisedConfig:
    """The step's objective of a ``loss`` node; the photometric one must agree with the data's timesteps."""
    objective = loss.objective_config()
    if isinstance(objective, ObjectiveConfig) and objective.num_timesteps != num_timesteps:
        raise ConfigError(f"loss.num_timesteps={objective.num_timesteps} disagrees with data.frames.num_timesteps="
                          f"{num_timesteps} (the loss config takes it from the data config; leave it unset)")
    return objective


TOP_LEVEL = ("seed", "paths", "data", "model", "renderer", "loss", "trainer", "kd")


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run: ``train.py`` converts the composed config once (:meth:`from_dict`) and the engine
    (:func:`bts.training.engine.train`) reads only this."""

    seed: int
    trainer: TrainerConfig
    renderer: RendererConfig
    loss: PhotometricLossNode | SupervisedLossNode
    objective: ObjectiveConfig | SupervisedConfig
    model: dict[str, Any]
    data: dict[str, Any]
    paths: dict[str, Any] = field(default_factory=dict)
    kd: DistillationConfig | None = None

    @property
    def supervised(self) -> bool:
        return isinstance(self.objective, SupervisedConfig)

    @property
    def occupancy_points(self) -> dict[str, Any] | None:
        """How the data layer samples the supervised objective's labelled points (``loss.points``), else ``None``."""
        return dict(self.loss.points) if isinstance(self.loss, SupervisedLossNode) else None

    @classmethod
    def from_dict(cls, cfg: Any) -> TrainConfig:
        """The typed config of a resolved training config (``OmegaConf.to_container(cfg, resolve=True)``)."""
        if OmegaConf.is_config(cfg):
            cfg = OmegaConf.to_container(cfg, resolve=True)
        if not isinstance(cfg, dict):
            raise ConfigError(f"a training config is a mapping, got {type(cfg).__name__}")
        unknown = sorted(set(cfg) - set(TOP_LEVEL))
        if unknown:
            raise ConfigError(f"unknown top-level config key(s) {unknown}: a training config has {list(TOP_LEVEL)}")
        missing = [k for k in ("seed", "data", "model", "renderer", "loss", "trainer") if k not in cfg]
        if missing:
            raise ConfigError(f"the training config has no {missing} node(s): compose it from configs/ "
                              "(python train.py -cn bts|mvbts|kdbts|bts_supervised)")
        for name in ("model", "data"):
            if not isinstance(cfg[name], dict):
                raise ConfigError(f"config node {name!r} must be a mapping, got {cfg[name]!r}")
        kind = cfg["model"].get("kind")
        loss = dict(cfg["loss"]) if isinstance(cfg["loss"], dict) else cfg["loss"]
        name = loss.get("objective", "photometric") if isinstance(loss, dict) else None
        if name not in OBJECTIVES:
            raise ConfigError(f"loss.objective must be one of {list(OBJECTIVES)}, got {name!r}")
        if name == "supervised" and "points" not in loss:
            raise ConfigError("loss.objective=supervised needs loss.points (how the labelled points are sampled): "
                              "use the supervised loss group (-cn bts_supervised, or loss=supervised)")
        frames = cfg["data"].get("frames") or {}
        num_timesteps = frames.get("num_timesteps", ObjectiveConfig.num_timesteps)
        if name == "photometric":
            loss.setdefault("num_timesteps", num_timesteps)
        loss_node = typed(LOSS_NODES[name], loss, "loss")
        kd = cfg.get("kd")
        distills = _distills(kind)
        if distills and kd is None:
            raise ConfigError(f"model.kind={kind!r} distils from a teacher and needs the kd node (-cn kdbts)")
        if kd is not None and not distills:
            raise ConfigError(f"the kd node (distillation) is set but model.kind={kind!r} has no teacher: use "
                              "-cn kdbts with its model, or drop the kd node")
        if name == "supervised" and distills:
            plain = [k for k, spec in MODELS.items() if not spec.distills]
            raise ConfigError(f"loss.objective=supervised trains model.kind in {plain}, not {kind!r} (a model "
                              "without a teacher)")
        return cls(seed=_integer(cfg["seed"], "seed"),
                   trainer=typed(TrainerConfig, cfg["trainer"], "trainer"),
                   renderer=typed(RendererConfig, cfg["renderer"], "renderer"),
                   loss=loss_node,
                   objective=objective_of(loss_node, num_timesteps),
                   model=cfg["model"], data=cfg["data"], paths=dict(cfg.get("paths") or {}),
                   kd=typed(DistillationConfig, kd, "kd") if distills else None)


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"config key {name} must be an integer, got {value!r}")
    return value


def _distills(kind: Any) -> bool:
    if kind not in MODELS:
        raise ConfigError(f"model.kind must be one of {sorted(MODELS)}, got {kind!r}")
    return MODELS[kind].distills
