"""The test suite. Settings that several test files read live here (test modules do not import each other)."""

# The tiny synthetic city every test reads: 2 sequences x 14 posed frames (generated once per session, ~3 s; the
# ``synthetic_root`` fixture of tests/conftest.py).
SYNTHETIC_PARAMS = dict(sequences=2, frames=14, seed=0, size="tiny")
