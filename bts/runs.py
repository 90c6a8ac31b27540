"""Run folders: one folder per run, created atomically, and a resumed run continuing in its own folder.

The configs name their output folder through the ``run_dir`` resolver (registered by :func:`register_resolvers`,
which the entry points call before hydra composes their config)::

    hydra.run.dir: ${run_dir:BASE,${now:%Y-%m-%d_%H-%M-%S},${trainer.resume_from}}

with ``BASE`` = ``${paths.output_dir}/${hydra:job.config_name}`` (configs/bts.yaml).

- a new run gets ``<base>/<timestamp>``, made with ``os.mkdir`` so that of two runs started in the same second one
  gets ``<timestamp>`` and the other ``<timestamp>_2`` (a plain ``${now:...}`` folder is shared by both: one run's
  results or checkpoints overwrite the other's);
- an evaluation's explicit ``output_dir=...`` (fourth argument) is used as given;
- a resumed run (third argument: ``trainer.resume_from``, a checkpoint inside ``<run>/checkpoints/``, also through
  the ``latest`` link) continues in ``<run>``, so that one run keeps one folder and one TensorBoard log.

Under ``torchrun`` every process resolves the folder itself before they can talk to each other; there the folder is
``<base>/<timestamp>`` without the uniqueness check (the processes of one launch start within the same second).
"""

from __future__ import annotations

import os
from pathlib import Path

RESOLVER = "run_dir"
BOOKKEEPING = frozenset({".hydra", "config.yaml", "teacher.json"})  # what a run writes before its own outputs
_made: dict[tuple[str, str], Path] = {}  # one folder per (base, stamp) and process, however often hydra resolves


def unique_folder(base: str | Path, stamp: str) -> Path:
    """``base/stamp``, or ``base/stamp_2``, ``_3``, ... if taken: created here, so no other process can get it."""
    key = (str(base), stamp)
    if key in _made:
        return _made[key]
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        folder = base / stamp
        folder.mkdir(exist_ok=True)
    else:
        for n in range(1, 10_000):
            folder = base / (stamp if n == 1 else f"{stamp}_{n}")
            try:
                folder.mkdir()
                break
            except FileExistsError:
                continue
        else:
            raise FileExistsError(f"no free run folder name {stamp}_N under {base}")
    _made[key] = folder
    return folder


def resumed_run_folder(checkpoint: str | Path) -> Path | None:
    """The run folder of a checkpoint ``<run>/checkpoints/<file>`` (links resolved), if ``<run>`` holds the run's
    ``config.yaml``; ``None`` for a checkpoint elsewhere (which then starts a new folder)."""
    path = Path(checkpoint).resolve()
    run = path.parent.parent
    if path.parent.name == "checkpoints" and (run / "config.yaml").is_file():
        return run
    return None


def run_dir(base: str, stamp: str, resume_from: str | None = None, explicit: str | None = None) -> str:
    """The resolver: ``explicit`` if given (a folder the user named: used as is, shared if named twice), else the
    resumed run's folder, else a new unique ``base/stamp``."""
    if explicit not in (None, ""):
        return str(explicit)
    if resume_from not in (None, "", "None", "null"):
        folder = resumed_run_folder(resume_from)
        if folder is not None:
            return str(folder)
    return str(unique_folder(base, stamp))


def register_resolvers() -> None:
    """Register ``${run_dir:base,stamp[,resume_from[,explicit]]}`` with OmegaConf (idempotent)."""
    from omegaconf import OmegaConf  # noqa: PLC0415

    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, run_dir)


def discard_if_unused(folder: str | Path) -> bool:
    """Remove ``folder`` if this process created it (a new run's folder, never a resumed or named one) and it holds
    nothing but bookkeeping (``.hydra/``, ``*.log``, :data:`BOOKKEEPING`): a command that failed at its start leaves no
    empty run folder behind (``config.yaml`` and ``teacher.json``, written before the data is built, count as
    bookkeeping too).
    Returns whether it was removed."""
    import shutil  # noqa: PLC0415

    folder = Path(folder)
    if folder not in _made.values() or not folder.is_dir():
        return False
    if any(p.name not in BOOKKEEPING and p.suffix != ".log" for p in folder.iterdir()):
        return False
    shutil.rmtree(folder, ignore_errors=True)
    return True

