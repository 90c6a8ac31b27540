"""Views of a batch as camera groups, and the split of views into loss and colour frames (docs/method.md §3.2).

A batch holds pinhole views (``images``) and, when the loader keeps fisheyes native, fisheye views
(``fisheye_images``). Views are numbered across both: pinhole views first, then native fisheyes, which gives
the standard order of 8 views in either mode. Frames of one camera model and size form a :class:`ViewGroup`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from bts.geometry import Camera, MeiFisheyeCamera, PinholeCamera


@dataclass(frozen=True)
class ViewGroup:
    images: Tensor  # [B, F, 3, H, W] in [0, 1]
    camera: Camera  # batched [B, F]
    cam_to_world: Tensor  # [B, F, 4, 4]

    @property
    def num_frames(self) -> int:
        return self.images.shape[1]


def num_views(batch: dict) -> int:
    return batch["images"].shape[1] + (batch["fisheye_images"].shape[1] if "fisheye_images" in batch else 0)


def grouped_views(batch: dict, views: list[int]) -> list[int]:
    """``views`` in the order :func:`view_groups` lays their frames out one group after the other (pinhole views,
    then native fisheye views): entry ``i`` is the datapoint view of the ``i``-th frame over all groups."""
    n_pin = batch["images"].shape[1]
    return [v for v in views if v < n_pin] + [v for v in views if v >= n_pin]


def view_groups(batch: dict, views: list[int]) -> list[ViewGroup]:
    """The given views as at most two groups (pinhole, native fisheye); images mapped to ``[0, 1]``."""
    n_pin = batch["images"].shape[1]
    pin = [v for v in views if v < n_pin]
    fish = [v - n_pin for v in views if v >= n_pin]
    groups = []
    if pin:
        groups.append(ViewGroup((batch["images"][:, pin] + 1) / 2, PinholeCamera(batch["intrinsics"][:, pin]),
                                batch["cam_to_world"][:, pin]))
    if fish:
        groups.append(ViewGroup((batch["fisheye_images"][:, fish] + 1) / 2,
                                MeiFisheyeCamera.unpack(batch["fisheye_params"][:, fish]),
                                batch["fisheye_cam_to_world"][:, fish]))
    return groups


def split_frames(total_views: int, num_timesteps: int, mode: str, generator: torch.Generator | None = None
                 ) -> tuple[list[int], list[int]]:
    """Loss and colour frames of a batch (one draw per batch, as the original).

    ``kitti360_mono``: each camera contributes one timestep to each set, alternating across cameras; with 8 views
    either loss {0, 3, 4, 7} / colour {1, 2, 5, 6} or the reverse, with probability 1/2 each. ``random``: a random
    half of the views are loss frames (the original's KITTI Raw ``default`` mode).
    """
    coin = int(torch.randint(0, 2, (1,), generator=generator))
    if mode == "kitti360_mono":
        if num_timesteps != 2 or total_views % 2:
            raise ValueError(f"kitti360_mono needs two timesteps per camera, got {total_views} views with "
                             f"num_timesteps={num_timesteps}")
        loss = [2 * c + ((c + coin) % 2) for c in range(total_views // 2)]
    elif mode == "random":
        if total_views < 2:
            raise ValueError("the random split needs at least two views")
        perm = torch.randperm(total_views, generator=generator).tolist()
        loss = sorted(perm[: total_views // 2])
    else:
        raise ValueError(f"frame_split must be 'kitti360_mono' or 'random', got {mode!r}")
    colour = [v for v in range(total_views) if v not in loss]
    return loss, colour
