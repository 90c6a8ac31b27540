"""Compare two models point by point on the same frames: ``python -m evaluation.compare A B [--names a b]``.

``A`` and ``B`` are output folders (or ``predictions.npz`` files) of ``evaluation/occupancy.py protocol=exact
save_predictions=true`` on the same frames. The comparison uses the exact truth of the synthetic city and its
model-independent visibility (ray-cast from the input camera), so both models are judged on the same occluded
points, unlike the ``bts`` protocol whose occluded set depends on each model's own depth.

It answers the questions docs/decisions.md §11 asks when KDBTS does not beat BTS:

- is the teacher better than BTS where BTS is wrong? (``A = BTS, B = MVBTS``): of the occluded points A gets wrong,
  the fraction B gets right, split into occupied and empty truth, and the reverse;
- does the student fit the teacher? (``A = MVBTS teacher, B = KDBTS student``): how often their occupancy decisions
  agree, how much of the teacher's occupancy the student reproduces, and the distillation loss itself (L1 between
  densities clipped as in training) on the evaluation points.

Per model it also reports two threshold-free or threshold-checking numbers: ``occluded_auc`` (does the density rank
occluded occupied points above occluded empty ones?) and, at the *seen surface* (occupied points next to a visible
point), the fraction marked occupied and the median density there (is the field sharp enough for ``sigma > 0.5``
where the input view shows the object?).

Where ``B`` was evaluated with ``trust_masks=true`` (an MVBTS teacher), each selective-distillation mask it holds
(``trust_<name>``, :mod:`bts.losses.trust`) is scored on the occluded points as a predictor of "B is right"
(:func:`score_mask`): its coverage, the AUC, and the net gain of B over A on the points it keeps, against a random
mask of the same coverage (which keeps that share of the total gain, in expectation) and the oracle mask (B right
and A wrong: the most any mask can transfer). Where it also holds ``exact_seen_by`` (``protocol=exact``), the
comparison is split by region (:data:`REGIONS`: visible from the input view; occluded from it but observed by
another encoded view in the exact scene; observed by none): how often B is right where A is wrong, and wrong where A
is right, in each. With ``A = BTS``, ``B = the MVBTS teacher`` this is the ceiling of what distillation can transfer.
Where ``A`` holds the masks (``A = the teacher``, ``B = its student``), the accuracy of both on the occluded points
outside each mask (where the teacher is unsure) says whether the student is at least as good there, as KD-MVS claims.

Counts are pooled over all points of all frames (many frames have few occluded points, so per-frame means are
noisy). Prints a table; ``--json`` writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import binary_dilation
from scipy.stats import rankdata

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bts.losses.distillation import KD_CLIP  # noqa: E402
from bts.results import write_json  # noqa: E402

REQUIRED = ("pred_occupied", "sigma", "exact_occupied", "exact_visible")


@dataclass
class Predictions:
    """One model's per-point predictions on a list of frames, with the exact truth (``[frames, points]`` arrays)."""

    path: Path
    name: str
    frames: list[str]
    protocol: dict[str, Any]
    model: dict[str, Any]
    occupied: np.ndarray
    sigma: np.ndarray
    truth: np.ndarray
    visible: np.ndarray
    grid_size: tuple[int, int, int] | None = None  # (x, y, z) point counts of the protocol's grid
    trust: dict[str, np.ndarray] | None = None  # selective-distillation masks (trust_masks=true), by name
    seen_by: np.ndarray | None = None  # other encoded views that exactly observe each point (trust_masks=true, exact)

    def seen_surface(self) -> np.ndarray | None:
        """Occupied points next to a visible point in the grid (26-neighbourhood): the surface the input view sees,
        where a model has direct evidence. ``None`` without the grid size."""
        if self.grid_size is None:
            return None
        nx, ny, nz = self.grid_size
        shape = (len(self.frames), ny, nz, nx)  # the grid's point order: y slowest, x fastest
        near = binary_dilation(self.visible.reshape(shape), structure=np.ones((1, 3, 3, 3), dtype=bool))
        return (self.truth.reshape(shape) & near).reshape(self.truth.shape)


