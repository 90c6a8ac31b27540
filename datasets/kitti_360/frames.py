"""Which frames a KITTI-360 datapoint loads (docs/method.md §3.1), in the order the view subsets index.

For a datapoint (sequence, row ``t``, side) with ``num_timesteps = 2``, stereo and fisheyes, the views are, in
this order: main perspective at t, t+1; other perspective at t, t+1; main-side fisheye at t+o, t+o+1; other
fisheye at t+o, t+o+1 (``o = fisheye_offset``). Main = image_00 for side ``l``, image_01 for ``r``; the main-side
fisheye is image_02 for ``l``, image_03 for ``r``. Rows past the end of the sequence are clamped to the last one.

``fisheye_offset`` is one offset (the BTS loader: 10) or a list of them (the KDBTS loader's ``KITTI_360_DFT``
type, docs/method.md §11-6): a training datapoint then draws its offset from the list, uniformly and independently of
the other datapoints, so that the side views look at the input view's hidden space from several distances; a
datapoint outside training uses the list's first offset (as the KDBTS test set does).

The view subsets (``VIEW_SUBSETS``, ``view_subset``) index the order above; they are a convention of the models and
live in :mod:`bts.models.views`, re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass

from bts.models.views import VIEW_SUBSETS, view_subset

__all__ = ["VIEW_SUBSETS", "FrameSelection", "View", "select_views", "view_subset"]


@dataclass(frozen=True)
class FrameSelection:
    num_timesteps: int = 2  # the original's data_fc
    stereo: bool = True
    fisheye: bool = True
    fisheye_offset: int | tuple[int, ...] = 10  # one offset, or a list to draw from per training datapoint

    def __post_init__(self):
        if self.num_timesteps < 1:
            raise ValueError(f"num_timesteps must be >= 1, got {self.num_timesteps}")
        offsets = self.fisheye_offset
        if isinstance(offsets, (list, tuple)):
            object.__setattr__(self, "fisheye_offset", tuple(offsets))
        values = self.fisheye_offsets
        if not values or not all(isinstance(o, int) and not isinstance(o, bool) for o in values):
            raise ValueError(f"fisheye_offset must be an int or a non-empty list of ints, got {offsets!r}")
        if min(values) < 0:
            raise ValueError(f"fisheye_offset must be >= 0, got {offsets!r}")

    @property
    def fisheye_offsets(self) -> tuple[int, ...]:
        """The offsets to draw from (one element for a fixed offset); the first one is used outside training."""
        o = self.fisheye_offset
        return tuple(o) if isinstance(o, tuple) else (o,)


@dataclass(frozen=True)
class View:
    camera: str  # image_00 .. image_03
    row: int  # row in poses.txt (clamped)
    offset: int  # requested time offset from t, before clamping


def select_views(selection: FrameSelection, row: int, side: str, num_rows: int,
                 fisheye_offset: int | None = None) -> list[View]:
    """The views of one datapoint in the fixed order above, with the fisheyes at ``fisheye_offset`` (default: the
    selection's first offset)."""
    if fisheye_offset is None:
        fisheye_offset = selection.fisheye_offsets[0]
    main, other = ("image_00", "image_01") if side == "l" else ("image_01", "image_00")
    fish_main, fish_other = ("image_02", "image_03") if side == "l" else ("image_03", "image_02")
    cameras = [(main, 0)]
    if selection.stereo:
        cameras.append((other, 0))
    if selection.fisheye:
        cameras += [(fish_main, fisheye_offset), (fish_other, fisheye_offset)]
    views = []
    for camera, base in cameras:
        for k in range(selection.num_timesteps):
            offset = base + k
            views.append(View(camera, min(row + offset, num_rows - 1), offset))
    return views
