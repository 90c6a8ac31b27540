"""Figures and videos: depth colouring, bird's-eye profiles, camera trajectories, novel-view frames, video writing.

Modules: ``colormap`` (magma colouring), ``bev`` (the free-height profile of docs/method.md §10), ``trajectories``
(camera paths and their file format), ``render`` (depth and colour of a novel view), ``inputs`` (own images and their
intrinsics), ``frames`` (the frames of each video kind), ``video`` (MP4 / PNG writing) and ``benchmark``.
"""

from bts.visualization.colormap import apply_magma, colorize_depth

__all__ = ["apply_magma", "colorize_depth"]
