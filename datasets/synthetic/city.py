"""Procedural layout of one street: parked vehicles, kerb-side objects, front gardens, buildings with alleys.

World frame: z up, the street runs along +x from ``x = 0`` to ``x = length``, y points left. The cross-section
(|y|, from the street's centre line) follows a German residential street, the kind of street most of KITTI-360's
Karlsruhe suburbs are (the sources of every number are listed in the README, "The synthetic city"):

- a two-way carriageway of ``CARRIAGEWAY_WIDTH`` (drawn per street), with a parallel-parking lane of
  ``PARKING_LANE_WIDTH`` on both sides, so the road (kerb to kerb) is ``carriageway / 2 + PARKING_LANE_WIDTH``
  either side of the centre;
- parked vehicles on both sides: cars of three classes (hatchback, saloon, SUV), vans and small box trucks, with
  gaps, driveways and a few free stretches between them;
- a raised sidewalk of ``SIDEWALK_WIDTH`` with kerb-side trees, poles, waste bins and bollards;
- at the property line a hedge, a fence, a low wall or an open front garden, stretch by stretch;
- facades set back behind front gardens, a sparser back row of buildings behind them, and closing buildings across
  the street at both ends, so that every view is bounded.

The ego car drives right of the centre line (``EGO_LATERAL_Y``), so that with the papers' occupancy slice (x in
[-4, 4] m about the left camera) both parking lanes lie inside the scored area, and the slice's height (about 1.2 m
above the road) cuts car cabins, vans, trucks, bins and bollards. The layout keeps the ego car's lane
(``|y - EGO_LATERAL_Y|`` < about 1.2 m, up to 2.5 m high) free, so the car never drives through an object.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from datasets.synthetic.scene import Ground, Lighting, Material, SceneDescription, make_primitive_set

CARRIAGEWAY_WIDTH = (4.8, 5.5)   # m, drawn per street: the driving part between the two parking lanes
PARKING_LANE_WIDTH = 2.0         # m, parallel parking on both sides
KERB_HEIGHT = 0.15
SIDEWALK_WIDTH = 2.5
EGO_LATERAL_Y = -0.5             # y of the ego car's pose origin (its left camera): right of the centre line
END_MARGIN = 12.0  # the rows of buildings start and end this far beyond the street's ends

FACADE_COLORS = ((0.74, 0.64, 0.50), (0.62, 0.36, 0.28), (0.70, 0.70, 0.67), (0.55, 0.60, 0.66),
                 (0.80, 0.73, 0.55), (0.62, 0.52, 0.46), (0.78, 0.78, 0.74))
CAR_COLORS = ((0.70, 0.12, 0.10), (0.12, 0.22, 0.55), (0.75, 0.75, 0.75), (0.22, 0.22, 0.24),
              (0.86, 0.86, 0.84), (0.20, 0.40, 0.25), (0.80, 0.64, 0.20), (0.50, 0.52, 0.56))
VAN_COLORS = ((0.90, 0.90, 0.88), (0.78, 0.80, 0.82), (0.20, 0.30, 0.55), (0.85, 0.75, 0.20), (0.60, 0.10, 0.10))
SIGN_COLORS = ((0.75, 0.15, 0.12), (0.15, 0.30, 0.70), (0.85, 0.70, 0.15))
BIN_COLORS = ((0.15, 0.16, 0.17), (0.15, 0.35, 0.18), (0.55, 0.35, 0.15), (0.20, 0.30, 0.60), (0.80, 0.65, 0.15))
HEDGE_COLORS = ((0.18, 0.32, 0.12), (0.22, 0.36, 0.14), (0.16, 0.27, 0.11))
WALL_COLORS = ((0.72, 0.70, 0.66), (0.62, 0.42, 0.34), (0.80, 0.76, 0.68), (0.50, 0.50, 0.50))
FENCE_COLORS = ((0.45, 0.33, 0.22), (0.30, 0.32, 0.30), (0.85, 0.85, 0.82))
NO_STYLE = [0.0, 0.0, 0.0, 0.0]

Row = tuple[list[float], Material, list[float], list[float]]


@dataclass(frozen=True)
class VehicleClass:
    """Size ranges of one class of parked vehicle (metres): overall length, width, body top, and the cabin (glass
    house) on top of the body, or none for a box-shaped van or truck."""

    length: tuple[float, float]
    width: tuple[float, float]
    body_top: tuple[float, float]
    cabin_height: tuple[float, float] | None
    share: float  # of the parked vehicles
    colors: tuple


VEHICLES = {
    "hatchback": VehicleClass((3.8, 4.3), (1.70, 1.80), (0.95, 1.05), (0.42, 0.50), 0.36, CAR_COLORS),
    "saloon": VehicleClass((4.4, 4.9), (1.78, 1.86), (0.95, 1.05), (0.40, 0.48), 0.28, CAR_COLORS),
    "suv": VehicleClass((4.4, 4.8), (1.82, 1.92), (1.05, 1.20), (0.45, 0.55), 0.18, CAR_COLORS),
    "van": VehicleClass((4.9, 6.0), (1.90, 2.05), (1.95, 2.50), None, 0.14, VAN_COLORS),
    "truck": VehicleClass((5.8, 7.2), (2.10, 2.30), (2.60, 3.20), None, 0.04, VAN_COLORS),
}


class _Builder:
    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.rows: dict[str, list[Row]] = {"box": [], "cylinder": [], "sphere": []}

    def u(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def color(self, palette, jitter: float = 0.1) -> list[float]:
        base = np.asarray(palette[int(self.rng.integers(len(palette)))])
        return [float(c) for c in np.clip(base * self.rng.uniform(1 - jitter, 1 + jitter), 0.0, 1.0)]

    def box(self, lo, hi, material: Material, color, style=NO_STYLE) -> None:
        self.rows["box"].append(([float(v) for v in (*lo, *hi)], material, color, style))

    def side_box(self, side: int, x0: float, x1: float, y_near: float, y_far: float, z0: float, z1: float,
                 material: Material, color, style=NO_STYLE) -> None:
        """A box between ``|y| = y_near`` and ``|y| = y_far`` on one side of the street."""
        ys = sorted((side * y_near, side * y_far))
        self.box((x0, ys[0], z0), (x1, ys[1], z1), material, color, style)


@dataclass(frozen=True)
class Street:
    """The cross-section of one street (|y| from the centre line)."""

    road_half_width: float  # kerb line

    @property
    def property_line(self) -> float:
        return self.road_half_width + SIDEWALK_WIDTH


def _walk(b: _Builder, x0: float, x1: float, step: Callable[[], float], place: Callable[[float], float]) -> None:
    """Walk along x: ``place(x)`` puts something at ``x`` and returns its length; ``step()`` draws the gap."""
    x = x0 + step()
    while x < x1:
        x += place(x) + step()


def _building_row(b: _Builder, side: int, length: float, front: tuple[float, float], depth: tuple[float, float],
                  width: tuple[float, float], gap: tuple[float, float], gap_prob: float,
                  height: Callable[[], float]) -> None:
    def place(x: float) -> float:
        w = b.u(*width)
        y_front = b.u(*front)
        y_back = y_front + b.u(*depth)
        spacing = b.u(2.2, 3.4)
        style = [spacing, b.u(0.9, min(1.6, spacing - 0.7)), b.u(2.9, 3.6), x + b.u(0.0, spacing)]
        b.side_box(side, x, x + w, y_front, y_back, 0.0, height(), Material.FACADE, b.color(FACADE_COLORS), style)
        return w

    _walk(b, -END_MARGIN, length + END_MARGIN, lambda: b.u(*gap) if b.chance(gap_prob) else 0.0, place)


def _vehicle(b: _Builder, street: Street, x: float, side: int, kind: VehicleClass) -> float:
    """A parked vehicle from ``x`` along +x, a small gap from the kerb; returns its length."""
    length, width = b.u(*kind.length), b.u(*kind.width)
    inner = street.road_half_width - b.u(0.15, 0.35)  # |y| of its kerb-side flank
    outer = inner - width
    top = b.u(*kind.body_top)
    paint = b.color(kind.colors)
    if kind.cabin_height is None:  # a van or truck: one box, its cab (windows) at the end facing the traffic
        cab = (x + length - 1.6, x + length) if side < 0 else (x, x + 1.6)
        b.side_box(side, x, x + length, outer, inner, 0.3, top, Material.VAN_BODY, paint,
                   [b.u(1.1, 1.7), x + b.u(0.0, 1.0), *cab])
    else:
        b.side_box(side, x, x + length, outer, inner, 0.3, top, Material.CAR_BODY, paint)
    for wx in (x + 0.45, x + length - 1.15):
        b.side_box(side, wx, wx + 0.7, outer + 0.03, inner - 0.03, 0.0, 0.62, Material.TYRE, [0.08] * 3)
    if kind.cabin_height is not None:
        front, back = b.u(0.9, 1.3), b.u(0.5, 0.9)
        b.side_box(side, x + front, x + length - back, outer + 0.08, inner - 0.08, top, top + b.u(*kind.cabin_height),
                   Material.CAR_CABIN, paint)
    return length


def _parking_lane(b: _Builder, street: Street, side: int, length: float) -> list[tuple[float, float]]:
    """Parked vehicles along one side; returns the stretches (x0, x1) left free (driveways, gaps) on the kerb."""
    names = list(VEHICLES)
    shares = np.array([VEHICLES[n].share for n in names])
    occupancy = b.u(0.80, 0.95)  # share of the parking slots taken (residential streets are full)
    free: list[tuple[float, float]] = []

    def place(x: float) -> float:
        if b.chance(0.08):  # a driveway or entrance: no parking
            w = b.u(3.0, 5.0)
            free.append((x, x + w))
            return w
        if not b.chance(occupancy):
            w = b.u(4.5, 6.5)
            free.append((x, x + w))
            return w
        kind = VEHICLES[names[int(b.rng.choice(len(names), p=shares / shares.sum()))]]
        return _vehicle(b, street, x, side, kind)

    _walk(b, -END_MARGIN, length + END_MARGIN, lambda: b.u(0.5, 1.6), place)
    return free


def _tree(b: _Builder, street: Street, x: float, side: int) -> None:
    y = side * (street.road_half_width + 0.9)
    trunk_top, crown = b.u(2.4, 3.4), b.u(1.3, 2.1)
    b.rows["cylinder"].append(([x, y, 0.0, trunk_top + 0.5 * crown, b.u(0.13, 0.2)], Material.BARK,
                               b.color(((0.32, 0.23, 0.15),)), NO_STYLE))
    b.rows["sphere"].append(([x, y, trunk_top + 0.6 * crown, crown], Material.FOLIAGE,
                             b.color(((0.20, 0.34, 0.12), (0.26, 0.38, 0.14), (0.18, 0.28, 0.10))), NO_STYLE))


def _pole(b: _Builder, street: Street, x: float, side: int) -> None:
    y = side * (street.road_half_width + 0.35)
    b.rows["cylinder"].append(([x, y, 0.0, b.u(3.5, 7.0), b.u(0.06, 0.1)], Material.METAL, [0.5, 0.5, 0.52],
                               NO_STYLE))
    if b.chance(0.5):  # a sign facing the traffic on this side
        ys = y - side * 0.35
        b.box((x - 0.1, ys - 0.35, 2.2), (x - 0.06, ys + 0.35, 2.9), Material.SIGN, b.color(SIGN_COLORS, 0.05))


def _bins(b: _Builder, street: Street, x: float, side: int) -> float:
    """A row of one to four wheelie bins (EN 840 240 l: 0.58 x 0.73 x 1.07 m; 1100 l: 1.37 x 1.07 x 1.33 m) at the
    kerb, as on a collection day; returns the row's length."""
    near = street.road_half_width + b.u(0.15, 0.4)
    at = x
    for _ in range(int(b.rng.integers(1, 5))):
        large = b.chance(0.2)
        w, d, h = (b.u(1.25, 1.40), b.u(1.0, 1.1), b.u(1.28, 1.36)) if large else (
            b.u(0.55, 0.6), b.u(0.70, 0.75), b.u(1.05, 1.10))
        b.side_box(side, at, at + w, near, near + d, KERB_HEIGHT, KERB_HEIGHT + h, Material.BIN, b.color(BIN_COLORS))
        at += w + b.u(0.05, 0.3)
    return at - x


