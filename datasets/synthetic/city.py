"""Procedural layout of one street: buildings with alleys, a back row seen through them, parked cars, trees, poles.

World frame: z up, the street runs along +x from ``x = 0`` to ``x = length``, y points left. Cross-section (|y|):
the road to ``ROAD_HALF_WIDTH`` (two driving lanes and two parking lanes), then a raised sidewalk of
``SIDEWALK_WIDTH`` with trees and poles near the kerb, then facades set back by a random amount, and a sparser back
row of buildings behind them. Closing buildings across the street at both ends bound every view. The layout keeps
the driving lane (``|y - DRIVING_LANE_Y|`` < about 1.5 m, up to 2.5 m high) free, so the car never drives through
an object.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from datasets.synthetic.scene import Ground, Lighting, Material, SceneDescription, make_primitive_set

ROAD_HALF_WIDTH = 5.75
KERB_HEIGHT = 0.15
SIDEWALK_WIDTH = 3.25
DRIVING_LANE_Y = -1.75  # right-hand traffic along +x
END_MARGIN = 12.0  # the rows of buildings start and end this far beyond the street's ends

FACADE_COLORS = ((0.74, 0.64, 0.50), (0.62, 0.36, 0.28), (0.70, 0.70, 0.67), (0.55, 0.60, 0.66),
                 (0.80, 0.73, 0.55), (0.62, 0.52, 0.46), (0.78, 0.78, 0.74))
CAR_COLORS = ((0.70, 0.12, 0.10), (0.12, 0.22, 0.55), (0.75, 0.75, 0.75), (0.22, 0.22, 0.24),
              (0.86, 0.86, 0.84), (0.20, 0.40, 0.25), (0.80, 0.64, 0.20), (0.50, 0.52, 0.56))
SIGN_COLORS = ((0.75, 0.15, 0.12), (0.15, 0.30, 0.70), (0.85, 0.70, 0.15))
NO_STYLE = [0.0, 0.0, 0.0, 0.0]

Row = tuple[list[float], Material, list[float], list[float]]


class _Builder:
    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.rows: dict[str, list[Row]] = {"box": [], "cylinder": [], "sphere": []}

    def u(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def color(self, palette, jitter: float = 0.1) -> list[float]:
        base = np.asarray(palette[int(self.rng.integers(len(palette)))])
        return [float(c) for c in np.clip(base * self.rng.uniform(1 - jitter, 1 + jitter), 0.0, 1.0)]

    def box(self, lo, hi, material: Material, color, style=NO_STYLE) -> None:
        self.rows["box"].append(([float(v) for v in (*lo, *hi)], material, color, style))


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
        ys = sorted((side * y_front, side * y_back))
        b.box((x, ys[0], 0.0), (x + w, ys[1], height()), Material.FACADE, b.color(FACADE_COLORS), style)
        return w

    _walk(b, -END_MARGIN, length + END_MARGIN, lambda: b.u(*gap) if b.rng.random() < gap_prob else 0.0, place)


def _car(b: _Builder, x: float, side: int) -> float:
    length, width, top = b.u(3.9, 4.8), b.u(1.7, 1.9), b.u(0.95, 1.15)
    y = side * (ROAD_HALF_WIDTH - 1.1)
    paint = b.color(CAR_COLORS)
    b.box((x, y - width / 2, 0.3), (x + length, y + width / 2, top), Material.CAR_BODY, paint)
    for wx in (x + 0.45, x + length - 1.15):
        b.box((wx, y - width / 2 + 0.03, 0.0), (wx + 0.7, y + width / 2 - 0.03, 0.62), Material.TYRE, [0.08] * 3)
    front, back = b.u(0.9, 1.3), b.u(0.6, 1.1)
    b.box((x + front, y - width / 2 + 0.1, top), (x + length - back, y + width / 2 - 0.1, top + b.u(0.42, 0.55)),
          Material.CAR_CABIN, paint)
    return length


def _tree(b: _Builder, x: float, side: int) -> None:
    y = side * (ROAD_HALF_WIDTH + 0.9)
    trunk_top, crown = b.u(2.4, 3.4), b.u(1.3, 2.1)
    b.rows["cylinder"].append(([x, y, 0.0, trunk_top + 0.5 * crown, b.u(0.13, 0.2)], Material.BARK,
                               b.color(((0.32, 0.23, 0.15),)), NO_STYLE))
    b.rows["sphere"].append(([x, y, trunk_top + 0.6 * crown, crown], Material.FOLIAGE,
                             b.color(((0.20, 0.34, 0.12), (0.26, 0.38, 0.14), (0.18, 0.28, 0.10))), NO_STYLE))


def _pole(b: _Builder, x: float, side: int) -> None:
    y = side * (ROAD_HALF_WIDTH + 0.35)
    b.rows["cylinder"].append(([x, y, 0.0, b.u(3.5, 7.0), b.u(0.06, 0.1)], Material.METAL, [0.5, 0.5, 0.52],
                               NO_STYLE))
    if b.rng.random() < 0.5:  # a sign facing the traffic on this side
        ys = y - side * 0.35
        b.box((x - 0.1, ys - 0.35, 2.2), (x - 0.06, ys + 0.35, 2.9), Material.SIGN, b.color(SIGN_COLORS, 0.05))


def _street_furniture(b: _Builder, side: int, length: float) -> None:
    def cars(x: float) -> float:
        return _car(b, x, side) if b.rng.random() < 0.7 else b.u(3.0, 8.0)

    _walk(b, -END_MARGIN, length + END_MARGIN, lambda: b.u(0.8, 3.0), cars)
    taken: list[float] = []

    def trees(x: float) -> float:
        if b.rng.random() < 0.6:
            _tree(b, x, side)
            taken.append(x)
        return 0.0

    _walk(b, -END_MARGIN, length + END_MARGIN, lambda: b.u(8.0, 18.0), trees)

    def poles(x: float) -> float:
        if all(abs(x - t) > 2.5 for t in taken):
            _pole(b, x, side)
        return 0.0

    _walk(b, -END_MARGIN, length + END_MARGIN, lambda: b.u(14.0, 30.0), poles)


def build_city(rng: np.random.Generator, length: float) -> SceneDescription:
    """A random street of ``length`` metres along +x."""
    b = _Builder(rng)
    inner = ROAD_HALF_WIDTH + SIDEWALK_WIDTH
    for side in (1, -1):
        _building_row(b, side, length, front=(inner, inner + 3.5), depth=(8.0, 16.0), width=(8.0, 22.0),
                      gap=(2.5, 7.0), gap_prob=0.35,
                      height=lambda: b.u(7.0, 20.0) if b.rng.random() < 0.8 else b.u(4.0, 7.0))
        _building_row(b, side, length, front=(24.0, 30.0), depth=(10.0, 20.0), width=(12.0, 30.0),
                      gap=(2.0, 8.0), gap_prob=0.5, height=lambda: b.u(8.0, 26.0))
        _street_furniture(b, side, length)
    for x in (-END_MARGIN - 16.0, length + END_MARGIN):
        style = [3.0, 1.4, 3.3, x]
        b.box((x, -50.0, 0.0), (x + 16.0, 50.0, 18.0), Material.FACADE, b.color(FACADE_COLORS), style)
    elevation, azimuth = math.radians(b.u(35.0, 60.0)), b.u(0.0, 2 * math.pi)
    sun = (math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth), math.sin(elevation))
    return SceneDescription(
        ground=Ground(ROAD_HALF_WIDTH, KERB_HEIGHT, SIDEWALK_WIDTH),
        lighting=Lighting(sun, ambient=0.5, diffuse=0.6),
        boxes=make_primitive_set("box", b.rows["box"]),
        cylinders=make_primitive_set("cylinder", b.rows["cylinder"]),
        spheres=make_primitive_set("sphere", b.rows["sphere"]),
    )
