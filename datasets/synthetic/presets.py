"""Size presets of the synthetic city: image sizes, lidar resolution and the default tree size.

The perspective images keep the aspect of the real 1408x376 rectified images; the fisheyes are square like the real
1400x1400 ones. Every preset writes its sizes into the calibration files it produces (``S_rect_0X`` and the fisheye
YAML ``image_width``/``image_height``), so a reader never needs to know which preset made a tree.
"""

from __future__ import annotations

from dataclasses import dataclass

# The real KITTI-360 sequence names, in order; a tree holds the first ``sequences`` of them.
SEQUENCE_NAMES = tuple(
    f"2013_05_28_drive_{n:04d}_sync" for n in (0, 2, 3, 4, 5, 6, 7, 9, 10)
)

# Frames without a pose at the start of every sequence: images exist for frame ids 0..frames+1 and poses.txt
# starts at this id, as in the real data, so frame ids differ from pose-row indices.
UNPOSED_LEADING_FRAMES = 2


@dataclass(frozen=True)
class SizePreset:
    """Image sizes and the default number of sequences and posed frames of one preset."""

    name: str
    perspective_height: int
    perspective_width: int
    fisheye_size: int
    lidar_beams: int
    lidar_azimuths: int
    sequences: int
    frames: int


PRESETS: dict[str, SizePreset] = {
    # For the tests: a 2 x 14 tree in a few seconds.
    "tiny": SizePreset("tiny", 64, 240, 160, 64, 360, sequences=2, frames=14),
    # For the demo: 3 x 100 frames.
    "small": SizePreset("small", 96, 352, 192, 64, 512, sequences=3, frames=100),
    # For the reproduction.
    "default": SizePreset("default", 192, 704, 352, 64, 1024, sequences=9, frames=250),
}


def get_preset(name: str) -> SizePreset:
    if name not in PRESETS:
        raise ValueError(f"unknown synthetic city size {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]
