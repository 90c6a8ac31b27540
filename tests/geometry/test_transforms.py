import torch

from bts.geometry import invert_rigid, make_rigid, relative_to, rotation_x, rotation_y, rotation_z, transform_points


def random_rigid(n: int, generator: torch.Generator) -> torch.Tensor:
    q = torch.randn(n, 4, generator=generator, dtype=torch.float64)
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    rot = torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(n, 3, 3)
    return make_rigid(rot, torch.randn(n, 3, generator=generator, dtype=torch.float64) * 10)


def test_invert_rigid_matches_general_inverse():
    t = random_rigid(8, torch.Generator().manual_seed(0))
    assert torch.allclose(invert_rigid(t), torch.linalg.inv(t), atol=1e-12)
    assert torch.allclose(invert_rigid(t) @ t, torch.eye(4, dtype=torch.float64).expand(8, 4, 4), atol=1e-12)


def test_transform_points_matches_homogeneous_product():
    g = torch.Generator().manual_seed(1)
    t = random_rigid(3, g)
    p = torch.randn(3, 5, 3, generator=g, dtype=torch.float64)
    homog = torch.cat([p, torch.ones(3, 5, 1, dtype=torch.float64)], -1)
    want = (homog @ t.transpose(-1, -2))[..., :3]
    assert torch.allclose(transform_points(t, p), want, atol=1e-12)


def test_relative_to_makes_reference_identity():
    t = random_rigid(4, torch.Generator().manual_seed(2))
    rel = relative_to(t[0], t)
    assert torch.allclose(rel[0], torch.eye(4, dtype=torch.float64), atol=1e-12)
    # relative poses preserve the relative motion between any two cameras
    assert torch.allclose(invert_rigid(rel[1]) @ rel[2], invert_rigid(t[1]) @ t[2], atol=1e-10)


def test_rotations_are_right_handed():
    # x -> y under +90 deg about z, y -> z about x, z -> x about y
    assert torch.allclose(rotation_z(90) @ torch.tensor([1.0, 0, 0], dtype=torch.float64),
                          torch.tensor([0.0, 1, 0], dtype=torch.float64), atol=1e-12)
    assert torch.allclose(rotation_x(90) @ torch.tensor([0.0, 1, 0], dtype=torch.float64),
                          torch.tensor([0.0, 0, 1], dtype=torch.float64), atol=1e-12)
    assert torch.allclose(rotation_y(90) @ torch.tensor([0.0, 0, 1], dtype=torch.float64),
                          torch.tensor([1.0, 0, 0], dtype=torch.float64), atol=1e-12)
