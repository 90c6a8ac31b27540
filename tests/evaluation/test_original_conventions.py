"""The original evaluator's conventions (issue 15, items 2 and 4): where the rays of a depth image pass, how the
depth image is read back, and the float32 chain of the original ``protocol=bts`` (``protocol.numerics=original``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from bts.fields import DensityOutput, EncodedViews
from bts.inference import LoadedModel
from bts.rendering.pixels import image_uv
from bts.rendering.renderer import RendererConfig, render_depth
from datasets.kitti_360 import Kitti360Config, Kitti360Dataset
from datasets.kitti_360.frames import FrameSelection
from evaluation.depth import predict_depth
from evaluation.protocols import (BtsProtocol, DepthMap, Frame, GridParams, build_protocol, original_chain_float32,
                                  original_level_float32, visible_from_depth)

H, W = 4, 20
U_EDGE = 0.5          # the occluder's edge, in normalised image coordinates: between the rays of pixels 14 and 15
NEAR_Z, FAR_Z, QUERY_Z = 5.0, 30.0, 12.0
INTRINSICS = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # normalised: u = x / z


def wedge_density(points: torch.Tensor):
    """A wall 5-5.5 m ahead that covers the image left of ``u = 0.5`` (its edge lies along a camera ray), and solid
    space beyond 30 m: every ray ends at about 5 m or at about 30 m, by which side of the edge it passes."""
    x, z = points[..., 0], points[..., 2]
    u = x / z.clamp(min=1e-6)
    near = (z >= NEAR_Z) & (z <= NEAR_Z + 0.5) & (u < U_EDGE)
    sigma = torch.where(near | (z >= FAR_Z), torch.full_like(z, 1000.0), torch.zeros_like(z))
    return sigma, torch.zeros_like(z, dtype=torch.bool)


def render(ray_positions: str) -> torch.Tensor:
    config = RendererConfig(near=3.0, far=80.0, num_samples=64)
    return render_depth(wedge_density, INTRINSICS[None], torch.eye(4)[None], H, W, config,
                        ray_positions=ray_positions)[0]


def ray_u(ray_positions: str) -> torch.Tensor:
    x = torch.arange(W, dtype=torch.float32)
    return (2 * x + 1) / W - 1 if ray_positions == "centres" else 2 * x / (W - 1) - 1


QUERY_U = torch.linspace(-0.95, 0.95, 381)
QUERY = torch.stack([QUERY_U * QUERY_Z, torch.zeros_like(QUERY_U), torch.full_like(QUERY_U, QUERY_Z)], dim=-1)


def expected_visible(ray_positions: str) -> torch.Tensor:
    """By hand: a point is seen when the ray nearest to its projection passes right of the edge (ends at 30 m)."""
    nearest = (QUERY_U[:, None] - ray_u(ray_positions)[None]).abs().argmin(dim=1)
    return ray_u(ray_positions)[nearest] > U_EDGE


def test_image_uv_puts_the_rays_at_the_pixel_centres_or_at_the_originals_linspace():
    centres = image_uv(3, 5).view(3, 5, 2)
    assert torch.allclose(centres[0, :, 0], torch.tensor([-0.8, -0.4, 0.0, 0.4, 0.8]))
    original = image_uv(3, 5, ray_positions="align_corners").view(3, 5, 2)
    assert torch.allclose(original[0, :, 0], torch.linspace(-1, 1, 5))
    assert torch.allclose(original[:, 0, 1], torch.linspace(-1, 1, 3))
    with pytest.raises(ValueError, match="ray_positions.*centres"):
        image_uv(3, 5, ray_positions="corners")


def test_each_convention_reads_its_depth_image_back_where_it_was_rendered():
    seen = {}
    for convention in ("centres", "align_corners"):
        depth = render(convention)
        # The render itself: pixels left of the edge end on the wall, the others on the far space.
        assert torch.equal(depth[0] < QUERY_Z, ray_u(convention) < U_EDGE)
        seen[convention] = visible_from_depth(QUERY, DepthMap(depth, convention), INTRINSICS)
        assert torch.equal(seen[convention], expected_visible(convention)), convention
    # The two conventions disagree on the points between their rays near the edge: that is the frame the issue
    # describes (the original's visibility differs from a centres render's on such points).
    flips = (seen["centres"] != seen["align_corners"]).sum().item()
    assert flips > 0
    # Rendered through the centres but read back at the original's positions (the project's old lookup): wrong on
    # exactly those points.
    mixed = visible_from_depth(QUERY, DepthMap(render("centres"), "align_corners"), INTRINSICS)
    assert (mixed != expected_visible("centres")).sum().item() > 0


def test_a_depth_map_names_a_known_convention():
    with pytest.raises(ValueError, match="ray_positions"):
        DepthMap(torch.zeros(2, 2), "corners")


class _Wedge(nn.Module):
    """A 'model' whose field is :func:`wedge_density` in the input camera's frame (it keeps the model contract of
    bts/models/contract.py, with feature-less encoded views)."""

    kind = "bts"

    def __init__(self):
        super().__init__()
        self._dummy = nn.Parameter(torch.zeros(1))

    def encoder_views(self, num_views, training):
        return [0]

    def encode(self, images, intrinsics, cam_to_world, views, flip=False):
        return EncodedViews.create(torch.zeros(images.shape[0], len(views), 1, 1, 1), intrinsics[:, views],
                                   cam_to_world[:, views])

    def density(self, points, encoded):
        sigma, invalid = wedge_density(points)
        return DensityOutput(sigma, sigma, invalid)

    def density_fn(self, encoded):
        return wedge_density


def _loaded(rays: str | None) -> LoadedModel:
    config = {} if rays is None else {"imported": {"conventions": {"rays": rays, "intrinsics": "corner"}}}
    return LoadedModel(_Wedge(), "bts", config, Path("released.pt"),
                       source_format="project" if rays is None else "original")


def test_imported_models_render_depth_the_originals_way():
    assert _loaded(None).ray_positions == "centres"
    assert _loaded("align_corners").ray_positions == "align_corners"
    with pytest.raises(ValueError, match=r"released\.pt.*conventions\.rays"):
        _ = _loaded("pixel_corners").ray_positions
    item = {"images": torch.zeros(1, 3, H, W), "intrinsics": INTRINSICS[None], "cam_to_world": torch.eye(4)[None]}
    config = RendererConfig(near=3.0, far=80.0, num_samples=64)
    ours = predict_depth(_loaded(None), item, config)
    imported = predict_depth(_loaded("align_corners"), item, config)
    assert torch.equal(ours, render("centres")) and torch.equal(imported, render("align_corners"))
    assert not torch.equal(ours, imported)  # pixel 14's ray passes left of the edge only at the original's position


def test_removed_and_unknown_protocol_keys_are_named():
    with pytest.raises(ValueError, match="depth_lookup_align_corners.*removed"):
        build_protocol("bts", {"depth_lookup_align_corners": True})
    with pytest.raises(ValueError, match="numerics.*float64.*original.*'float32'"):
        build_protocol("bts", {"numerics": "float32"})
    assert "float32" in build_protocol("bts", {"numerics": "original"}).describe_numerics()
    assert GridParams().numerics == "float64"


def test_the_original_levelling_matrix_is_written_with_seven_decimals():
    m = original_level_float32(5.0)
    assert m.dtype == torch.float32
    assert m[1, 1].item() == pytest.approx(0.9961947, abs=1e-7) and m[1, 2].item() == pytest.approx(0.0871557, abs=1e-7)
    assert m[2, 1].item() == -m[1, 2].item()


# --- the original's float32 chain at world coordinates of a few km -----------------------------------------------

SHIFT = np.array([3000.0, 1500.0, 20.0])  # KITTI-360's world coordinates are kilometres from the origin


def _shifted_city(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest)
    for poses in (dest / "data_poses").glob("*/poses.txt"):
        lines = []
        for line in poses.read_text().splitlines():
            values = line.split()
            for i, offset in zip((4, 8, 12), SHIFT):
                values[i] = repr(float(values[i]) + float(offset))
            lines.append(" ".join(values))
        poses.write_text("\n".join(lines) + "\n")
    return dest


def _frame(root: Path) -> Frame:
    cfg = Kitti360Config(image_size=(32, 120), frames=FrameSelection(num_timesteps=1, stereo=False, fisheye=False))
    ds = Kitti360Dataset(root, root / "splits" / "test_files.txt", cfg)
    return Frame(ds, 0, ds[0])


def _reference_float32(frame: Frame, rows) -> torch.Tensor:
    """The original's chain written out here from its code's order of operations: the dataset reads poses and
    calibration as float32 and chains them in numpy; the evaluator inverts the absolute camera-to-world pose of the
    input view with torch in float32, levels it with its 7-decimal matrix and multiplies each scan's pose in."""
    calib, f32 = frame.dataset.calibration, np.float32
    poses = frame.dataset.poses[frame.sequence].pose_to_world.astype(f32)

    def homogeneous(r):
        out = np.eye(4, dtype=f32)
        out[:3, :3] = r
        return out

    rect00_to_pose = calib.cam_to_pose["image_00"].astype(f32) @ np.linalg.inv(homogeneous(calib.r_rect["image_00"]))
    velo_to_pose = rect00_to_pose @ (homogeneous(calib.r_rect["image_00"])
                                     @ np.linalg.inv(calib.cam_to_velo.astype(f32)))
    world_from_cam = torch.from_numpy(poses[frame.row] @ rect00_to_pose)
    c, s = 0.9961947, 0.0871557
    level = torch.tensor([[1, 0, 0, 0], [0, c, s, 0], [0, -s, c, 0], [0, 0, 0, 1]], dtype=torch.float32)
    level_from_world = level @ torch.inverse(world_from_cam)
    return torch.stack([level_from_world @ torch.from_numpy(poses[r]) @ torch.from_numpy(velo_to_pose)
                        for r in rows])


