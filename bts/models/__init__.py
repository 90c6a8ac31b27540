"""BTS, MVBTS and KDBTS: compositions of encoders and fields.

The models (which import torchvision) load lazily, so that the view subsets of :mod:`bts.models.views` stay cheap to
import (the data layer re-exports them).
"""

from importlib import import_module

_LAZY = {"BTSModel": "bts.models.bts", "build_model": "bts.models.factory"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bts.models' has no attribute {name!r}")


__all__ = ["BTSModel", "build_model"]
