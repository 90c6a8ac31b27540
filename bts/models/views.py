"""The named view subsets of the standard 8 views (docs/decisions.md §7), a convention of the models.

The indices refer to the fixed view order of a datapoint (docs/method.md §3.1): main perspective at t, t+1; other
perspective at t, t+1; main-side fisheye at t+o, t+o+1; other fisheye at t+o, t+o+1. The data layer that builds
that order (``datasets/kitti_360/frames.py``) re-exports these names.
"""

from __future__ import annotations

#: The fisheye views of the standard order (the rest, 0-3, are perspective).
FISHEYE_VIEWS: tuple[int, ...] = (4, 5, 6, 7)

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
