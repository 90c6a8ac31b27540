"""Multi-view photometric consistency of the synthetic city (docs/decisions.md §10).

Surface points seen by image_00 at frame t (from its exact depth) are projected, through the calibration and poses
read back from the files, into another camera and frame; where that camera sees the same point cleanly, the
bilinearly sampled colour must match: median mean-abs RGB difference <= 0.03 and 95th percentile <= 0.10.
"""

from __future__ import annotations

import pytest
import torch

from tests.synthetic.helpers import SEQUENCE, Tree, reprojection_errors, summary, surface_points

SOURCE_FRAMES = (2, 3)  # the first posed frame ids: two source views, so that enough points are seen past the
                       # parked vehicles that hide much of the street from the side fisheyes
SOURCE_FRAME = SOURCE_FRAMES[0]
MIN_POINTS = 1000
MAX_MEDIAN, MAX_P95 = 0.03, 0.10


@pytest.fixture(scope="module")
def source(synthetic_root):
    tree = Tree(synthetic_root, SEQUENCE)
    points, colours, _ = surface_points(tree, "image_00", SOURCE_FRAME)
    return tree, points, colours


@pytest.fixture(scope="module")
def sources(synthetic_root, source):
    tree = source[0]
    more = [surface_points(tree, "image_00", f)[:2] for f in SOURCE_FRAMES[1:]]
    return tree, [(source[1], source[2], SOURCE_FRAME), *((p, c, f) for (p, c), f in zip(more, SOURCE_FRAMES[1:]))]


@pytest.mark.parametrize(("camera", "offset"), [
    ("image_01", 0),  # stereo partner, same time
    ("image_00", 1),  # same camera, next frame
    ("image_02", 8),  # left fisheye, later (it sees from the side what image_00 saw ahead)
    ("image_03", 8),
    ("image_02", 11),
    ("image_03", 11),
])
def test_surface_points_have_the_same_colour_in_other_views(sources, camera, offset):
    tree, views = sources
    n, median, p95 = summary(torch.cat([reprojection_errors(tree, points, colours, camera, frame + offset)
                                        for points, colours, frame in views]))
    assert n >= MIN_POINTS, f"only {n} points of image_00 are seen cleanly by {camera}"
    assert median <= MAX_MEDIAN and p95 <= MAX_P95, f"{camera} +{offset}: median {median:.4f}, p95 {p95:.4f}"


@pytest.mark.parametrize(("camera", "offset"), [("image_00", 1), ("image_02", 8)])
def test_a_one_frame_pose_error_fails_the_check(source, camera, offset):
    """The check has power: the same comparison with the pose of the following frame fails it."""
    tree, points, colours = source
    frame = SOURCE_FRAME + offset
    n, median, p95 = summary(reprojection_errors(tree, points, colours, camera, frame, pose_frame=frame + 1))
    assert n >= MIN_POINTS
    assert median > MAX_MEDIAN or p95 > MAX_P95, f"median {median:.4f}, p95 {p95:.4f}"
