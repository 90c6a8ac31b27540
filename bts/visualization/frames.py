"""The frames of every video kind and figure (docs/method.md §10), from a model and an input view.

- novel views (``nvs``): colour sampled from the input frame only, and depth, along a camera path;
- sequence frames: the input frame over its rendered depth, with the bird's-eye profile on the right;
- the transition: the depth of a camera that rises and pitches from the front view to a top-down view.

Depth is coloured by inverse depth between ``1/d_max`` and ``1/d_min`` with magma. The functions take any model with
``encode(images, intrinsics, cam_to_world)`` and ``density_fn(encoded)`` (:class:`bts.inference.LoadedModel`), so a
density function of a known scene can stand in for a network.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from bts.export.grid import levelled_to_camera
from bts.rendering.pixels import check_ray_positions
from bts.rendering.renderer import DensityFn, RendererConfig
from bts.visualization.bev import BevGrid, bev_profile, colorize_profile
from bts.visualization.colormap import colorize_depth
from bts.visualization.render import ColourSource, render_view
from bts.visualization.trajectories import transition_pose, transition_progress
from bts.visualization.video import hstack, label, pad_centred, vstack

LAYOUTS = ("vertical", "horizontal")


@runtime_checkable
class SceneModel(Protocol):
    """What rendering calls on a model: an encoding of the input views, and densities against it."""

    def encode(self, images: Tensor, intrinsics: Tensor, cam_to_world: Tensor) -> Any: ...

    def density_fn(self, encoded: Any) -> DensityFn: ...


@dataclass(frozen=True)
class InputView:
    """One datapoint (or own image): view 0 is the input; the other views matter only to MVBTS models."""

    name: str
    images: Float[Tensor, "V 3 H W"]  # in [-1, 1]
    intrinsics: Float[Tensor, "V 3 3"]  # normalised
    cam_to_world: Float[Tensor, "V 4 4"]
    world_from_view0: Tensor | None = None  # absolute pose of view 0 (dataset items), float64

    @property
    def size(self) -> tuple[int, int]:
        return int(self.images.shape[-2]), int(self.images.shape[-1])

    def to(self, device: torch.device | str) -> InputView:
        """The view on ``device`` (the model's), where rays and query points are made."""
        return InputView(self.name, self.images.to(device), self.intrinsics.to(device), self.cam_to_world.to(device),
                         self.world_from_view0)

    def rgb(self) -> Float[Tensor, "3 H W"]:
        return ((self.images[0] + 1.0) / 2.0).clamp(0, 1)

    def colour_source(self) -> ColourSource:
        return ColourSource(self.rgb()[None], self.intrinsics[:1], self.cam_to_world[:1])

    def level_to_world(self, pitch_deg: float) -> Float[Tensor, "4 4"]:
        return self.cam_to_world[0] @ levelled_to_camera(pitch_deg).to(self.cam_to_world)


@dataclass(frozen=True)
class FrameSettings:
    renderer: RendererConfig
    d_min: float = 3.0
    d_max: float = 40.0
    pitch_deg: float = 5.0
    layout: str = "vertical"  # how nvs stacks colour and depth
    rays_per_chunk: int = 4096
    labels: bool = False  # small captions on every part of a frame (render_novel_view.py: output.labels)
    ray_positions: str = "centres"  # where the rays pass: pixel centres, or the original's align_corners (imported)

    def caption(self, image: Tensor, text: str) -> Tensor:
        return label(image, text) if self.labels else image

    def __post_init__(self):
        check_ray_positions(self.ray_positions)
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        if not 0 < self.d_min < self.d_max:
            raise ValueError(f"need 0 < depth.d_min < depth.d_max, got {self.d_min}, {self.d_max}")


@dataclass(frozen=True)
class TransitionSettings:
    num_frames: int = 30
    hold: int = 5
    pitch_deg: float = 85.0
    height: float = 6.0
    distance: float = 10.0
    near_far_start: tuple[float, float] = (3.0, 40.0)
    near_far_end: tuple[float, float] = (4.0, 9.0)  # the original's (5, 7): the road at the dark end (render.yaml)

    @property
    def total_frames(self) -> int:
        return self.num_frames + self.hold


def _depth_caption(d_min: float, d_max: float) -> str:
    return f"depth {d_min:g}-{d_max:g} m (bright: near)"


def encode_view(model: SceneModel, view: InputView) -> DensityFn:
    return model.density_fn(model.encode(view.images[None], view.intrinsics[None], view.cam_to_world[None]))


def _stack(a: Tensor, b: Tensor, layout: str) -> Tensor:
    return vstack(a, b) if layout == "vertical" else hstack(a, b)


def nvs_frames(model: SceneModel, view: InputView, poses: np.ndarray, s: FrameSettings) -> Iterator[Tensor]:
    """Colour (from the input frame only) and depth for every camera-to-input pose ``[N, 4, 4]``."""
    density_fn = encode_view(model, view)
    h, w = view.size
    c2w0 = view.cam_to_world[0]
    for pose in poses:
        c2w = c2w0 @ torch.as_tensor(pose, dtype=c2w0.dtype, device=c2w0.device)
        out = render_view(density_fn, view.intrinsics[0], c2w, h, w, s.renderer, view.colour_source(),
                          s.rays_per_chunk, s.ray_positions)
        yield _stack(s.caption(out.rgb, "novel view (colours of the input)"),
                     s.caption(colorize_depth(out.depth, s.d_min, s.d_max), _depth_caption(s.d_min, s.d_max)), s.layout)


def depth_and_profile(model: SceneModel, view: InputView, s: FrameSettings, bev: BevGrid | None) -> Tensor:
    """The input frame over its depth, and (with ``bev``) the bird's-eye profile on the right, as tall as both."""
    density_fn = encode_view(model, view)
    h, w = view.size
    depth = render_view(density_fn, view.intrinsics[0], view.cam_to_world[0], h, w, s.renderer,
                        rays_per_chunk=s.rays_per_chunk, ray_positions=s.ray_positions).depth
    left = vstack(s.caption(view.rgb(), "input"),
                  s.caption(colorize_depth(depth, s.d_min, s.d_max), _depth_caption(s.d_min, s.d_max)))
    if bev is None:
        return left
    profile = bev_profile(density_fn, bev, view.level_to_world(s.pitch_deg), s.renderer.chunk_points)
    return hstack(left, s.caption(colorize_profile(profile, height=2 * h), "top-down, far at the top"))


def sequence_frames(model: SceneModel, views: Iterator[InputView], s: FrameSettings, bev: BevGrid | None
                    ) -> Iterator[Tensor]:
    for view in views:
        yield depth_and_profile(model, view, s, bev)


def transition_frames(model: SceneModel, view: InputView, s: FrameSettings, t: TransitionSettings
                      ) -> Iterator[Tensor]:
    """Front view to top-down view (docs/method.md §10): the image narrows from ``W`` to ``H`` columns with the same
    horizontal field of view and ``f_y`` scaled by the width ratio (as in the original), so that the top-down view
    covers about as much ground across as along; it is padded back to ``W``. Near/far (z-depth) move from
    ``near_far_start`` to ``near_far_end`` and the depth colouring follows them. Held frames are rendered once."""
    density_fn = encode_view(model, view)
    h, w = view.size
    c2w0 = view.cam_to_world[0]
    previous, frame = None, None
    for p in transition_progress(t.num_frames, t.hold):
        if p == previous:
            yield frame
            continue
        near = t.near_far_start[0] + (t.near_far_end[0] - t.near_far_start[0]) * p
        far = t.near_far_start[1] + (t.near_far_end[1] - t.near_far_start[1]) * p
        width = round(float(w - (w - min(h, w)) * p))
        intrinsics = view.intrinsics[0].clone()
        intrinsics[1, 1] *= width / w
        pose = transition_pose(float(p), t.pitch_deg, t.height, t.distance)
        c2w = c2w0 @ torch.as_tensor(pose, dtype=c2w0.dtype, device=c2w0.device)
        config = replace(s.renderer, near=float(near), far=float(far))
        depth = render_view(density_fn, intrinsics, c2w, h, width, config, rays_per_chunk=s.rays_per_chunk,
                            ray_positions=s.ray_positions).depth
        previous, frame = p, pad_centred(s.caption(colorize_depth(depth, near, far), f"depth {near:.0f}-{far:.0f} m"),
                                         w)
        yield frame