def _bollard(b: _Builder, street: Street, x: float, side: int) -> None:
    y = side * (street.road_half_width + 0.3)
    b.rows["cylinder"].append(([x, y, KERB_HEIGHT, KERB_HEIGHT + b.u(0.9, 1.25), b.u(0.06, 0.1)], Material.METAL,
                               b.color(((0.35, 0.35, 0.37), (0.60, 0.55, 0.20)), 0.05), NO_STYLE))


def _kerb_side(b: _Builder, street: Street, side: int, length: float, free: list[tuple[float, float]]) -> None:
    """Trees, poles, bins and bollards on the sidewalk near the kerb."""
    taken: list[tuple[float, float]] = []

    def clear(x0: float, x1: float) -> bool:
        return all(x1 + 0.8 < a or x0 - 0.8 > c for a, c in taken)

    def trees(x: float) -> float:
        if b.chance(0.6):
            _tree(b, street, x, side)
            taken.append((x - 0.3, x + 0.3))
        return 0.0

    _walk(b, -END_MARGIN, length + END_MARGIN, lambda: b.u(8.0, 18.0), trees)

    def poles(x: float) -> float:
        if clear(x - 1.5, x + 1.5):
            _pole(b, street, x, side)
            taken.append((x - 0.1, x + 0.1))
        return 0.0

    _walk(b, -END_MARGIN, length + END_MARGIN, lambda: b.u(14.0, 30.0), poles)

    def bins(x: float) -> float:
        if b.chance(0.7) and clear(x, x + 6.0):
            n = _bins(b, street, x, side)
            taken.append((x, x + n))
            return n
        return 0.0

    _walk(b, -END_MARGIN, length + END_MARGIN, lambda: b.u(6.0, 16.0), bins)
    for x0, x1 in free:  # bollards guard some driveways and free stretches
        if x1 - x0 > 2.0 and b.chance(0.4) and clear(x0, x1):
            for x in np.arange(x0 + 0.5, x1 - 0.3, b.u(1.2, 1.8)):
                _bollard(b, street, float(x), side)
            taken.append((x0, x1))


