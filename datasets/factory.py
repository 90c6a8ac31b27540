"""Build datasets from the ``data`` and ``paths`` config groups.

Library code takes typed arguments; this is the one place where the config's ``data`` node becomes a
:class:`Kitti360Config`, so an unknown or missing key fails here, named.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from datasets.kitti_360 import FrameSelection, Kitti360Config, Kitti360Dataset

if TYPE_CHECKING:
    from datasets.synthetic.occupancy_labels import OccupancyLabelledDataset

log = logging.getLogger(__name__)

SHIPPED_SPLITS = Path(__file__).parent / "kitti_360" / "splits" / "seg"
SPLITS = ("train", "val", "test")
_LOADER_KEYS = {"name", "root", "split_dir", "num_workers", "synthetic"}


def _plain(cfg: DictConfig | dict) -> dict[str, Any]:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)


_warned_no_root: list[bool] = []


def dataset_root(data: DictConfig | dict, paths: DictConfig | dict) -> Path:
    """The dataset's root folder; for the synthetic city, generated on first use into the cache."""
    d, p = _plain(data), _plain(paths)
    if d["name"] not in ("kitti_360", "synthetic"):
        raise ValueError(f"data.name must be 'kitti_360' or 'synthetic', got {d['name']!r}")
    if d["root"] is not None:
        return Path(d["root"])
    if d["name"] == "kitti_360" and not _warned_no_root:
        _warned_no_root.append(True)  # once per process, not once per split
        log.warning("no KITTI-360 root configured (set KITTI360_ROOT or paths.kitti360_root): using the built-in "
                    "synthetic city instead")
    from datasets.synthetic import ensure_synthetic_city

    s = d["synthetic"]
    return ensure_synthetic_city(sequences=s["sequences"], frames=s["frames"], seed=s["seed"], size=s["size"],
                                 cache_dir=p["cache_dir"])


def split_file(data: DictConfig | dict, root: Path, split: str) -> Path:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    d = _plain(data)
    if d["split_dir"] is not None:
        folder = Path(d["split_dir"])
    else:
        folder = SHIPPED_SPLITS if d["name"] == "kitti_360" and d["root"] is not None else root / "splits"
    return folder / f"{split}_files.txt"


def loader_config(data: DictConfig | dict, train: bool) -> Kitti360Config:
    """The :class:`Kitti360Config` of a ``data`` node; colour jitter and drawn fisheye offsets only for training."""
    d = {k: v for k, v in _plain(data).items() if k not in _LOADER_KEYS}
    frames = FrameSelection(**d.pop("frames"))
    d["color_jitter"] = bool(d["color_jitter"]) and train
    d["draw_fisheye_offset"] = train
    for key in ("image_size", "fisheye_rotation", "fisheye_size"):
        if d.get(key) is not None:
            d[key] = tuple(d[key])
    try:
        return Kitti360Config(frames=frames, **d)
    except TypeError as e:
        raise ValueError(f"invalid key in the data config: {e}") from None


def build_dataset(data: DictConfig | dict, paths: DictConfig | dict, split: str, train: bool = False,
                  lidar_depth: bool = False, occupancy_labels: DictConfig | dict | None = None
                  ) -> Kitti360Dataset | OccupancyLabelledDataset:
    """The dataset of a split. With ``occupancy_labels`` (the ``loss.points`` node of the supervised objective)
    every item also carries exact occupancy labels of the synthetic city
    (:class:`~datasets.synthetic.occupancy_labels.OccupancyLabelledDataset`); a tree without the exact scene fails."""
    root = dataset_root(data, paths)
    config = loader_config(data, train)
    if lidar_depth:
        config.lidar_depth = True
    dataset = Kitti360Dataset(root, split_file(data, root, split), config)
    if occupancy_labels is None:
        return dataset
    from datasets.synthetic.occupancy_labels import OccupancyLabelledDataset, sampling_from_config

    return OccupancyLabelledDataset(dataset, sampling_from_config(_plain(occupancy_labels)))