def load_predictions(path: Path | str, name: str | None = None) -> Predictions:
    """Read ``predictions.npz`` (or the folder holding it); clear errors for a missing file or another protocol."""
    path = Path(path)
    file = path / "predictions.npz" if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"{file} does not exist: run `python evaluation/occupancy.py checkpoint=... "
                                "protocol=exact save_predictions=true output_dir=...` first")
    with np.load(file, allow_pickle=False) as data:
        missing = [k for k in REQUIRED if k not in data.files]
        if missing:
            hint = (" (the exact truth is only there with protocol=exact on the synthetic city)"
                    if any(k.startswith("exact") for k in missing) else "")
            raise ValueError(f"{file} lacks {missing}{hint}")
        protocol = json.loads(str(data["protocol"]))
        model = json.loads(str(data["model"]))
        arrays = {k: data[k] for k in REQUIRED}
        trust = {k[len("trust_"):]: data[k].astype(bool) for k in data.files if k.startswith("trust_")}
        seen_by = data["exact_seen_by"].astype(np.int64) if "exact_seen_by" in data.files else None
        frames = [str(f) for f in data["frame"]]
    extra = {f"trust_{n}": m for n, m in trust.items()} | ({} if seen_by is None else {"exact_seen_by": seen_by})
    shapes = {k: v.shape for k, v in {**arrays, **extra}.items()}
    if len(set(shapes.values())) != 1 or len(frames) != arrays["pred_occupied"].shape[0]:
        raise ValueError(f"{file}: inconsistent array shapes {shapes} for {len(frames)} frames")
    return Predictions(file, name or model.get("description") or file.parent.name, frames, protocol, model,
                       arrays["pred_occupied"].astype(bool), arrays["sigma"].astype(np.float64),
                       arrays["exact_occupied"].astype(bool), arrays["exact_visible"].astype(bool),
                       _grid_size(protocol), trust or None, seen_by)


def _grid_size(protocol: dict[str, Any]) -> tuple[int, int, int] | None:
    """The ``(x, y, z)`` point counts of the grid the protocol's parameters define; ``None`` for an unknown one."""
    from evaluation.protocols import build_protocol  # noqa: PLC0415

    params = {k: v for k, v in protocol.items() if k != "protocol"}
    try:
        return tuple(int(n) for n in build_protocol(protocol["protocol"], params).grid_size)
    except (KeyError, ValueError, TypeError):
        return None


