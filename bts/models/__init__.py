"""BTS, MVBTS and KDBTS: compositions of encoders and fields."""

from bts.models.bts import BTSModel
from bts.models.factory import build_model

__all__ = ["BTSModel", "build_model"]
