"""Import a released checkpoint of the original BTS / KDBTS code into this project's format (issue 8).

    python -m scripts.convert_original --checkpoint released.pt [--kind bts|mvbts|kdbts] [--teacher] [--out ours.pt]
                                       [--allow-pickle]

The original state dict (bare, or under ``"model"`` as in the released training checkpoints) is mapped key by key
onto this project's model of the same architecture (:mod:`bts.checkpoints.convert`; the layout and the conventions
in docs/original_checkpoints.md). A KDBTS file gives its student as a single-view ``bts`` model, the paper's KDBTS;
with ``--teacher`` its fusion head as an ``mvbts`` model. Any leftover or missing key, or a shape mismatch, is an
error naming the original key. Evaluation and rendering also read a released file directly, without this step.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bts.checkpoints.convert import ORIGINAL_KINDS, convert_file
from bts.checkpoints.format import save_checkpoint
from bts.checkpoints.original import OriginalCheckpointError


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True, help="a released checkpoint of the original code")
    p.add_argument("--kind", choices=ORIGINAL_KINDS, default=None, help="checked against the keys (default: inferred)")
    p.add_argument("--out", type=Path, default=None, help="default: <checkpoint>_converted.pt")
    p.add_argument("--teacher", action="store_true", help="KDBTS: write the teacher as an MVBTS model")
    p.add_argument("--allow-pickle", action="store_true",
                   help="read files that hold arbitrary Python objects (only for files you trust)")
    a = p.parse_args(argv)
    suffix = "_teacher_converted.pt" if a.teacher else "_converted.pt"
    out = a.out or a.checkpoint.with_name(a.checkpoint.stem + suffix)
    try:
        conversion = convert_file(a.checkpoint, a.kind, a.teacher, a.allow_pickle)
    except OriginalCheckpointError as e:
        sys.exit(f"error: {e}")
    print(conversion.summary())
    save_checkpoint(out, model_kind=conversion.model_kind, config=conversion.config, model=conversion.state)
    print(f"wrote {out} (model_kind {conversion.model_kind!r})")


if __name__ == "__main__":
    main()
