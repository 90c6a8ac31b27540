import numpy as np
import pytest
import torch

from bts.geometry import (
    MeiFisheyeCamera,
    PinholeCamera,
    camera_rays,
    denormalize_intrinsics,
    make_rigid,
    normalize_intrinsics,
    normalized_to_pixels,
    pixel_grid,
    pixels_to_normalized,
    rotation_z,
)

# The public KITTI-360 rectified perspective calibration (1408x376).
K360 = torch.tensor([[552.554261, 0.0, 682.049453], [0.0, 552.554261, 238.769549], [0.0, 0.0, 1.0]],
                    dtype=torch.float64)
# Real image_02 / image_03 parameters (docs/decisions.md §6), with p1, p2 for the tangential option.
FISHEYES = {
    "image_02": dict(xi=2.2134047507854890, k1=1.6798235660113681e-02, k2=1.6548773243373522,
                     p1=4.2223943394772046e-04, p2=4.2462134260997584e-04, gamma1=1336.3220825849971,
                     gamma2=1335.7883350012958, u0=716.94323510126321, v0=705.76498308221585),
    "image_03": dict(xi=2.5535139132482758, k1=4.9370396274089505e-02, k2=4.5068455478645308,
                     p1=1.3477698472982495e-03, p2=-7.0340482615055284e-04, gamma1=1485.4456689948240,
                     gamma2=1484.9250892720163, u0=698.93748472166692, v0=698.86524751525311),
}


def fisheye(name, apply_tangential=False):
    return MeiFisheyeCamera.from_pixels(**FISHEYES[name], width=1400, height=1400,
                                        apply_tangential=apply_tangential)


def test_pixel_convention_centres():
    # pixel 0 centre sits half a pixel inside the left edge, the last one half a pixel inside the right edge
    uv = pixels_to_normalized(torch.tensor([[0.0, 0.0], [639.0, 191.0]]), 640, 192)
    assert torch.allclose(uv, torch.tensor([[-1 + 1 / 640, -1 + 1 / 192], [1 - 1 / 640, 1 - 1 / 192]]))
    assert torch.allclose(normalized_to_pixels(uv, 640, 192), torch.tensor([[0.0, 0.0], [639.0, 191.0]]),
                          atol=1e-4)
    grid = pixel_grid(192, 640)
    assert grid.shape == (192, 640, 2)
    assert torch.allclose(grid[5, 7], pixels_to_normalized(torch.tensor([7.0, 5.0]), 640, 192))


def test_normalized_intrinsics_match_pixel_projection():
    kn = normalize_intrinsics(K360, 1408, 376)
    assert torch.allclose(denormalize_intrinsics(kn, 1408, 376), K360, atol=1e-9)
    p = torch.tensor([[1.0, -0.5, 10.0], [-3.0, 1.0, 7.0]], dtype=torch.float64)
    proj = PinholeCamera(kn).project(p)
    pix = (p @ K360.T)[:, :2] / p[:, 2:]
    assert torch.allclose(normalized_to_pixels(proj.uv, 1408, 376), pix, atol=1e-9)
    # resolution independence: the same K_n gives the matching pixel at 192x640
    k_small = denormalize_intrinsics(kn, 640, 192)
    pix_small = (p @ k_small.T)[:, :2] / p[:, 2:]
    assert torch.allclose(normalized_to_pixels(proj.uv, 640, 192), pix_small, atol=1e-9)


def test_corner_convention_is_the_original_mapping():
    kn = normalize_intrinsics(K360, 1408, 376, convention="corner")
    assert kn[0, 0].item() == pytest.approx(2 * 552.554261 / 1408)
    assert kn[0, 2].item() == pytest.approx(2 * 682.049453 / 1408 - 1)
    assert kn[1, 2].item() == pytest.approx(2 * 238.769549 / 376 - 1)


