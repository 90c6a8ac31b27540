"""The structured-config schemas of the training configs, registered with Hydra's ConfigStore.

Every YAML group file of ``configs/trainer``, ``configs/renderer``, ``configs/loss`` and ``configs/kd`` extends one
of these schemas (``defaults: [schema, _self_]``) and writes only what differs from the dataclass defaults
(:mod:`bts.training.config`), so each default lives in one place and an unknown key or a wrongly typed value fails
when Hydra composes the config, naming it. Every entry point that composes these configs calls
:func:`register_configs` first (``train.py``, the scripts, the test suite's ``conftest.py``); the evaluation protocols
register theirs in :func:`evaluation.protocols.register_protocol_schemas`.
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from bts.rendering.renderer import RendererConfig
from bts.runs import register_resolvers
from bts.training.config import DistillationConfig, PhotometricLossNode, SupervisedLossNode, TrainerConfig
from bts.training.config import structured

# (group, name) -> the dataclass whose defaults that YAML group extends.
SCHEMAS = {
    ("trainer", "schema"): TrainerConfig,
    ("renderer", "schema"): RendererConfig,
    ("loss", "schema"): PhotometricLossNode,
    ("loss", "supervised_schema"): SupervisedLossNode,
    ("kd", "schema"): DistillationConfig,
}


def register_configs() -> None:
    """Register the schemas (and the ``${run_dir:...}`` resolver of the configs); safe to call more than once."""
    register_resolvers()
    store = ConfigStore.instance()
    for (group, name), cls in SCHEMAS.items():
        store.store(group=group, name=name, node=structured(cls))
