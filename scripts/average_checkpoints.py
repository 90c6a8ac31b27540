"""Average the weights of several checkpoints of one run into one evaluation checkpoint.

    python -m scripts.average_checkpoints OUT.pt IN1.pt IN2.pt ... [--weights W1 W2 ...]

For example the last four checkpoints of a 2,100-step run:

    python -m scripts.average_checkpoints outputs/run/checkpoints/tail_2100.pt \\
        outputs/run/checkpoints/step_{1650,1800,1950,2100}.pt

The result is evaluated and rendered like any checkpoint; it cannot be resumed (no optimizer state).
See :mod:`bts.checkpoints.average` for what is averaged and what is refused.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bts.checkpoints.average import average_checkpoints
from bts.errors import UserError


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="the averaged checkpoint to write")
    p.add_argument("checkpoints", type=Path, nargs="+", help="checkpoints of one model and config")
    p.add_argument("--weights", type=float, nargs="+", default=None, help="one weight per checkpoint (default: equal)")
    a = p.parse_args(argv)
    if a.out.resolve() in {c.resolve() for c in a.checkpoints}:
        p.error(f"the output {a.out} is one of the inputs")
    try:
        print(f"wrote {average_checkpoints(a.checkpoints, a.out, a.weights)}")
    except (UserError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(1) from e


if __name__ == "__main__":
    main()
