"""Export of the predicted scene: PLY, bit-packed voxels, meshes, and an exported exact scene against the truth."""

import math

import numpy as np
import pytest
import torch

from bts.export import VoxelGridSpec, export_grid, occupancy_grid, occupied_points
from bts.export.grid import OccupancyGrid, levelled_to_camera
from bts.export.mesh import marching_cubes_mesh, read_obj, write_mesh
from bts.export.ply import read_ply, write_ply
from bts.export.voxels import pack_bits, read_packed, unpack_bits, write_packed


@pytest.mark.parametrize("binary", [True, False])
def test_ply_round_trip(tmp_path, binary):
    rng = np.random.default_rng(0)
    points = rng.normal(size=(50, 3)).astype(np.float32)
    colours = rng.integers(0, 256, size=(50, 3), dtype=np.uint8)
    path = write_ply(tmp_path / "cloud.ply", points, colours, binary=binary)
    header = path.read_bytes().split(b"end_header")[0].decode()
    assert "element vertex 50" in header and ("binary_little_endian" if binary else "ascii") in header
    back = read_ply(path)
    np.testing.assert_allclose(back.points, points, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(back.colours, colours)
    assert back.faces is None


def test_ply_rejects_bad_shapes(tmp_path):
    with pytest.raises(ValueError, match=r"\[N, 3\]"):
        write_ply(tmp_path / "x.ply", np.zeros((4, 2)))
    with pytest.raises(ValueError, match="face indices"):
        write_ply(tmp_path / "x.ply", np.zeros((3, 3)), faces=np.array([[0, 1, 3]]))


def test_packbits_order_and_round_trip(tmp_path):
    grid = np.zeros((256, 256, 32), dtype=bool)
    grid[0, 0, 0] = True  # first cell: the most significant bit of the first byte
    grid[0, 0, 15] = True  # the up axis varies fastest: byte 1, least significant bit
    packed = pack_bits(grid)
    assert packed.shape == (256 * 256 * 32 // 8,) and packed[0] == 0b1000_0000 and packed[1] == 0b0000_0001
    rng = np.random.default_rng(1)
    random = rng.random((256, 256, 32)) > 0.7
    path = write_packed(tmp_path / "000000.bin", random)
    assert path.stat().st_size == 262_144  # the SemanticKITTI file size
    np.testing.assert_array_equal(read_packed(path), random)
    # The format SemanticKITTI's own reader decodes (MSB first, C order): np.unpackbits.
    np.testing.assert_array_equal(np.unpackbits(np.fromfile(path, dtype=np.uint8)).reshape(256, 256, 32), random)
    with pytest.raises(ValueError, match=str(tmp_path / "000000.bin")):
        read_packed(path, shape=(256, 256, 16))
    np.testing.assert_array_equal(unpack_bits(pack_bits(random[:3, :5, :7]), (3, 5, 7)), random[:3, :5, :7])


def sphere_grid(radius: float = 1.0) -> OccupancyGrid:
    """A density falling off from the grid centre (the camera), 0.5 at ``radius``."""
    spec = VoxelGridSpec((24, 24, 24), 0.125, (-1.5, -1.5, -1.5))
    axes = [spec.axis_centres(a) for a in range(3)]
    f, l_, u = torch.meshgrid(*axes, indexing="ij")
    sigma = 2.0 * torch.exp(-(f ** 2 + l_ ** 2 + u ** 2) / radius ** 2 * math.log(4))
    return OccupancyGrid(spec, sigma, torch.zeros_like(sigma, dtype=torch.bool), sigma > 0.5)


def test_marching_cubes_sphere_with_outward_normals(tmp_path):
    vertices, faces = marching_cubes_mesh(sphere_grid(), threshold=0.5)
    assert len(vertices) > 100 and len(faces) > 100
    radius = np.linalg.norm(vertices, axis=1)
    assert np.abs(radius - 1.0).max() < 0.06
    tri = vertices[faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    assert (np.einsum("ij,ij->i", normals, tri.mean(axis=1)) > 0).mean() > 0.99
    for name in ("mesh.obj", "mesh.ply"):
        path = write_mesh(tmp_path / name, vertices, faces)
        v, f = read_obj(path) if name.endswith(".obj") else (read_ply(path).points, read_ply(path).faces)
        assert v.shape == vertices.shape and f.shape == faces.shape
        np.testing.assert_array_equal(f, faces)
        np.testing.assert_allclose(v, vertices, atol=1e-4)
    with pytest.raises(ValueError, match=r"\.obj or \.ply"):
        write_mesh(tmp_path / "mesh.stl", vertices, faces)


def test_out_of_frustum_cells_are_free_and_flagged():
    def density(points):  # dense everywhere; "outside the frustum" to the left of the camera
        return torch.full(points.shape[:-1], 10.0), points[..., 0] < 0

    spec = VoxelGridSpec((4, 6, 2), 1.0, (1.0, -3.0, -1.0))
    grid = occupancy_grid(density, spec, torch.eye(4), threshold=0.5)
    left = spec.axis_centres(1) > 0  # left of the camera: levelled x < 0
    assert grid.invalid[:, left].all() and not grid.occupied[:, left].any()
    assert grid.occupied[:, ~left].all() and not grid.invalid[:, ~left].any()


def fle_to_world(fle: np.ndarray, world_from_view0: torch.Tensor, pitch_deg: float) -> torch.Tensor:
    """(forward, left, up) of the levelled frame to world coordinates, written out independently of bts.export."""
    a = math.radians(pitch_deg)
    levelled = np.stack([-fle[:, 1], -fle[:, 2], fle[:, 0]], axis=1)
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    cam = levelled @ rx.T
    w = world_from_view0.numpy()
    return torch.from_numpy(cam @ w[:3, :3].T + w[:3, 3]).float()


def test_exported_exact_scene_matches_the_scene(tmp_path, exact_scene):
    view, model, scene, _ = exact_scene
    spec = VoxelGridSpec((48, 40, 16), 0.5, (2.0, -10.0, -3.0))
    grid = occupancy_grid(model.density_fn(None), spec, view.level_to_world(5.0), threshold=0.5)
    written = export_grid(grid, tmp_path / "scene", ["ply", "npy", "bin"], threshold=0.5)

    index = np.stack(np.meshgrid(*[np.arange(n) for n in spec.shape], indexing="ij"), axis=-1).reshape(-1, 3)
    fle = np.asarray(spec.origin) + (index + 0.5) * spec.voxel_size
    truth = scene.occupied(fle_to_world(fle, view.world_from_view0, 5.0)).numpy().reshape(spec.shape)
    assert 0.05 < truth.mean() < 0.95
    np.testing.assert_array_equal(read_packed(written["bin"], spec.shape), truth)
    stored = np.load(written["npy"])
    assert stored.dtype == np.uint8 and stored.shape == spec.shape
    np.testing.assert_array_equal(stored == 1, truth)
    cloud = read_ply(written["ply"])
    assert len(cloud.points) == truth.sum()
    np.testing.assert_allclose(cloud.points, occupied_points(grid)[0], atol=1e-5)
    world = fle_to_world(np.stack([cloud.points[:, 2], -cloud.points[:, 0], -cloud.points[:, 1]], 1),
                         view.world_from_view0, 5.0)
    assert scene.occupied(world).all()
    # Levelled means level: on the road 5-15 m ahead, solid below the road surface 1.58 m under the camera, free
    # from 1.2 m under it up to the camera height.
    forward, left, up = (spec.axis_centres(a).numpy() for a in range(3))
    road = np.ix_((forward > 5) & (forward < 15), np.abs(left) < 1.0)
    assert truth[road][..., up < -1.9].mean() > 0.95 and truth[road][..., (up > -1.2) & (up < 0)].mean() < 0.05


def test_levelled_to_camera_is_a_pitch_down():
    ahead = levelled_to_camera(5.0) @ torch.tensor([0.0, 0.0, 1.0, 1.0])
    assert ahead[1] < 0  # a level point ahead appears above the optical axis of a camera pitched down
