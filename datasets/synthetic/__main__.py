"""Command line: ``python -m datasets.synthetic --out DIR [--sequences N] [--frames M] [--seed S] [--size ...]``.

Writes a synthetic city tree in the KITTI-360 layout into ``DIR`` (see :mod:`datasets.synthetic`). Running it again
with the same arguments does nothing; a folder holding another tree is replaced only with ``--overwrite``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from datasets.synthetic.generate import generate
from datasets.synthetic.presets import PRESETS, SEQUENCE_NAMES


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m datasets.synthetic", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="folder of the tree (created)")
    p.add_argument("--size", choices=sorted(PRESETS), default="small", help="image sizes (default: small)")
    p.add_argument("--sequences", type=int, default=None,
                   help=f"number of sequences, 2..{len(SEQUENCE_NAMES)} (default: the preset's)")
    p.add_argument("--frames", type=int, default=None, help="posed frames per sequence (default: the preset's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace a tree generated with other parameters")
    return p


def _summary(root: Path, seconds: float) -> str:
    files = [f for f in root.rglob("*") if f.is_file()]
    size = sum(f.stat().st_size for f in files) / 2**20
    splits = {s: len((root / "splits" / f"{s}_files.txt").read_text().splitlines()) for s in ("train", "val", "test")}
    sequences = sorted(p.name for p in (root / "data_poses").iterdir())
    return "\n".join([
        f"synthetic city at {root} ({seconds:.1f} s)",
        f"  {len(sequences)} sequences: {', '.join(sequences)}",
        f"  {len(files)} files, {size:.1f} MiB",
        "  splits: " + ", ".join(f"{k} {v} lines" for k, v in splits.items()),
    ])


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    preset = PRESETS[args.size]
    start = time.perf_counter()
    try:
        root = generate(args.out, sequences=preset.sequences if args.sequences is None else args.sequences,
                        frames=preset.frames if args.frames is None else args.frames,
                        seed=args.seed, size=args.size, overwrite=args.overwrite)
    except (ValueError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(_summary(root, time.perf_counter() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
