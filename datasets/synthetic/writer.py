"""Writing one synthetic sequence in the KITTI-360 layout, with its exact ground truth alongside.

Per sequence ``<seq>``:

- ``data_poses/<seq>/poses.txt`` (pose to world) and ``cam0_to_world.txt`` (rectified camera 0 to world, 16
  numbers per row), for frame ids ``2 .. frames + 1``; images exist from frame id 0, as in the real data;
- ``data_2d_raw/<seq>/image_00|01/data_rect/%010d.png`` (rectified), ``image_02|03/data_rgb/%010d.png``;
- ``data_3d_raw/<seq>/velodyne_points/data/%010d.bin``: float32 ``x, y, z, intensity`` in the velodyne frame,
  misses dropped, azimuth-major order;
- ``ground_truth/<seq>/scene.json`` and ``ground_truth/<seq>/depth/image_00|01/%010d.npy`` (float32 z-depth,
  ``inf`` where nothing is hit).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from datasets.kitti_360.calibration import Calibration
from datasets.kitti_360.poses import write_poses
from datasets.synthetic import rig
from datasets.synthetic.city import EGO_LATERAL_Y, build_city
from datasets.synthetic.occupancy import OccupancyTester
from datasets.synthetic.presets import UNPOSED_LEADING_FRAMES, SizePreset
from datasets.synthetic.render import Renderer, SensorRays, fisheye_rays, lidar_rays, pinhole_rays
from datasets.synthetic.scene import SceneDescription

START_X = 40.0  # where the drive starts along the street; the street continues AHEAD_MARGIN beyond its end
AHEAD_MARGIN = 150.0
PERSPECTIVE = ("image_00", "image_01")
FISHEYE = ("image_02", "image_03")


@dataclass(frozen=True)
class SensorRig:
    """Calibration and the per-sensor rays of a preset, shared by all sequences of a tree."""

    calibration: Calibration
    rays: dict[str, SensorRays]
    lidar_directions: torch.Tensor  # [beams, azimuths, 3], velodyne frame
    ray_z: dict[str, torch.Tensor]  # perspective cameras: [H, W] camera-frame z of each pixel's unit ray

    @classmethod
    def build(cls, preset: SizePreset) -> SensorRig:
        calib = rig.build_calibration(preset)
        rays = {cam: pinhole_rays(calib.p_rect["image_00"][:, :3], *calib.rect_size[cam]) for cam in PERSPECTIVE}
        rays.update({cam: fisheye_rays(calib.fisheye[cam]) for cam in FISHEYE})
        lidar = rig.lidar_directions(preset.lidar_beams, preset.lidar_azimuths)
        rays["velodyne"] = lidar_rays(lidar)
        return cls(calib, rays, lidar.float(), {cam: _z_of_unit_rays(rays[cam]) for cam in PERSPECTIVE})

    def sensor_to_pose(self, sensor: str) -> np.ndarray:
        if sensor == "velodyne":
            return self.calibration.velo_to_pose()
        return self.calibration.camera_to_pose(sensor)


def sequence_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, index]))


def sequence_layout(rng: np.random.Generator, num_frames: int) -> tuple[SceneDescription, np.ndarray]:
    """The street and the drive (pose-to-world ``[num_frames, 4, 4]``) of one sequence, drawn from ``rng`` in this
    order (the writer then draws the renderer's seed from the same generator)."""
    scene = build_city(rng, START_X + rig.travel_length(num_frames) + AHEAD_MARGIN)
    return scene, rig.trajectory(rng, num_frames, START_X, EGO_LATERAL_Y)


def frame_ids(frames: int) -> tuple[list[int], list[int]]:
    """All frame ids with images, and the posed ones."""
    all_ids = list(range(frames + UNPOSED_LEADING_FRAMES))
    return all_ids, all_ids[UNPOSED_LEADING_FRAMES:]


class SequenceWriter:
    """Builds the scene and trajectory of one sequence and writes its frames."""

    def __init__(self, root: Path, name: str, index: int, seed: int, frames: int, sensors: SensorRig):
        self.root, self.name, self.sensors = root, name, sensors
        rng = sequence_rng(seed, index)
        self.ids, self.posed_ids = frame_ids(frames)
        self.scene, self.poses = sequence_layout(rng, len(self.ids))
        self.renderer = Renderer(self.scene, int(rng.integers(2**31)))
        self._check_sensors_free()

    def _check_sensors_free(self) -> None:
        origins = [pose @ self.sensors.sensor_to_pose(s) for pose in self.poses for s in self.sensors.rays]
        points = torch.tensor(np.stack([m[:3, 3] for m in origins]))
        if OccupancyTester(self.scene)(points).any():
            raise RuntimeError(f"{self.name}: a sensor lies inside the scene geometry (layout bug)")

    def write_static(self) -> None:
        """Scene description and poses."""
        self.scene.save(self.root / "ground_truth" / self.name / "scene.json")
        posed = self.poses[UNPOSED_LEADING_FRAMES:]
        pose_dir = self.root / "data_poses" / self.name
        write_poses(pose_dir / "poses.txt", self.posed_ids, posed)
        cam0 = posed @ self.sensors.calibration.rect_cam_to_pose("image_00")
        (pose_dir / "cam0_to_world.txt").write_text("".join(
            f"{f} " + " ".join(f"{x:.12e}" for x in m.reshape(-1)) + "\n" for f, m in zip(self.posed_ids, cam0)))

    def write_frame(self, row: int) -> None:
        frame, pose = self.ids[row], self.poses[row]
        raw = self.root / "data_2d_raw" / self.name
        for cam in PERSPECTIVE + FISHEYE:
            rays = self.sensors.rays[cam]
            out = self.renderer.render(rays, pose @ self.sensors.sensor_to_pose(cam))
            folder = "data_rect" if cam in PERSPECTIVE else "data_rgb"
            _write_png(raw / cam / folder / f"{frame:010d}.png", out.rgb)
            if cam in PERSPECTIVE:
                z = out.distance * self.sensors.ray_z[cam]
                _save(self.root / "ground_truth" / self.name / "depth" / cam / f"{frame:010d}.npy",
                      z.numpy().astype(np.float32))
        scan = self.renderer.render(self.sensors.rays["velodyne"], pose @ self.sensors.sensor_to_pose("velodyne"),
                                    rig.LIDAR_MAX_RANGE)
        points = _lidar_points(scan.distance, scan.albedo, self.sensors.lidar_directions)
        path = self.root / "data_3d_raw" / self.name / "velodyne_points" / "data" / f"{frame:010d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        points.tofile(path)


def _z_of_unit_rays(rays: SensorRays) -> torch.Tensor:
    """The camera-frame z of every pixel's unit ray, as an image: distance times this is the z-depth."""
    z = torch.zeros(rays.height * rays.width)
    keep = rays.pixel >= 0
    z[rays.pixel[keep]] = rays.directions[..., 2][keep]
    return z.reshape(rays.height, rays.width)


def _lidar_points(distance: torch.Tensor, albedo: torch.Tensor, directions: torch.Tensor) -> np.ndarray:
    """float32 ``[N, 4]`` points of a scan image ``[beams, azimuths]``, azimuth-major; intensity from albedo."""
    hit = torch.isfinite(distance).T
    xyz = (directions * distance[..., None]).transpose(0, 1)[hit]
    intensity = 0.1 + 0.8 * albedo.mean(-1).T[hit]
    return torch.cat([xyz, intensity[:, None]], dim=-1).numpy().astype(np.float32)


def _write_png(path: Path, rgb: torch.Tensor) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = (rgb.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).numpy()
    Image.fromarray(np.ascontiguousarray(pixels), mode="RGB").save(path, format="PNG")


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array)