def test_pinhole_round_trip_and_validity():
    cam = PinholeCamera(normalize_intrinsics(K360, 1408, 376))
    uv = torch.rand(1000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    depth = torch.rand(1000, dtype=torch.float64) * 70 + 3
    points = cam.unproject(uv) * depth[:, None]
    proj = cam.project(points)
    assert torch.allclose(proj.uv, uv, atol=1e-12)
    assert torch.allclose(proj.depth, depth)
    assert proj.valid.all()
    behind = cam.project(torch.tensor([[0.0, 0.0, -5.0], [100.0, 0.0, 1.0]], dtype=torch.float64))
    assert not behind.valid.any()
    assert torch.isfinite(behind.uv).all()


def test_pinhole_batched_intrinsics_broadcast():
    kn = normalize_intrinsics(K360, 1408, 376)
    ks = torch.stack([kn, kn * torch.tensor([[2.0], [1.0], [1.0]], dtype=torch.float64)])
    points = torch.tensor([[[1.0, 0.5, 10.0]], [[1.0, 0.5, 10.0]]], dtype=torch.float64)
    proj = PinholeCamera(ks).project(points)
    assert proj.uv.shape == (2, 1, 2)
    assert not torch.allclose(proj.uv[0], proj.uv[1])


@pytest.mark.parametrize("name", ["image_02", "image_03"])
@pytest.mark.parametrize("tangential", [False, True])
def test_fisheye_round_trip(name, tangential):
    cam = fisheye(name, tangential)
    g = torch.Generator().manual_seed(3)
    # directions across the whole field of view, including beyond 90 degrees from the axis
    d = torch.randn(5000, 3, dtype=torch.float64, generator=g)
    d = d / d.norm(dim=-1, keepdim=True)
    proj = cam.project(d * 7.0)
    assert proj.valid.float().mean() > 0.4
    dirs, ok = cam.unproject(proj.uv[proj.valid])
    assert ok.all()
    assert torch.allclose(dirs, d[proj.valid], atol=1e-9)
    assert torch.allclose(proj.depth, torch.full_like(proj.depth, 7.0))
    # and in the other direction, from image points to rays and back
    uv = torch.rand(2000, 2, dtype=torch.float64, generator=g) * 1.6 - 0.8
    dirs, ok = cam.unproject(uv)
    again = cam.project(dirs[ok])
    assert torch.allclose(again.uv, uv[ok], atol=1e-9)


def _devkit_fisheye(params):
    """The official devkit's fisheye camera, built without its files (the reference of the test)."""
    project = pytest.importorskip("kitti360scripts.helpers.project")
    cam = object.__new__(project.CameraFisheye)
    cam.fi = {
        "mirror_parameters": {"xi": params["xi"]},
        "distortion_parameters": {k: params[k] for k in ("k1", "k2", "p1", "p2")},
        "projection_parameters": {k: params[k] for k in ("gamma1", "gamma2", "u0", "v0")},
    }
    return cam


@pytest.mark.parametrize("name", ["image_02", "image_03"])
def test_fisheye_agrees_with_official_devkit(name):
    devkit = _devkit_fisheye(FISHEYES[name])
    cam = fisheye(name)
    rng = np.random.default_rng(4)
    d = rng.normal(size=(20000, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    points = d * rng.uniform(0.5, 80.0, size=(20000, 1))
    proj = cam.project(torch.from_numpy(points))
    valid = proj.valid.numpy()
    assert valid.sum() > 5000  # points across the whole image, well beyond a pinhole's field of view
    angles = np.degrees(np.arccos(d[valid, 2]))
    assert angles.max() > 95
    ours = normalized_to_pixels(proj.uv, 1400, 1400).numpy()[valid]
    u, v, _ = devkit.cam2image(points[valid].T.copy())
    theirs = np.stack([u, v], axis=-1)
    assert np.abs(ours - theirs).max() < 1e-3


def test_fisheye_intrinsics_are_resolution_independent():
    a = fisheye("image_02")
    p = FISHEYES["image_02"]
    half = MeiFisheyeCamera.from_pixels(**{**p, "gamma1": p["gamma1"] / 2, "gamma2": p["gamma2"] / 2,
                                           "u0": (p["u0"] + 0.5) / 2 - 0.5, "v0": (p["v0"] + 0.5) / 2 - 0.5},
                                        width=700, height=700)
    assert torch.allclose(a.gamma, half.gamma) and torch.allclose(a.center, half.center)


def test_camera_rays():
    kn = normalize_intrinsics(K360, 1408, 376)
    c2w = make_rigid(rotation_z(30), torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    uv = pixel_grid(4, 5, dtype=torch.float64).reshape(-1, 2)
    origins, dirs, valid = camera_rays(PinholeCamera(kn), uv, c2w)
    assert valid.all()
    assert torch.allclose(dirs.norm(dim=-1), torch.ones(20, dtype=torch.float64))
    assert torch.allclose(origins, c2w[:3, 3].expand(20, 3))
    # a point along each ray projects back onto its pixel
    pts_world = origins + 12.0 * dirs
    pts_cam = (pts_world - c2w[:3, 3]) @ c2w[:3, :3]
    assert torch.allclose(PinholeCamera(kn).project(pts_cam).uv, uv, atol=1e-10)
    _, zdirs, _ = camera_rays(PinholeCamera(kn), uv, torch.eye(4, dtype=torch.float64), normalize=False)
    assert torch.allclose(zdirs[:, 2], torch.ones(20, dtype=torch.float64))
    fo, fd, fvalid = camera_rays(fisheye("image_02"), uv, c2w)
    assert torch.allclose(fd.norm(dim=-1), torch.ones(20, dtype=torch.float64))
    assert not fvalid[0] and fvalid[12]  # the corner lies beyond the lens' outermost ray, the centre does not
