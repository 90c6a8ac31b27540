"""The scene description of one synthetic sequence: analytic primitives on a stepped ground, as JSON.

World frame: z up, the street runs along +x, y points left; metres. The ground is a step function of y: the road
surface is ``z = 0`` for ``|y| < road_half_width`` and everything else (sidewalks, verges, alleys) is raised by
``kerb_height``. Everything below the ground is solid. On top of it stand primitives:

- ``box``: axis-aligned, ``min``/``max`` corners (buildings, car parts, signs);
- ``cylinder``: vertical, centre ``(x, y)``, ``z0 < z1`` and ``radius`` (tree trunks, poles);
- ``sphere``: ``center`` and ``radius`` (tree crowns).

Each primitive carries a material, a base colour and four material-specific style numbers (window grid of a
facade, ...). Appearance never matters for occupancy, but it is stored so that the JSON fully describes the scene.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

SCENE_FORMAT_VERSION = 1
PARAM_COUNT = {"box": 6, "cylinder": 5, "sphere": 4}


class Material(enum.IntEnum):
    ROAD = 0
    SIDEWALK = 1
    KERB = 2
    FACADE = 3
    CAR_BODY = 4
    CAR_CABIN = 5
    TYRE = 6
    BARK = 7
    FOLIAGE = 8
    METAL = 9
    SIGN = 10
    HEDGE = 11
    FENCE = 12
    WALL = 13
    BIN = 14
    VAN_BODY = 15


@dataclass(frozen=True)
class Ground:
    """The stepped ground: road at z = 0 between the kerbs, everything else at ``kerb_height``."""

    road_half_width: float
    kerb_height: float
    sidewalk_width: float  # paved part beyond each kerb; further out the ground is a verge (appearance only)
    parking_width: float = 2.25  # parking lane inside each kerb (appearance only: where the lane line is painted)

    def height(self, y: Tensor) -> Tensor:
        return torch.where(y.abs() < self.road_half_width, torch.zeros_like(y), torch.full_like(y, self.kerb_height))


@dataclass(frozen=True)
class Lighting:
    """Fixed world lighting: Lambertian ``albedo * (ambient + diffuse * max(0, n . sun))``."""

    sun_direction: tuple[float, float, float]  # unit, pointing towards the sun
    ambient: float
    diffuse: float


@dataclass(frozen=True)
class PrimitiveSet:
    """All primitives of one kind: parameters ``[P, k]``, materials ``[P]``, colours ``[P, 3]``, styles ``[P, 4]``."""

    kind: str
    params: np.ndarray
    material: np.ndarray
    color: np.ndarray
    style: np.ndarray

    def __len__(self) -> int:
        return len(self.params)


@dataclass(frozen=True)
class SceneDescription:
    ground: Ground
    lighting: Lighting
    boxes: PrimitiveSet
    cylinders: PrimitiveSet
    spheres: PrimitiveSet

    def sets(self) -> tuple[PrimitiveSet, PrimitiveSet, PrimitiveSet]:
        """The primitive sets in the fixed order that defines global primitive indices."""
        return self.boxes, self.cylinders, self.spheres

    def to_json(self) -> dict:
        prims = []
        for ps in self.sets():
            for p, m, c, s in zip(ps.params, ps.material, ps.color, ps.style):
                prims.append({"type": ps.kind, "params": [float(x) for x in p],
                              "material": Material(int(m)).name.lower(),
                              "color": [float(x) for x in c], "style": [float(x) for x in s]})
        return {
            "format_version": SCENE_FORMAT_VERSION,
            "frame": "world: z up, street along +x, y left, metres",
            "ground": vars(self.ground),
            "lighting": {**vars(self.lighting), "sun_direction": list(self.lighting.sun_direction)},
            "param_layout": {"box": "min_x min_y min_z max_x max_y max_z", "cylinder": "x y z0 z1 radius",
                             "sphere": "x y z radius"},
            "primitives": prims,
        }

    @classmethod
    def from_json(cls, data: dict) -> SceneDescription:
        if data.get("format_version") != SCENE_FORMAT_VERSION:
            raise ValueError(f"unsupported scene format version {data.get('format_version')!r}")
        by_kind: dict[str, list[dict]] = {k: [] for k in PARAM_COUNT}
        for prim in data["primitives"]:
            by_kind[prim["type"]].append(prim)
        sets = {k: _primitive_set(k, v) for k, v in by_kind.items()}
        light = data["lighting"]
        return cls(Ground(**data["ground"]),
                   Lighting(tuple(light["sun_direction"]), light["ambient"], light["diffuse"]),
                   sets["box"], sets["cylinder"], sets["sphere"])

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> SceneDescription:
        return cls.from_json(json.loads(Path(path).read_text()))


def _primitive_set(kind: str, prims: list[dict]) -> PrimitiveSet:
    n = len(prims)
    params = np.array([p["params"] for p in prims], dtype=np.float64).reshape(n, PARAM_COUNT[kind])
    material = np.array([Material[p["material"].upper()] for p in prims], dtype=np.int64).reshape(n)
    color = np.array([p["color"] for p in prims], dtype=np.float64).reshape(n, 3)
    style = np.array([p["style"] for p in prims], dtype=np.float64).reshape(n, 4)
    return PrimitiveSet(kind, params, material, color, style)


def make_primitive_set(kind: str, rows: list[tuple[list[float], Material, list[float], list[float]]]) -> PrimitiveSet:
    """Build a set from rows ``(params, material, color, style)``."""
    return _primitive_set(kind, [{"params": p, "material": m.name, "color": c, "style": s} for p, m, c, s in rows])
