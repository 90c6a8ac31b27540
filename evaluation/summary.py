"""One table from several ``results.json`` files of ``evaluation/occupancy.py``.

    python -m evaluation.summary outputs/eval_occupancy/*/results.json [--markdown]

Each row is one model scored under one protocol (the ``exact`` protocol's files give an ``exact`` and a ``bts`` row),
named by its run folder and checkpoint, with the data it was evaluated on (dataset, split, input size).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

COLUMNS = ("o_acc", "ie_acc", "ie_rec", "o_prec", "o_rec", "ie_prec")


def run_and_checkpoint(checkpoint: str) -> str:
    """``<run>/<checkpoint>`` of a checkpoint path ``.../<run>/checkpoints/<name>.pt`` (else the file's name)."""
    path = Path(checkpoint)
    run = path.parent.parent.name if path.parent.name == "checkpoints" else path.parent.name
    return f"{run}/{path.stem}" if run else path.stem


def data_of(result: dict[str, Any]) -> str:
    """The data a result was computed on: dataset name, split, image size."""
    data = result.get("data", {})
    size = data.get("image_size")
    return " ".join(str(x) for x in (data.get("name", "?"), data.get("split", "?"),
                                     "x".join(map(str, size)) if size else None) if x)


def rows_of(result: dict[str, Any], name: str | None = None) -> list[dict[str, Any]]:
    model = result["model"]
    prediction = model["prediction"]
    if model.get("prediction_margin") is not None:
        prediction += f"+{model['prediction_margin']:g}m"
    label = name or model["description"] + ("" if prediction == "density" else f" ({prediction})")
    source = run_and_checkpoint(model["checkpoint"]) if prediction == "density" else "(no model)"
    return [{"model": label, "run": source, "data": data_of(result), "scored_as": group, "frames": result["frames"],
             **values} for group, values in result["metrics"].items() if group != "lidar_vs_exact"]


def format_table(rows: list[dict[str, Any]], markdown: bool = False) -> str:
    def cell(v: Any) -> str:
        return "n/a" if isinstance(v, float) and math.isnan(v) else (f"{v:.3f}" if isinstance(v, float) else str(v))

    head = ["model", "run / checkpoint", "data", "scored as", *[c.upper() for c in COLUMNS], "frames"]
    body = [[r["model"], r.get("run", ""), r.get("data", ""), r["scored_as"],
             *[cell(r.get(c, math.nan)) for c in COLUMNS], str(r["frames"])] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body])
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    fmt = lambda r: "  ".join(x.ljust(w) if i < 4 else x.rjust(w) for i, (x, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([fmt(head), "-" * len(fmt(head))] + [fmt(r) for r in body])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="+", type=Path, help="results.json files of evaluation/occupancy.py")
    p.add_argument("--markdown", action="store_true")
    a = p.parse_args(argv)
    rows, protocols = [], set()
    for path in a.results:
        if not path.is_file():
            raise SystemExit(f"error: {path} does not exist (run evaluation/occupancy.py first)")
        result = json.loads(path.read_text())
        protocols.add(result["protocol"]["protocol"])
        rows += rows_of(result)
    print(f"occupancy, protocol(s): {', '.join(sorted(protocols))} ('scored as' names the ground truth used)")
    print(format_table(rows, a.markdown))


if __name__ == "__main__":
    main()
