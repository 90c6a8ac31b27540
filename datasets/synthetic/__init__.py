"""The built-in synthetic city: a KITTI-360 look-alike street with exact ground truth (docs/synthetic_city.md).

    python -m datasets.synthetic --out DIR [--sequences N] [--frames M] [--seed S] [--size tiny|small|default]

Python API:

- :func:`generate` writes a tree into a folder (a no-op when the same tree is already there);
- :func:`ensure_synthetic_city` returns a cached tree, generating it on first use;
- :func:`load_scene` gives the exact ground truth of one sequence (occupancy, depth, ray distances).

Modules: ``presets`` (sizes), ``city`` (procedural layout), ``scene`` (primitives, JSON), ``intersect`` and
``raycast`` (exact ray casting), ``occupancy``, ``noise`` and ``appearance`` (textures, shading, sky), ``rig``
(calibration, trajectory, lidar), ``render``, ``writer`` (one sequence), ``splits``, ``generate`` (trees, cache),
``ground_truth`` (reading it back).
"""

from datasets.synthetic.generate import GENERATOR_VERSION, MANIFEST, default_cache_dir, ensure_synthetic_city, generate
from datasets.synthetic.ground_truth import SyntheticScene, load_scene
from datasets.synthetic.presets import PRESETS, SEQUENCE_NAMES, SizePreset

__all__ = [
    "GENERATOR_VERSION", "MANIFEST", "PRESETS", "SEQUENCE_NAMES", "SizePreset", "SyntheticScene",
    "default_cache_dir", "ensure_synthetic_city", "generate", "load_scene",
]
