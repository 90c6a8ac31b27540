"""Turn a KDBTS checkpoint into a plain single-view BTS checkpoint (docs/decisions.md §5).

    python -m scripts.export_single_view CHECKPOINT [--out PATH]

The student head becomes the BTS head; the teacher and the optimizer state are left out
(:mod:`bts.checkpoints.single_view`). Evaluation and rendering read the result like any BTS checkpoint.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bts.checkpoints.single_view import export_single_view


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, help="a KDBTS checkpoint (train.py -cn kdbts)")
    p.add_argument("--out", type=Path, default=None, help="default: <checkpoint>_single_view.pt")
    a = p.parse_args(argv)
    out = a.out or a.checkpoint.with_name(a.checkpoint.stem + "_single_view.pt")
    print(f"wrote {export_single_view(a.checkpoint, out)}")


if __name__ == "__main__":
    main()
