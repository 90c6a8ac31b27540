"""Session fixtures shared by the whole test suite."""

from __future__ import annotations

from pathlib import Path

import pytest

# The tiny synthetic city every test reads: 2 sequences x 14 posed frames (generated once per session, ~3 s).
SYNTHETIC_PARAMS = dict(sequences=2, frames=14, seed=0, size="tiny")


@pytest.fixture(scope="session", autouse=True)
def _private_cache_dir(tmp_path_factory):
    """Point ``BTS_CACHE_DIR`` at a session folder, so that no test writes into the user's cache."""
    patch = pytest.MonkeyPatch()
    patch.setenv("BTS_CACHE_DIR", str(tmp_path_factory.mktemp("bts_cache")))
    yield
    patch.undo()


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """Root of a tiny synthetic city tree in the KITTI-360 layout (read-only: copy it before modifying)."""
    from datasets.synthetic import generate

    return generate(tmp_path_factory.mktemp("synthetic") / "city", progress=False, **SYNTHETIC_PARAMS)
