"""How every evaluation reports: means over frames, ``results.json`` + ``per_frame.csv``, the printed table.

One writer for all three evaluations (occupancy, depth, novel views): ``results.json`` is strict JSON (NaN as
``null``, :mod:`bts.results`), ``per_frame.csv`` has one row per frame with a header, an empty cell where a value
is ``None`` and ``nan`` where a frame has no value (an occluded-space metric of a frame without occluded points).
The model is described in every results file by the same record (:meth:`bts.inference.LoadedModel.record`).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bts.results import write_json

RESULTS, PER_FRAME = "results.json", "per_frame.csv"


def mean_over_frames(rows: list[dict[str, Any]], keys: Sequence[str]) -> dict[str, float | None]:
    """Per-key mean over frames, skipping NaN and ``None`` values (a frame without ground truth has no metrics);
    ``None`` when no frame has a value."""
    out: dict[str, float | None] = {}
    for k in keys:
        values = [float(r[k]) for r in rows if r.get(k) is not None and not math.isnan(float(r[k]))]
        out[k] = sum(values) / len(values) if values else None
    return out


def write_results(out_dir: Path, summary: dict[str, Any], rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    """``results.json`` (the summary) and ``per_frame.csv`` (the ``columns`` of every row) in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / RESULTS, summary)
    with open(out_dir / PER_FRAME, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row[c] for c in columns])


def written(out_dir: Path) -> str:
    """The line every evaluation prints last."""
    return f"wrote {out_dir / RESULTS} and {out_dir / PER_FRAME}"


def cell(value: float | None, width: int = 10) -> str:
    """A right-aligned table cell with four decimals; ``n/a`` for ``None`` or NaN."""
    if value is None or math.isnan(value):
        return f"{'n/a':>{width}}"
    return f"{value:>{width}.4f}"


def metrics_table(title: str, metrics: dict[str, float | None], keys: Sequence[str]) -> str:
    """A title line and a two-line table of the metrics (``n/a`` where a metric is ``None``)."""
    header = "".join(f"{k:>10}" for k in keys)
    return "\n".join([title, header, "-" * len(header), "".join(cell(metrics.get(k)) for k in keys)])
