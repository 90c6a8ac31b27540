import torch

from bts.geometry import (
    MeiFisheyeCamera,
    PinholeCamera,
    make_rigid,
    pixels_to_normalized,
    rotation_x,
    rotation_y,
    transform_points,
)
from bts.rendering import sample_colours, sample_colours_pinhole

B, F, H, W = 2, 3, 6, 8
DT = torch.float64


def _scene():
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(B, F, 3, H, W, generator=gen, dtype=DT)
    k = torch.tensor([[1.5, 0.0, 0.1], [0.0, 2.0, -0.05], [0.0, 0.0, 1.0]], dtype=DT)
    intrinsics = k.expand(B, F, 3, 3).clone()
    intrinsics[:, :, 0, 0] += torch.arange(F, dtype=DT) * 0.1
    poses = torch.stack([torch.stack([
        make_rigid(rotation_y(7.0 * f + 3.0 * b) @ rotation_x(-2.0 * f), torch.tensor([0.4 * f, -0.1 * b, f], dtype=DT))
        for f in range(F)]) for b in range(B)])
    return images, intrinsics, poses


def _pixels(num=5, seed=1):
    gen = torch.Generator().manual_seed(seed)
    cols = torch.randint(0, W, (num,), generator=gen)
    rows = torch.randint(0, H, (num,), generator=gen)
    return rows, cols, pixels_to_normalized(torch.stack([cols, rows], -1).to(DT), W, H)


def _check_pixel_colours(images, colours, rows, cols):
    m = rows.numel()
    for b in range(B):
        for f in range(F):
            got = colours[b, f, f * m:(f + 1) * m]
            assert torch.allclose(got, images[b, f, :, rows, cols].T, atol=1e-9), (b, f)


def test_pinhole_point_on_a_pixel_gets_that_pixels_colour():
    images, intrinsics, poses = _scene()
    rows, cols, uv = _pixels()
    # For every frame f: points through pixel centres of f at various depths, in world coordinates.
    depth = torch.linspace(2.0, 30.0, rows.numel(), dtype=DT)[:, None]
    cam_points = PinholeCamera(intrinsics).unproject(uv.expand(B, F, -1, -1)) * depth  # [B, F, M, 3]
    points = transform_points(poses, cam_points).reshape(B, F * rows.numel(), 3)
    out = sample_colours_pinhole(points, images, intrinsics, poses)
    assert out.colours.shape == (B, F, F * rows.numel(), 3) and out.invalid.shape == (B, F, F * rows.numel())
    _check_pixel_colours(images, out.colours, rows, cols)
    for f in range(F):
        assert not out.invalid[:, f, f * rows.numel():(f + 1) * rows.numel()].any()


def _fisheye():
    size = 20  # a small square fisheye image scaled from the real 1400x1400 image_02
    cam = MeiFisheyeCamera.from_pixels(xi=2.2134, k1=0.0168, k2=1.6549, p1=0.0, p2=0.0, gamma1=1336.3 * size / 1400,
                                       gamma2=1335.8 * size / 1400, u0=716.9 * size / 1400, v0=705.8 * size / 1400,
                                       width=size, height=size)
    e = lambda x: x.expand(B, F, *x.shape)
    return MeiFisheyeCamera(e(cam.xi), e(cam.k1), e(cam.k2), e(cam.p1), e(cam.p2), e(cam.gamma), e(cam.center)), size


def test_fisheye_point_on_a_pixel_gets_that_pixels_colour():
    _, _, poses = _scene()
    camera, size = _fisheye()
    images = torch.rand(B, F, 3, size, size, generator=torch.Generator().manual_seed(3), dtype=DT)
    rows = torch.tensor([10, 0, 19, 4, 12])
    cols = torch.tensor([10, 9, 10, 15, 2])
    uv = pixels_to_normalized(torch.stack([cols, rows], -1).to(DT), size, size)
    dirs, in_domain = camera.unproject(uv.expand(B, F, -1, -1))
    assert in_domain.all()
    points = transform_points(poses, dirs * 6.0).reshape(B, F * 5, 3)
    out = sample_colours(points, images, camera, poses)
    for b in range(B):
        for f in range(F):
            assert torch.allclose(out.colours[b, f, f * 5:(f + 1) * 5], images[b, f, :, rows, cols].T, atol=1e-6)
            assert not out.invalid[b, f, f * 5:(f + 1) * 5].any()


def test_pinhole_invalid_flags():
    images, intrinsics, _ = _scene()
    identity = torch.eye(4, dtype=DT).expand(B, F, 4, 4)
    k = intrinsics[0, 0]
    inside = torch.tensor([0.0, 0.0, 5.0], dtype=DT)
    behind = torch.tensor([0.0, 0.0, -5.0], dtype=DT)
    grazing = torch.tensor([0.0, 0.0, 5e-4], dtype=DT)  # in front, but closer than the 1e-3 cut-off
    # v at the centre of row 2, so that the border colour is a single texel
    y = ((2 * 2 + 1) / H - 1.0 - k[1, 2]) / k[1, 1] * 5.0
    # just outside the right image edge: u = fx x / z + cx = 1 + 1e-3
    right = torch.tensor([(1.001 - k[0, 2]) / k[0, 0] * 5.0, y, 5.0], dtype=DT)
    # just inside the right edge: u = 1 - 1e-3, inside the frustum
    edge = torch.tensor([(0.999 - k[0, 2]) / k[0, 0] * 5.0, y, 5.0], dtype=DT)
    points = torch.stack([inside, behind, grazing, right, edge]).expand(B, 5, 3)
    out = sample_colours_pinhole(points, images, intrinsics[:, :1].expand(B, F, 3, 3), identity)
    assert out.invalid[0, 0].tolist() == [False, True, True, True, False]
    # border padding: beyond the last pixel centre the colour is clamped to the edge pixel
    assert torch.allclose(out.colours[0, 0, 3], images[0, 0, :, 2, W - 1], atol=1e-9)
    assert torch.allclose(out.colours[0, 0, 4], images[0, 0, :, 2, W - 1], atol=1e-9)


def test_fisheye_invalid_behind_the_fold():
    camera, size = _fisheye()
    images = torch.rand(B, F, 3, size, size, dtype=DT)
    identity = torch.eye(4, dtype=DT).expand(B, F, 4, 4)
    # On the axis; 100 deg off-axis (beyond the image edge); 165 deg off-axis, which folds back into the image.
    angles = torch.tensor([0.0, 100.0, 165.0], dtype=DT).deg2rad()
    points = (5.0 * torch.stack([angles.sin(), torch.zeros_like(angles), angles.cos()], -1)).expand(B, 3, 3)
    out = sample_colours(points, images, camera, identity)
    assert out.invalid[0, 0].tolist() == [False, True, True]
    single = MeiFisheyeCamera(*(getattr(camera, n)[0, 0] for n in ("xi", "k1", "k2", "p1", "p2", "gamma", "center")))
    assert (single.project(points[0]).uv[2].abs() <= 1.0).all()  # the fold, not the image bounds, rejects it
    assert torch.isfinite(out.colours).all()
