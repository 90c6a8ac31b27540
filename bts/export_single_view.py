"""Turn a KDBTS checkpoint into a plain single-view BTS checkpoint (docs/decisions.md §5).

    python -m bts.export_single_view CHECKPOINT [--out PATH]

The student head becomes the BTS head; the teacher and the optimizer state are left out. Evaluation and rendering
read the result like any BTS checkpoint.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bts.checkpoints.format import load_checkpoint, save_checkpoint

STUDENT = "student_head."


def export_single_view(path: Path, out: Path) -> Path:
    data = load_checkpoint(path, kinds=("kdbts",))
    cfg = data["config"]
    field = {k: cfg["field"][k] for k in ("num_freqs", "freq_factor", "near", "far")}
    config = {"kind": "bts", "encoder": dict(cfg["encoder"]),
              "field": {"hidden_dim": cfg["student"]["hidden_dim"], **field}}
    state = {k: v for k, v in data["model"].items() if k.startswith("encoder.")}
    state.update({"field.head." + k[len(STUDENT):]: v for k, v in data["model"].items() if k.startswith(STUDENT)})
    return save_checkpoint(out, model_kind="bts", config=config, model=state)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, help="a KDBTS checkpoint (train.py -cn kdbts)")
    p.add_argument("--out", type=Path, default=None, help="default: <checkpoint>_single_view.pt")
    a = p.parse_args(argv)
    out = a.out or a.checkpoint.with_name(a.checkpoint.stem + "_single_view.pt")
    print(f"wrote {export_single_view(a.checkpoint, out)}")


if __name__ == "__main__":
    main()