def _property_line(b: _Builder, street: Street, side: int, length: float) -> None:
    """Stretch by stretch along the back of the sidewalk: a hedge, a fence, a low wall or nothing (an open front
    garden or a driveway)."""
    y0 = street.property_line

    def place(x: float) -> float:
        w = b.u(4.0, 16.0)
        kind = b.rng.choice(4, p=[0.35, 0.2, 0.2, 0.25])
        if kind == 0:  # hedge: 1.0-1.8 m high, 0.5-1.0 m deep
            b.side_box(side, x, x + w, y0 + 0.1, y0 + 0.1 + b.u(0.5, 1.0), KERB_HEIGHT, KERB_HEIGHT + b.u(1.0, 1.8),
                       Material.HEDGE, b.color(HEDGE_COLORS))
        elif kind == 1:  # fence: 1.0-1.6 m high, a few centimetres thick
            b.side_box(side, x, x + w, y0 + 0.05, y0 + 0.05 + b.u(0.04, 0.08), KERB_HEIGHT,
                       KERB_HEIGHT + b.u(1.0, 1.6), Material.FENCE, b.color(FENCE_COLORS))
        elif kind == 2:  # garden wall: 0.6-1.6 m high, 0.2-0.3 m thick
            b.side_box(side, x, x + w, y0, y0 + b.u(0.2, 0.3), KERB_HEIGHT, KERB_HEIGHT + b.u(0.6, 1.6), Material.WALL,
                       b.color(WALL_COLORS))
        return w

    _walk(b, -END_MARGIN, length + END_MARGIN, lambda: b.u(0.0, 4.0) if b.chance(0.4) else 0.0, place)