def test_original_numerics_emulate_the_float32_chain_far_from_the_origin(synthetic_root, tmp_path):
    far_root = _shifted_city(synthetic_root, tmp_path / "far")
    near, far = _frame(synthetic_root), _frame(far_root)
    protocol = BtsProtocol({"num_scans": 6})
    rows = protocol.scan_rows(far)
    assert far.item["cameras"][0] == 0  # the left perspective camera, whose chain the reference writes out

    # float64: the levelled frame is relative to the input view, so moving the world changes nothing.
    assert torch.allclose(protocol.level_from_lidar(near, rows), protocol.level_from_lidar(far, rows), atol=1e-9)

    errors = {}
    for name, frame in (("near", near), ("far", far)):
        level_from_cam, lidar = original_chain_float32(frame, 5.0, rows)
        assert lidar.dtype == torch.float32 and lidar.shape == (len(rows), 4, 4)
        assert torch.equal(lidar, _reference_float32(frame, rows))  # the original's own float32 values, bit for bit
        errors[name] = (lidar.double() - protocol.level_from_lidar(frame, rows)).abs()[:, :3, 3].max().item()
        rotation = level_from_cam[:3, :3].double()
        assert torch.allclose(rotation, protocol.level_from_cam[:3, :3], atol=1e-5)
    # At kilometres from the origin float32 carries ~2e-4 m per coordinate: the chain is off by that much, as the
    # original's is, and far more than near the origin.
    assert 2e-5 < errors["far"] < 2e-3 and errors["far"] > 3 * errors["near"], errors

    original = BtsProtocol({"num_scans": 6, "numerics": "original"})
    points = {n: original.points_cam(far) for n in ("a", "b")}
    assert torch.equal(points["a"], points["b"])
    offset = (points["a"].double() - protocol.points_cam().double()).abs().max().item()
    assert 1e-6 < offset < 2e-3
    with pytest.raises(ValueError, match="pass the frame"):
        original.points_cam()

    # The ground truth through the float32 chain: the same up to the few query points on a bin edge.
    exact64, exact32 = protocol.ground_truth(far), original.ground_truth(far)
    disagree = (exact64["occupied"] != exact32["occupied"]).float().mean().item()
    assert disagree < 0.01
    assert torch.equal(protocol.ground_truth(near)["occupied"], exact64["occupied"])