def ranking_auc(score: np.ndarray, label: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` for ``label`` (ties count half; NaN with one class only): the chance
    that a random positive scores above a random negative. Threshold-free, unlike the occupancy metrics."""
    score, label = score.ravel(), label.ravel().astype(bool)
    n1, n0 = int(label.sum()), int((~label).sum())
    if n1 == 0 or n0 == 0 or not np.isfinite(score).all():
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[label].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _frac(mask: np.ndarray, within: np.ndarray) -> float:
    n = int(within.sum())
    return float((mask & within).sum() / n) if n else float("nan")


def score_mask(mask: np.ndarray, a_ok: np.ndarray, b_ok: np.ndarray, within: np.ndarray) -> dict[str, float]:
    """How well a mask (True: trust B) separates where B is right from where B is wrong, on the points ``within``.

    - ``coverage``: the share of the points it keeps;
    - ``auc``: the ranking AUC of the mask for "B right" (0.5: no better than chance);
    - ``precision``: the share of kept points where B is right;
    - ``net_gain``: (B right and A wrong) minus (B wrong and A right) on the kept points, as a share of all the
      points ``within``: what following B there would change;
    - ``random_gain``: a random mask of the same coverage keeps, in expectation, ``coverage`` times the total net
      gain; ``oracle_gain`` / ``oracle_coverage``: the mask "B right and A wrong", the most any mask can gain.
    """
    mask, a_ok, b_ok, within = (np.asarray(x, dtype=bool).ravel() for x in (mask, a_ok, b_ok, within))
    n = int(within.sum())
    if n == 0:
        return {k: float("nan") for k in ("coverage", "auc", "precision", "net_gain", "random_gain", "oracle_gain",
                                          "oracle_coverage")}
    gain = (b_ok & ~a_ok).astype(np.int64) - (a_ok & ~b_ok).astype(np.int64)
    kept = mask & within
    coverage = float(kept.sum() / n)
    total_gain = float(gain[within].sum() / n)
    oracle = b_ok & ~a_ok & within
    return {
        "coverage": coverage,
        "auc": ranking_auc(mask[within].astype(np.float64), b_ok[within]),
        "precision": _frac(b_ok, kept),
        "net_gain": float(gain[kept].sum() / n),
        "random_gain": coverage * total_gain,
        "oracle_gain": float(oracle.sum() / n),
        "oracle_coverage": float(oracle.sum() / n),
    }


def _check_same(a: Predictions, b: Predictions) -> None:
    if a.protocol != b.protocol:
        diff = sorted(k for k in set(a.protocol) | set(b.protocol) if a.protocol.get(k) != b.protocol.get(k))
        raise ValueError(f"{a.path} and {b.path} were evaluated under different protocol parameters: {diff}")
    if a.frames != b.frames:
        only = sorted(set(a.frames) ^ set(b.frames))[:5]
        raise ValueError(f"{a.path} and {b.path} hold different frames (e.g. {only}); evaluate both with the same "
                         "split, frames, frame_stride and max_frames")
    if not (np.array_equal(a.truth, b.truth) and np.array_equal(a.visible, b.visible)):
        raise ValueError(f"{a.path} and {b.path} have different exact truth for the same frames (another city?)")


def compare(a: Predictions, b: Predictions) -> dict[str, Any]:
    """Point-by-point comparison of ``b`` against ``a`` (see the module docstring)."""
    _check_same(a, b)
    truth, hidden = a.truth, ~a.visible
    a_ok, b_ok = a.occupied == truth, b.occupied == truth
    out: dict[str, Any] = {
        "a": a.name, "b": b.name, "frames": len(a.frames), "points": int(truth.size),
        "occluded_points": int(hidden.sum()),
        "occluded_occupied_fraction": _frac(truth, hidden),
        "models": {},
    }
    surface = a.seen_surface()
    if surface is not None:
        out["seen_surface_points"] = int(surface.sum())
    for tag, p, ok in (("a", a, a_ok), ("b", b, b_ok)):
        out["models"][tag] = {
            "name": p.name,
            "o_acc": float(ok.mean()),
            "ie_acc": _frac(ok, hidden),                           # pooled over the occluded points
            "ie_rec": _frac(~p.occupied, hidden & ~truth),         # occluded empty found empty
            "occluded_occupied_found": _frac(p.occupied, hidden & truth),
            "predicted_occupied_fraction": float(p.occupied.mean()),
            # Does the density rank occluded occupied points above occluded empty ones, whatever the threshold?
            "occluded_auc": ranking_auc(p.sigma[hidden], truth[hidden]),
        }
        if surface is not None:  # is the density at the seen surface sharp enough for the threshold?
            out["models"][tag]["seen_surface_found"] = _frac(p.occupied, surface)
            out["models"][tag]["seen_surface_sigma_median"] = (float(np.median(p.sigma[surface]))
                                                               if surface.any() else float("nan"))
    a_wrong, b_wrong = hidden & ~a_ok, hidden & ~b_ok
    out["where_a_is_wrong"] = {
        "points": int(a_wrong.sum()),
        "b_right": _frac(b_ok, a_wrong),
        "b_right_on_occupied": _frac(b_ok, a_wrong & truth),      # occupancy A missed that B finds
        "b_right_on_empty": _frac(b_ok, a_wrong & ~truth),        # A's false occupancy that B clears
    }
    out["where_b_is_wrong"] = {"points": int(b_wrong.sum()), "a_right": _frac(a_ok, b_wrong)}
    out["occluded_net_gain_of_b"] = _frac(b_ok & ~a_ok, hidden) - _frac(a_ok & ~b_ok, hidden)
    same = a.occupied == b.occupied
    out["agreement"] = {
        "all": float(same.mean()),
        "occluded": _frac(same, hidden),
        "b_recall_of_a_occupied": _frac(b.occupied, a.occupied),
        "b_precision_wrt_a_occupied": _frac(a.occupied, b.occupied),
    }
    if np.isfinite(a.sigma).all() and np.isfinite(b.sigma).all():
        l1 = np.abs(np.clip(a.sigma, 0, KD_CLIP) - np.clip(b.sigma, 0, KD_CLIP))
        out["agreement"]["density_l1_clipped"] = float(l1.mean())
        out["agreement"]["density_l1_clipped_occluded"] = float(l1[hidden].mean()) if hidden.any() else float("nan")
    if b.trust:
        out["trust_masks_of_b"] = {name: score_mask(mask, a_ok, b_ok, hidden) for name, mask in b.trust.items()}
    if a.trust:  # A is the teacher: where its own masks say "unsure", is B (the student) at least as good?
        out["where_a_is_unsure"] = {name: {"points": int((hidden & ~mask).sum()), "a_acc": _frac(a_ok, hidden & ~mask),
                                           "b_acc": _frac(b_ok, hidden & ~mask)} for name, mask in a.trust.items()}
    seen_by = b.seen_by if b.seen_by is not None else a.seen_by
    if seen_by is not None:
        out["regions"] = {name: region_scores(within, truth, a_ok, b_ok)
                          for name, within in regions(a.visible, seen_by).items()}
    return out


REGIONS = {
    "visible": "visible from the input view",
    "occluded_seen": "occluded from the input view, observed by another encoded view",
    "occluded_unseen": "occluded from the input view, observed by no encoded view",
}


def regions(visible: np.ndarray, seen_by: np.ndarray) -> dict[str, np.ndarray]:
    """The three regions of the teacher's evidence (:data:`REGIONS`), from the input view's exact visibility and
    the number of other encoded views that exactly observe each point (``exact_seen_by``)."""
    hidden = ~visible
    return {"visible": visible, "occluded_seen": hidden & (seen_by >= 1), "occluded_unseen": hidden & (seen_by == 0)}


def region_scores(within: np.ndarray, truth: np.ndarray, a_ok: np.ndarray, b_ok: np.ndarray) -> dict[str, float]:
    """On the points ``within`` one region: its size, its occupied share, each model's accuracy, how often B is
    right where A is wrong and wrong where A is right, and B's net gain (as a share of the region's points): the
    most a distillation from B could transfer there."""
    a_wrong, a_right = within & ~a_ok, within & a_ok
    return {
        "points": int(within.sum()),
        "occupied_fraction": _frac(truth, within),
        "a_acc": _frac(a_ok, within),
        "b_acc": _frac(b_ok, within),
        "b_right_where_a_wrong": _frac(b_ok, a_wrong),
        "b_right_where_a_wrong_occupied": _frac(b_ok, a_wrong & truth),
        "b_wrong_where_a_right": _frac(~b_ok, a_right),
        "net_gain_of_b": _frac(b_ok & ~a_ok, within) - _frac(a_ok & ~b_ok, within),
    }


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def table(result: dict[str, Any]) -> str:
    a, b = result["models"]["a"], result["models"]["b"]
    w = max(12, len(a["name"]), len(b["name"])) + 5
    lines = [f"compare (exact truth, pooled over {result['frames']} frames, {result['points']} points, "
             f"{result['occluded_points']} occluded, {result['occluded_occupied_fraction']:.3f} of them occupied)",
             f"{'':<30}{'A: ' + a['name']:>{w}}{'B: ' + b['name']:>{w}}"]
    for key in ("o_acc", "ie_acc", "ie_rec", "occluded_occupied_found", "predicted_occupied_fraction",
                "occluded_auc", "seen_surface_found", "seen_surface_sigma_median"):
        if key in a:
            lines.append(f"{key:<30}{_fmt(a[key]):>{w}}{_fmt(b[key]):>{w}}")
    w = result["where_a_is_wrong"]
    lines.append(f"occluded points A gets wrong: {w['points']}; B right on {_fmt(w['b_right'])} of them "
                 f"(occupied truth {_fmt(w['b_right_on_occupied'])}, empty truth {_fmt(w['b_right_on_empty'])})")
    r = result["where_b_is_wrong"]
    lines.append(f"occluded points B gets wrong: {r['points']}; A right on {_fmt(r['a_right'])} of them; "
                 f"net gain of B on the occluded points {result['occluded_net_gain_of_b']:+.4f}")
    lines.append("agreement: " + ", ".join(f"{k} {_fmt(v)}" for k, v in result["agreement"].items()))
    for name, r in (result.get("where_a_is_unsure") or {}).items():
        lines.append(f"occluded points outside A's mask {name} (A unsure): {r['points']}; accuracy A {_fmt(r['a_acc'])}"
                     f" / B {_fmt(r['b_acc'])}")
    for name, r in (result.get("regions") or {}).items():
        lines.append(f"region {name} ({REGIONS[name]}): {r['points']} points, {_fmt(r['occupied_fraction'])} occupied; "
                     f"accuracy A {_fmt(r['a_acc'])} / B {_fmt(r['b_acc'])}; B right where A wrong "
                     f"{_fmt(r['b_right_where_a_wrong'])} (occupied truth {_fmt(r['b_right_where_a_wrong_occupied'])}),"
                     f" B wrong where A right {_fmt(r['b_wrong_where_a_right'])}; net gain of B "
                     f"{r['net_gain_of_b']:+.4f}")
    for name, m in (result.get("trust_masks_of_b") or {}).items():
        lines.append(f"mask {name} of B on the occluded points: coverage {_fmt(m['coverage'])}, AUC for B right "
                     f"{_fmt(m['auc'])}, precision {_fmt(m['precision'])}, net gain {m['net_gain']:+.4f} (random "
                     f"mask of that coverage {m['random_gain']:+.4f}, oracle {m['oracle_gain']:+.4f} at coverage "
                     f"{_fmt(m['oracle_coverage'])})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", type=Path, help="evaluation folder (or predictions.npz) of model A")
    p.add_argument("b", type=Path, help="evaluation folder (or predictions.npz) of model B")
    p.add_argument("--names", nargs=2, metavar=("A", "B"), help="names for the table (default: the models')")
    p.add_argument("--json", type=Path, help="write the numbers here")
    args = p.parse_args(argv)
    names = args.names or (None, None)
    result = compare(load_predictions(args.a, names[0]), load_predictions(args.b, names[1]))
    print(table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
