"""The main job on the built-in data: ``make demo`` (``python -m scripts.demo [overrides]``).

So far: generate the synthetic city (or reuse it from the cache), report what was written, and load one
training datapoint through the KITTI-360 loader. Later stages extend it to train, distil, evaluate and render.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from datasets.factory import build_dataset, dataset_root

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "configs")
log = logging.getLogger("scripts.demo")


def summarize_tree(root: Path) -> list[str]:
    """One line per top-level folder of the dataset tree: file count and size."""
    lines = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        files = [f for f in sub.rglob("*") if f.is_file()]
        size = sum(f.stat().st_size for f in files)
        lines.append(f"  {sub.name + '/':<16} {len(files):>7} files {size / 2**20:>9.1f} MiB")
    return lines


@hydra.main(config_path=CONFIG_DIR, config_name="demo", version_base="1.3")
def main(cfg: DictConfig) -> None:
    root = dataset_root(cfg.data, cfg.paths)
    print(f"dataset: {cfg.data.name} at {root}")
    print("\n".join(summarize_tree(root)))
    for split in ("train", "val", "test"):
        ds = build_dataset(cfg.data, cfg.paths, split, train=split == "train")
        print(f"  split {split:<5} {len(ds):>6} datapoints")
    item = build_dataset(cfg.data, cfg.paths, "train", train=True)[0]
    print("one training datapoint:")
    for key, value in item.items():
        desc = f"{tuple(value.shape)} {value.dtype}" if hasattr(value, "shape") else repr(value)
        print(f"  {key:<22} {desc}")


if __name__ == "__main__":
    sys.exit(main())
