"""One writer for the project's result files: strict JSON that every JSON reader accepts.

Python's ``json`` writes NaN and Infinity as bare words by default, which is not JSON (``jq``, JavaScript and many
tools refuse the file). :func:`json_safe` turns NaN into ``null`` and +-Inf into the strings ``"inf"`` / ``"-inf"``,
NumPy scalars and arrays into numbers and lists, and paths into strings; :func:`write_json` writes the result with
``allow_nan=False``, so a non-finite number can never slip through.
"""

from __future__ import annotations

import json
import math
import platform
from pathlib import Path
from typing import Any

import numpy as np


def json_safe(value: Any) -> Any:
    """``value`` as strict-JSON-ready Python values (see the module docstring)."""
    if isinstance(value, np.generic):
        value = value.item()
    elif isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def dumps(value: Any, indent: int | None = 2) -> str:
    return json.dumps(json_safe(value), indent=indent, allow_nan=False)


def write_json(path: Path | str, value: Any, indent: int | None = 2) -> Path:
    """Write ``value`` to ``path`` as strict JSON (with a final newline), creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(value, indent) + "\n")
    return path


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; the platform's machine type where that is not readable)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{platform.machine()} CPU"
