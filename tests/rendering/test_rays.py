import torch

from bts.geometry import MeiFisheyeCamera, PinholeCamera, invert_rigid, make_rigid, rotation_y, transform_points
from bts.rendering import (
    composite,
    distance_to_depth,
    expected_distance,
    image_rays,
    patch_rays,
    sample_distances,
    sample_patches,
    sample_points,
)

H, W = 12, 16


def _frames(batch=2, frames=3):
    gen = torch.Generator().manual_seed(0)
    k = torch.tensor([[1.2, 0.0, 0.05], [0.0, 3.6, -0.1], [0.0, 0.0, 1.0]], dtype=torch.float64)
    intrinsics = k.expand(batch, frames, 3, 3).clone()
    intrinsics[..., 0, 0] += torch.rand(batch, frames, generator=gen, dtype=torch.float64)
    poses = torch.stack([torch.stack([
        make_rigid(rotation_y(10.0 * f - 5.0 * b), torch.tensor([0.3 * f, 0.1 * b, 0.5 * f], dtype=torch.float64))
        for f in range(frames)]) for b in range(batch)])
    return intrinsics, poses


def _fisheye(batch, frames):
    cam = MeiFisheyeCamera.from_pixels(xi=2.2134, k1=0.0168, k2=1.6549, p1=0.0, p2=0.0, gamma1=1336.3 * W / 1400,
                                       gamma2=1335.8 * H / 1400, u0=716.9 * W / 1400, v0=705.8 * H / 1400,
                                       width=W, height=H)
    expand = lambda x: x.expand(batch, frames, *x.shape)
    return MeiFisheyeCamera(expand(cam.xi), expand(cam.k1), expand(cam.k2), expand(cam.p1), expand(cam.p2),
                            expand(cam.gamma), expand(cam.center))


def _reprojected_uv(camera, pose, origins, directions, distance=7.0):
    points = origins + distance * directions
    return camera.project(transform_points(invert_rigid(pose), points))


def test_patch_rays_pass_through_their_pixel_centres():
    intrinsics, poses = _frames()
    patches = sample_patches(6, 4, H, W, 3, torch.Generator().manual_seed(1), batch_size=2)
    rays = patch_rays(patches, PinholeCamera(intrinsics), poses)
    assert rays.origins.shape == rays.directions.shape == (2, 6 * 16, 3)
    assert torch.allclose(rays.directions.norm(dim=-1), torch.ones(2, 96, dtype=torch.float64))
    for b in range(2):
        for i in range(6):
            f = patches.frame[b, i]
            sl = slice(16 * i, 16 * (i + 1))
            camera = PinholeCamera(intrinsics[b, f])
            proj = _reprojected_uv(camera, poses[b, f], rays.origins[b, sl], rays.directions[b, sl])
            assert torch.allclose(proj.uv, patches.uv[b, i].double(), atol=1e-6)
            assert rays.valid[b, sl].all()
            assert torch.allclose(rays.origins[b, sl], poses[b, f, :3, 3].expand(16, 3))


def test_patch_rays_fisheye():
    _, poses = _frames()
    camera = _fisheye(2, 3)
    patches = sample_patches(40, 3, H, W, 3, torch.Generator().manual_seed(2), batch_size=2)
    rays = patch_rays(patches, camera, poses)
    # The corners of this small fisheye image lie beyond the lens's outermost ray.
    assert rays.valid.any() and not rays.valid.all()
    for b in range(2):
        for i in range(40):
            f = patches.frame[b, i]
            sl = slice(9 * i, 9 * (i + 1))
            single = MeiFisheyeCamera(camera.xi[b, f], camera.k1[b, f], camera.k2[b, f], camera.p1[b, f],
                                      camera.p2[b, f], camera.gamma[b, f], camera.center[b, f])
            proj = _reprojected_uv(single, poses[b, f], rays.origins[b, sl], rays.directions[b, sl])
            _, in_domain = single.unproject(patches.uv[b, i].double())
            assert torch.equal(rays.valid[b, sl], in_domain)
            ok = rays.valid[b, sl]
            assert torch.allclose(proj.uv[ok], patches.uv[b, i].double()[ok], atol=1e-6)


def test_image_rays_and_rendered_depth_of_a_wall():
    intrinsics, _ = _frames(batch=1, frames=1)
    rays = image_rays(intrinsics[:, 0], torch.eye(4, dtype=torch.float64)[None], H, W)
    assert rays.directions.shape == (1, H * W, 3) and rays.valid.all()
    # A wall at z = 10 in front of the camera: density is high behind it, zero before it.
    s = sample_distances(H * W, 512, 1.0, 40.0, jitter=False, batch_shape=(1,), dtype=torch.float64)
    points = sample_points(rays.origins, rays.directions, s)
    sigma = torch.where(points[..., 2] > 10.0, 50.0, 0.0).to(torch.float64)
    distance = expected_distance(composite(sigma, s).weights, s)
    depth = distance_to_depth(distance, rays.directions)
    # the first sample behind the wall terminates the ray; samples are about 0.2 m apart there
    assert (depth >= 10.0).all() and (depth < 10.25).all()
