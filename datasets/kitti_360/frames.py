"""Which frames a KITTI-360 datapoint loads (method.md §3.1) and the named view subsets (decisions.md §7).

For a datapoint (sequence, row ``t``, side) with ``num_timesteps = 2``, stereo and fisheyes, the views are, in
this order: main perspective at t, t+1; other perspective at t, t+1; main-side fisheye at t+o, t+o+1; other
fisheye at t+o, t+o+1 (``o = fisheye_offset``). Main = image_00 for side ``l``, image_01 for ``r``; the main-side
fisheye is image_02 for ``l``, image_03 for ``r``. Rows past the end of the sequence are clamped to the last one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FrameSelection:
    num_timesteps: int = 2  # the original's data_fc
    stereo: bool = True
    fisheye: bool = True
    fisheye_offset: int = 10

    def __post_init__(self):
        if self.num_timesteps < 1:
            raise ValueError(f"num_timesteps must be >= 1, got {self.num_timesteps}")
        if self.fisheye_offset < 0:
            raise ValueError(f"fisheye_offset must be >= 0, got {self.fisheye_offset}")


@dataclass(frozen=True)
class View:
    camera: str  # image_00 .. image_03
    row: int  # row in poses.txt (clamped)
    offset: int  # requested time offset from t, before clamping


def select_views(selection: FrameSelection, row: int, side: str, num_rows: int) -> list[View]:
    """The views of one datapoint in the fixed order above."""
    main, other = ("image_00", "image_01") if side == "l" else ("image_01", "image_00")
    fish_main, fish_other = ("image_02", "image_03") if side == "l" else ("image_03", "image_02")
    cameras = [(main, 0)]
    if selection.stereo:
        cameras.append((other, 0))
    if selection.fisheye:
        cameras += [(fish_main, selection.fisheye_offset), (fish_other, selection.fisheye_offset)]
    views = []
    for camera, base in cameras:
        for k in range(selection.num_timesteps):
            offset = base + k
            views.append(View(camera, min(row + offset, num_rows - 1), offset))
    return views


# Named subsets of the standard 8 views (indices into the order above), used for encoder views everywhere.
VIEW_SUBSETS: dict[str, tuple[int, ...]] = {
    "mono": (0,),
    "mono_temporal": (0, 1),
    "stereo": (0, 2),
    "stereo_temporal": (0, 1, 2, 3),
    "stereo_fisheye": (0, 1, 2, 3, 4, 5, 6, 7),
    "all": (0, 1, 2, 3, 4, 5, 6, 7),
}


def view_subset(name: str) -> tuple[int, ...]:
    if name not in VIEW_SUBSETS:
        raise KeyError(f"unknown view subset {name!r}; expected one of {sorted(VIEW_SUBSETS)}")
    return VIEW_SUBSETS[name]
