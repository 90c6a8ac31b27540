"""Generating a synthetic city tree: parameters, manifest, atomic writes and the cache.

A tree is written into a temporary sibling folder and renamed into place at the end, so an interrupted run never
leaves a half tree that looks complete. Its root holds ``synthetic_city.json``, the manifest of the generation
parameters: a second run with the same parameters finds it and does nothing. The cache folder name carries a
hash of the parameters and of :data:`GENERATOR_VERSION`, which must be bumped whenever the output changes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from datasets.kitti_360.calibration import write_calibration
from datasets.synthetic.presets import SEQUENCE_NAMES, get_preset
from datasets.synthetic.splits import make_splits, write_splits
from datasets.synthetic.writer import SensorRig, SequenceWriter, frame_ids

log = logging.getLogger(__name__)

GENERATOR_VERSION = 3  # 2: a German residential street cross-section; 3: textured vans and trucks (2026-12-01)
MANIFEST = "synthetic_city.json"


@dataclass(frozen=True)
class GenerationParams:
    sequences: int
    frames: int
    seed: int
    size: str

    def validate(self) -> None:
        get_preset(self.size)
        if not 2 <= self.sequences <= len(SEQUENCE_NAMES):
            raise ValueError(f"sequences must be between 2 (one is held out for test) and {len(SEQUENCE_NAMES)}, "
                             f"got {self.sequences}")
        if self.seed < 0:
            raise ValueError(f"seed must be non-negative, got {self.seed}")
        make_splits({s: frame_ids(self.frames)[1] for s in self.sequence_names})  # fails early if too few frames

    @property
    def sequence_names(self) -> list[str]:
        return list(SEQUENCE_NAMES[: self.sequences])

    def manifest(self) -> dict:
        return {"generator": "datasets.synthetic", "version": GENERATOR_VERSION, **asdict(self)}

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.manifest(), sort_keys=True).encode()).hexdigest()[:10]


def read_manifest(root: Path) -> dict | None:
    path = Path(root) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def is_complete(root: Path, params: GenerationParams) -> bool:
    manifest = read_manifest(root)
    return manifest is not None and all(manifest.get(k) == v for k, v in params.manifest().items())


def generate(out: Path | str, *, sequences: int, frames: int, seed: int, size: str = "small",
             overwrite: bool = False, progress: bool = True) -> Path:
    """Write a synthetic city tree into ``out`` and return its path (a no-op if it is already there)."""
    params = GenerationParams(sequences, frames, seed, size)
    params.validate()
    out = Path(out).absolute()
    if is_complete(out, params) and not overwrite:
        log.info("the synthetic city at %s is up to date (%s)", out, params)
        return out
    _check_target(out, params, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:12]}"
    try:
        _write_tree(tmp, params, progress)
        _move_into_place(tmp, out, params)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def _check_target(out: Path, params: GenerationParams, overwrite: bool) -> None:
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    manifest = read_manifest(out)
    if manifest is None:
        raise FileExistsError(f"{out} exists and is not a synthetic city tree (no {MANIFEST}); refusing to write "
                              "into it or delete it: choose a new or empty folder")
    if not overwrite:
        raise FileExistsError(f"{out} holds a synthetic city generated with other parameters ({manifest}); "
                              f"requested {params.manifest()}: pass --overwrite (overwrite=True) to replace it")


def _move_into_place(tmp: Path, out: Path, params: GenerationParams) -> None:
    old = None
    if out.exists():
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        else:
            old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:12]}"
            out.rename(old)
    try:
        tmp.rename(out)
    except OSError:
        if not is_complete(out, params):  # otherwise another process has just written the same tree
            raise
    if old is not None:
        shutil.rmtree(old)


def _write_tree(root: Path, params: GenerationParams, progress: bool) -> None:
    preset = get_preset(params.size)
    sensors = SensorRig.build(preset)
    write_calibration(sensors.calibration, root / "calibration")
    writers = [SequenceWriter(root, name, i, params.seed, params.frames, sensors)
               for i, name in enumerate(params.sequence_names)]
    total = sum(len(w.ids) for w in writers)
    with tqdm(total=total, desc=f"synthetic city ({params.size})", unit="frame", disable=not progress) as bar:
        for w in writers:
            bar.set_postfix_str(w.name)
            w.write_static()
            for row in range(len(w.ids)):
                w.write_frame(row)
                bar.update()
    write_splits(root, {w.name: w.posed_ids for w in writers})
    (root / MANIFEST).write_text(json.dumps(params.manifest(), indent=1, sort_keys=True) + "\n")


def default_cache_dir() -> Path:
    """``$BTS_CACHE_DIR``, else ``$XDG_CACHE_HOME/bts``, else ``~/.cache/bts``."""
    if os.environ.get("BTS_CACHE_DIR"):
        return Path(os.environ["BTS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bts"


def ensure_synthetic_city(*, sequences: int, frames: int, seed: int, size: str,
                          cache_dir: Path | str | None = None) -> Path:
    """The root of a synthetic city with these parameters in the cache, generated on first use."""
    params = GenerationParams(sequences, frames, seed, size)
    params.validate()
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    root = base / f"synthetic_city-{size}-{sequences}x{frames}-seed{seed}-{params.digest()}"
    if is_complete(root, params):
        log.info("using the synthetic city at %s", root)
        return root
    log.info("generating the synthetic city (size %s, %d sequences x %d frames, seed %d) into %s; this happens "
             "once", size, sequences, frames, seed, root)
    return generate(root, sequences=sequences, frames=frames, seed=seed, size=size,
                    overwrite=read_manifest(root) is not None)
