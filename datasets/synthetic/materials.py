"""Per-pixel material labels of the synthetic city: the 2D labels of the encoder's pretraining task.

The paper starts its image encoder from ImageNet weights, which cannot be downloaded here. The stand-in is a 2D
task that the city can label without any depth or occupancy: the material of the surface each pixel sees (road,
sidewalk, facade, car body, cabin glass, foliage, ..., and sky), the same kind of knowledge a semantic-segmentation
or classification pretraining gives (``scripts/pretrain_encoder.py``). The labels come from the exact scene: a pixel's
ray is cast from the camera and the material of the first surface hit is looked up.

Classes: ``Material`` values ``0 .. len(Material) - 1`` and :data:`SKY` (nothing hit).
"""

from __future__ import annotations

import numpy as np
import torch
from jaxtyping import Float, Int64
from torch import Tensor

from datasets.synthetic.ground_truth import SyntheticScene
from datasets.synthetic.raycast import NO_HIT
from datasets.synthetic.render import GROUND_MATERIALS
from datasets.synthetic.scene import Material

SKY = len(Material)
NUM_CLASSES = SKY + 1
CLASS_NAMES = tuple(m.name.lower() for m in Material) + ("sky",)


def surface_materials(scene: SyntheticScene) -> Int64[Tensor, "S"]:
    """Material of every surface index the ray caster returns: the primitives in global order, then the three
    ground surfaces (road, raised ground, kerb faces)."""
    sets = scene.description.sets()
    return torch.cat([torch.from_numpy(ps.material).long() for ps in sets]
                     + [torch.tensor([int(m) for m in GROUND_MATERIALS])])


def pixel_rays(intrinsics: Float[Tensor, "3 3"], height: int, width: int) -> Float[Tensor, "HW 3"]:
    """Camera-frame ray directions (z = 1) through the pixel centres of an ``height x width`` image, for the
    project's normalised intrinsics (pixel ``i``'s centre at ``u = (2i + 1) / W - 1``), in row-major order."""
    k = intrinsics.double()
    v, u = torch.meshgrid((2.0 * torch.arange(height, dtype=torch.float64) + 1.0) / height - 1.0,
                          (2.0 * torch.arange(width, dtype=torch.float64) + 1.0) / width - 1.0, indexing="ij")
    x = (u - k[0, 2]) / k[0, 0]
    y = (v - k[1, 2]) / k[1, 1]
    return torch.stack([x, y, torch.ones_like(x)], dim=-1).reshape(-1, 3)


def material_image(scene: SyntheticScene, intrinsics: Float[Tensor, "3 3"], cam_to_world: np.ndarray | Tensor,
                   height: int, width: int, materials: Tensor | None = None) -> Int64[Tensor, "H W"]:
    """The material label of every pixel of a perspective camera with normalised ``intrinsics`` at the world pose
    ``cam_to_world`` ``[4, 4]`` (:data:`SKY` where the ray hits nothing). ``materials``: the scene's
    :func:`surface_materials`, passed in to avoid recomputing it per image."""
    pose = torch.as_tensor(np.asarray(cam_to_world), dtype=torch.float64)
    if pose.shape != (4, 4):
        raise ValueError(f"cam_to_world must be a 4x4 pose, got shape {tuple(pose.shape)}")
    table = surface_materials(scene) if materials is None else materials
    directions = pixel_rays(intrinsics, height, width) @ pose[:3, :3].T
    surface = scene.cast(pose[:3, 3], directions).surface
    labels = torch.full(surface.shape, SKY, dtype=torch.long)
    hit = surface != NO_HIT
    labels[hit] = table[surface[hit]]
    return labels.reshape(height, width)


__all__ = ["CLASS_NAMES", "NUM_CLASSES", "SKY", "material_image", "pixel_rays", "surface_materials"]
