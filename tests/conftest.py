"""Session fixtures shared by the whole test suite."""

from __future__ import annotations

from pathlib import Path

import pytest
from jaxtyping import install_import_hook

# Every jaxtyping annotation of the library is checked while the tests run (beartype through jaxtyping's import
# hook, installed before any test imports bts/): a shape written in a signature is a shape enforced.
import tests.typechecking  # noqa: E402, F401  (the hook names it by its dotted path)

install_import_hook("bts", "tests.typechecking.typechecker")

from bts.config import register_configs  # noqa: E402
from evaluation.protocols import register_protocol_schemas  # noqa: E402
from tests import SYNTHETIC_PARAMS  # noqa: E402

# The schemas that configs/{trainer,renderer,loss,kd,protocol} extend, for every test that composes the configs.
register_configs()
register_protocol_schemas()


@pytest.fixture(scope="session", autouse=True)
def _private_cache_dir(tmp_path_factory):
    """Point ``BTS_CACHE_DIR`` at a session folder, so that no test writes into the user's cache."""
    patch = pytest.MonkeyPatch()
    patch.setenv("BTS_CACHE_DIR", str(tmp_path_factory.mktemp("bts_cache")))
    yield
    patch.undo()


@pytest.fixture(autouse=True)
def _subnormals_kept():
    """A test that trains in-process turns on flushing of subnormal floats for the process's main thread
    (``trainer.flush_denormal``, bts/numerics.py); turn it off after every test, so that no test sees a mode that
    an earlier one left behind."""
    yield
    import torch

    torch.set_flush_denormal(False)


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """Root of a tiny synthetic city tree in the KITTI-360 layout (read-only: copy it before modifying)."""
    from datasets.synthetic import generate

    return generate(tmp_path_factory.mktemp("synthetic") / "city", progress=False, **SYNTHETIC_PARAMS)
