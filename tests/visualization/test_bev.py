"""The bird's-eye free-height profile (docs/method.md §10) and the levelled frame it lives in."""

import pytest
import torch

from bts.export.grid import levelled_to_camera
from bts.geometry import invert_rigid, transform_points
from bts.visualization.bev import BevGrid, bev_points, bev_profile, colorize_profile, free_height
from bts.visualization.colormap import apply_magma


def test_free_height_hand_computed():
    sigma = torch.tensor([[[0.0, 0.0, 5.0, 5.0]]])
    assert free_height(sigma, torch.zeros_like(sigma, dtype=torch.bool), 8.0).item() == pytest.approx(0.75)
    # Out-of-frustum points count as sigma = 1: nine of them exceed the threshold 8 at the ninth slice.
    invalid = torch.ones(1, 1, 10, dtype=torch.bool)
    assert free_height(torch.zeros(1, 1, 10), invalid, 8.0).item() == pytest.approx(0.8)


def test_grid_layout_far_rows_first_and_slices_downwards():
    grid = BevGrid(x_range=(-2, 2), z_range=(10, 2), y_range=(0, 1), resolution=(4, 8), num_slices=5)
    pts = bev_points(grid)
    assert pts.shape == (4, 8, 5, 3)
    assert pts[0, 0, 0, 2] == pytest.approx(9.0) and pts[-1, 0, 0, 2] == pytest.approx(3.0)
    assert pts[0, 0, 0, 0] == pytest.approx(-1.75) and pts[0, -1, 0, 0] == pytest.approx(1.75)
    assert pts[0, 0, 0, 1] == pytest.approx(0.1) and pts[0, 0, -1, 1] == pytest.approx(0.9)


def levelled_density(fn, level_to_world):
    """A density defined on levelled coordinates, queried through world points (as a model is)."""
    world_to_level = invert_rigid(level_to_world)

    def density(points):
        level = transform_points(world_to_level, points)
        return fn(level), torch.zeros(level.shape[:-1], dtype=torch.bool)

    return density


def test_profile_of_a_level_floor_is_uniform_only_in_the_levelled_frame():
    """Solid below 0.375 m under the camera height: half of [0, 0.75] is free in every cell. The query goes through
    the pitched camera, so a wrong pitch sign or axis would make the value vary from row to row."""
    pitch = 5.0
    cam_to_world = torch.eye(4)
    level_to_world = cam_to_world @ levelled_to_camera(pitch)
    density = levelled_density(lambda p: (p[..., 1] > 0.375).float() * 100.0, level_to_world)
    grid = BevGrid(resolution=(12, 10), num_slices=16)
    profile = bev_profile(density, grid, level_to_world, chunk_points=500)
    assert profile.shape == (12, 10)
    torch.testing.assert_close(profile, torch.full((12, 10), 0.5))
    # Levelled with the wrong pitch sign, the floor is tilted by 10° and rises above the slices ahead.
    tilted = bev_profile(density, grid, cam_to_world @ levelled_to_camera(-pitch), chunk_points=500)
    assert tilted.max() < 0.1


def test_profile_image_scales_to_the_requested_height():
    profile = torch.linspace(0, 1, 8).repeat(4, 1)
    rgb = colorize_profile(profile, height=16)
    assert rgb.shape == (3, 16, 32)
    torch.testing.assert_close(rgb[:, 0, 0], apply_magma(torch.zeros(1, 1))[:, 0, 0])
    torch.testing.assert_close(rgb[:, 0, -1], apply_magma(torch.ones(1, 1))[:, 0, 0])
    assert rgb[:, 0, -1].sum() > rgb[:, 0, 0].sum()  # free (1) is bright
