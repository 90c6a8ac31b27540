"""What an evaluation or a rendering runs on: the device, the model, the data, the frames.

One way for every entry point (``evaluation/occupancy.py``, ``evaluation/depth.py``, ``evaluation/nvs.py`` and
``render_novel_view.py``), so that the same command-line keys mean the same thing everywhere:

- ``device=auto|cpu|cuda|cuda:N`` (:func:`select_device`);
- ``checkpoint=PATH views=<subset>`` (:func:`load`; ``views`` is the MVBTS view subset, docs/decisions.md §7);
- ``data=...``: the ``data`` of the command line, else the training run's (read from the checkpoint's run folder),
  else ``configs/data/kitti_360.yaml`` (the synthetic city when no KITTI-360 root is configured)
  (:func:`data_config`);
- ``image_size=[H, W]``: else the training run's, else the data's (:func:`input_size`);
- ``frames=[...] frame_stride=N max_frames=N`` (:func:`frame_indices`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, Dataset, Subset

from bts.inference import LoadedModel, load_model
from datasets.kitti_360.frames import view_subset

log = logging.getLogger(__name__)
CONFIGS = Path(__file__).resolve().parent.parent / "configs"
NUM_STANDARD_VIEWS = 8  # the KITTI-360 item order of datasets/kitti_360/frames.py


def select_device(name: str) -> torch.device:
    """``auto``: CUDA when available, else CPU; otherwise the named device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load(cfg: DictConfig) -> LoadedModel:
    """The model of ``cfg.checkpoint`` on ``cfg.device`` with the view subset ``cfg.views`` (``None``: its own)."""
    return load_model(cfg.checkpoint, device=select_device(cfg.device), views=cfg.views)


def data_config(cfg: DictConfig, loaded: LoadedModel) -> tuple[DictConfig, str]:
    """The ``data`` node and where it came from: the command line, the training run, or the KITTI-360 defaults.

    A model imported from the original code gets the original's intrinsics normalisation (``pixel_convention:
    corner``), as the importer records in its config (docs/original_checkpoints.md).
    """
    if cfg.get("data") is not None:
        data, source = cfg.data, "command line"
    elif loaded.run_config is not None and loaded.run_config.get("data") is not None:
        data, source = OmegaConf.create(loaded.run_config["data"]), "the training run"
    else:
        data, source = OmegaConf.load(CONFIGS / "data" / "kitti_360.yaml"), "configs/data/kitti_360.yaml"
    conventions = loaded.conventions
    if conventions.get("intrinsics") == "corner" and data.get("name") in ("kitti_360", "synthetic"):
        data = OmegaConf.create(OmegaConf.to_container(data, resolve=False))
        data.pixel_convention = "corner"
        log.info("imported original model: intrinsics normalised the original way (pixel_convention=corner)")
    return data, source


def resolved_data(cfg: DictConfig, data: DictConfig) -> DictConfig:
    """``data`` with its interpolations (``${paths.*}``) resolved against the command's ``paths``."""
    return OmegaConf.merge({"paths": cfg.paths}, {"data": data}).data


def input_size(requested: Sequence[int] | None, loaded: LoadedModel, data: DictConfig) -> tuple[int, int]:
    """The (H, W) the model sees: ``requested``, else the training run's, else the data config's."""
    if requested is not None:
        size = tuple(int(v) for v in requested)
    else:
        size = loaded.training_image_size() or tuple(int(v) for v in data.image_size)
    if len(size) != 2 or min(size) <= 0:
        raise ValueError(f"image_size must be [H, W] with positive values, got {list(size)}")
    return size  # type: ignore[return-value]


def model_views(loaded: LoadedModel) -> tuple[int, ...]:
    """Indices (in the standard KITTI-360 item order) of the views the model encodes."""
    if loaded.single_view:
        return (0,)
    if loaded.views == "all":
        return tuple(range(NUM_STANDARD_VIEWS))
    return view_subset(loaded.views)


def frame_selection(views: Sequence[int], need_stereo: bool) -> dict[str, Any]:
    """The ``data.frames`` node that loads the fewest frames while keeping the standard indices of ``views``.

    Only the input view: one timestep, no fisheye (plus the stereo partner as view 1 with ``need_stereo``).
    Otherwise two timesteps, stereo when an index >= 2 is used (or ``need_stereo``), fisheyes for indices >= 4.
    """
    last = max(views)
    if last == 0:
        return {"num_timesteps": 1, "stereo": need_stereo, "fisheye": False}
    return {"num_timesteps": 2, "stereo": need_stereo or last >= 2, "fisheye": last >= 4}


def with_frames(data: DictConfig, frames: dict[str, Any], image_size: tuple[int, int]) -> DictConfig:
    """A copy of a KITTI-360-style ``data`` node with the given frame selection and image size."""
    out = OmegaConf.create(OmegaConf.to_container(data, resolve=False))
    out.frames = {**OmegaConf.to_container(out.frames), **frames}
    out.image_size = list(image_size)
    return out


def stereo_partner(cameras: torch.Tensor, frame_ids: torch.Tensor) -> int:
    """Index of the view taken by view 0's stereo partner at the same time (cameras 0 <-> 1, 2 <-> 3)."""
    partner = int(cameras[0]) ^ 1
    hits = ((cameras == partner) & (frame_ids == frame_ids[0])).nonzero().flatten()
    if len(hits) == 0:
        raise ValueError(f"no stereo partner (camera {partner}, frame {int(frame_ids[0])}) among the views "
                         f"{cameras.tolist()} / frames {frame_ids.tolist()}")
    return int(hits[0])


def frame_indices(num: int, frames: Sequence[int] | None, max_frames: int | None, stride: int = 1) -> list[int]:
    """Dataset indices to evaluate: ``frames`` (or all, every ``stride``-th), at most ``max_frames`` of them."""
    if stride < 1:
        raise ValueError(f"frame_stride must be >= 1, got {stride}")
    indices = list(range(0, num, stride)) if frames is None else [int(i) for i in frames]
    bad = [i for i in indices if not 0 <= i < num]
    if bad:
        raise ValueError(f"frame indices {bad} are outside the split ({num} datapoints)")
    if max_frames is not None:
        if max_frames < 1:
            raise ValueError(f"max_frames must be >= 1 or null, got {max_frames}")
        indices = indices[:max_frames]
    return indices


def iterate(dataset: Dataset, indices: list[int], num_workers: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(index, item)`` for the chosen indices, loaded by ``num_workers`` worker processes (no batching)."""
    loader = DataLoader(Subset(dataset, indices), batch_size=None, num_workers=num_workers)
    yield from zip(indices, loader, strict=True)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device):
    """Run a block with the global RNG (CPU, and the CUDA device) seeded, restoring it afterwards."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield
