"""What the hydra entry points (``train.py``, ``evaluation/*.py``, ``render_novel_view.py``) share on the command line.

:func:`friendly_errors` wraps a hydra task function:

- an override that adds a key with ``+`` (``+trainer.max_stpes=2``, which hydra's own hint suggests for a misspelt
  key) is refused, naming the key and the closest existing one: no config of the project has open nodes, so an added
  key would be read by nothing and the run would silently use the default;
- a :class:`bts.errors.UserError` (a missing or malformed file, a checkpoint of another model, a missing teacher,
  a non-finite loss) ends the command with one line ``error: <message>`` and exit status 1 instead of a traceback;
  ``HYDRA_FULL_ERROR=1`` (or ``BTS_VERBOSE=1``) shows the full trace. The new run folder of a command that failed
  this way before writing anything of its own is removed (:func:`bts.runs.discard_if_unused`).
"""

from __future__ import annotations

import difflib
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bts.errors import UserError
from bts.runs import discard_if_unused

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


class UnknownKeyError(UserError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def verbose() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1" or os.environ.get("BTS_VERBOSE") == "1"


def _keys(node: Any, prefix: str = "") -> list[str]:
    from omegaconf import DictConfig  # noqa: PLC0415

    out = []
    if isinstance(node, DictConfig):
        for key in node.keys():
            path = f"{prefix}{key}"
            out.append(path)
            value = node._get_node(key)
            if isinstance(value, DictConfig):
                out += _keys(value, path + ".")
    return out


def added_keys(task_overrides: list[str], groups: set[str]) -> list[str]:
    """The keys that ``+key=value`` / ``++key=value`` overrides add (config groups such as ``+preset=x`` excluded)."""
    keys = []
    for override in task_overrides:
        if not override.startswith("+"):
            continue
        key = override.lstrip("+").split("=", 1)[0]
        if key.startswith("hydra.") or key.split("@")[0] in groups or "/" in key:
            continue
        keys.append(key)
    return keys


def refuse_added_keys(cfg: Any, task_overrides: list[str]) -> None:
    """Raise :class:`UnknownKeyError` for a key added with ``+`` (see the module docstring)."""
    groups = {p.name for p in CONFIGS.iterdir() if p.is_dir()} if CONFIGS.is_dir() else set()
    added = added_keys(task_overrides, groups)
    if not added:
        return
    known = [k for k in _keys(cfg) if k not in added]
    key = added[0]
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else "."
    raise UnknownKeyError(f"unknown config key {key!r} (added with '+'): no part of the project reads it, so the run "
                          f"would silently use the defaults{hint} Set existing keys without '+' (key=value).")


def friendly_errors(main: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Decorate a hydra task function (below ``@hydra.main``); see the module docstring."""

    @functools.wraps(main)
    def wrapper(cfg):
        from hydra.core.hydra_config import HydraConfig  # noqa: PLC0415

        try:
            overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
            refuse_added_keys(cfg, overrides)
            return main(cfg)
        except UserError as error:
            if HydraConfig.initialized():
                discard_if_unused(HydraConfig.get().runtime.output_dir)
            if verbose():
                raise
            print(f"error: {error}", file=sys.stderr)
            print("(HYDRA_FULL_ERROR=1 shows the full traceback)", file=sys.stderr)
            raise SystemExit(1) from None

    return wrapper