def build_city(rng: np.random.Generator, length: float) -> SceneDescription:
    """A random street of ``length`` metres along +x."""
    b = _Builder(rng)
    street = Street(road_half_width=b.u(*CARRIAGEWAY_WIDTH) / 2 + PARKING_LANE_WIDTH)
    for side in (1, -1):
        setback = street.property_line
        _building_row(b, side, length, front=(setback + 1.5, setback + 6.0), depth=(8.0, 16.0), width=(8.0, 22.0),
                      gap=(2.5, 7.0), gap_prob=0.35,
                      height=lambda: b.u(7.0, 20.0) if b.chance(0.8) else b.u(4.0, 7.0))
        _building_row(b, side, length, front=(setback + 20.0, setback + 26.0), depth=(10.0, 20.0),
                      width=(12.0, 30.0), gap=(2.0, 8.0), gap_prob=0.5, height=lambda: b.u(8.0, 26.0))
        free = _parking_lane(b, street, side, length)
        _kerb_side(b, street, side, length, free)
        _property_line(b, street, side, length)
    for x in (-END_MARGIN - 16.0, length + END_MARGIN):
        style = [3.0, 1.4, 3.3, x]
        b.box((x, -50.0, 0.0), (x + 16.0, 50.0, 18.0), Material.FACADE, b.color(FACADE_COLORS), style)
    elevation, azimuth = math.radians(b.u(35.0, 60.0)), b.u(0.0, 2 * math.pi)
    sun = (math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth), math.sin(elevation))
    return SceneDescription(
        ground=Ground(street.road_half_width, KERB_HEIGHT, SIDEWALK_WIDTH, PARKING_LANE_WIDTH),
        lighting=Lighting(sun, ambient=0.5, diffuse=0.6),
        boxes=make_primitive_set("box", b.rows["box"]),
        cylinders=make_primitive_set("cylinder", b.rows["cylinder"]),
        spheres=make_primitive_set("sphere", b.rows["sphere"]),
    )
