"""Averaging the weights of several checkpoints of one training run (the tail of a run).

    python -m scripts.average_checkpoints OUT.pt IN1.pt IN2.pt ... [--weights w1 w2 ...]

A self-supervised density field's thresholded scores (IE_rec above all) swing from one checkpoint to the next of the
same run, because the predicted densities of hidden space sit near the evaluation threshold and move with the last few
hundred updates. The uniform average of the last checkpoints of a run (stochastic weight averaging, Izmailov et al.,
UAI 2018, with the checkpoints as its snapshots) is one model that stands for that tail instead of one arbitrary step
of it.

- Floating-point entries of the state dicts (weights, biases, batch-norm running means and variances) are averaged
  with the given weights (uniform by default), in float64, and cast back to their dtype.
- Integer entries (batch norm's ``num_batches_tracked``) are not averaged: the largest value is kept.
- Every checkpoint must hold the same model kind, the same model config and the same state-dict keys and shapes; the
  first difference found is named with the file.
- The result is an evaluation checkpoint: it has no optimizer or scheduler state (a resume from it is refused with an
  error), and ``provenance`` lists the source files, their training steps and the weights used.

Batch-norm statistics are averaged rather than recomputed (SWA proper recomputes them with one pass over the training
data); the evaluation reads the averaged statistics. Measured on the synthetic city's validation sequence
(docs/reproduce/checkpoint_averaging_val.md), the average of a BTS run's last four checkpoints was worse than the last
one alone (O_acc 0.21-0.25 against 0.54-0.74, lower occluded AUC in every case): the completion recipe does not use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from bts.checkpoints.format import CheckpointError, load_checkpoint, save_checkpoint


def _step(data: dict[str, Any]) -> int | None:
    trainer = data.get("trainer")
    return int(trainer["iteration"]) if isinstance(trainer, dict) and "iteration" in trainer else None


def average_state_dicts(states: Sequence[dict[str, torch.Tensor]], weights: Sequence[float] | None = None,
                        names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """The weighted average of state dicts with the same keys and shapes (module docstring for integer entries)."""
    if not states:
        raise ValueError("no state dicts to average")
    names = list(names) if names is not None else [f"state dict {i}" for i in range(len(states))]
    if weights is None:
        weights = [1.0] * len(states)
    if len(weights) != len(states):
        raise ValueError(f"{len(weights)} weights for {len(states)} checkpoints")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"weights must be non-negative with a positive sum, got {list(weights)}")
    total = float(sum(weights))
    first = states[0]
    for name, state in zip(names[1:], states[1:], strict=True):
        missing, extra = sorted(set(first) - set(state)), sorted(set(state) - set(first))
        if missing or extra:
            raise CheckpointError(f"{name} has other state-dict keys than {names[0]}: missing {missing[:5]}, "
                                  f"unexpected {extra[:5]}")
        for key, value in first.items():
            if state[key].shape != value.shape or state[key].dtype != value.dtype:
                raise CheckpointError(f"{name}: {key} is {tuple(state[key].shape)} {state[key].dtype}, "
                                      f"{names[0]} has {tuple(value.shape)} {value.dtype}")
    out: dict[str, torch.Tensor] = {}
    for key, value in first.items():
        if value.is_floating_point():
            acc = torch.zeros(value.shape, dtype=torch.float64)
            for w, state in zip(weights, states, strict=True):
                acc += (w / total) * state[key].to(torch.float64)
            out[key] = acc.to(value.dtype)
        else:
            out[key] = torch.stack([state[key] for state in states]).amax(dim=0) if value.numel() else value.clone()
    return out


def average_checkpoints(paths: Sequence[Path | str], out: Path | str,
                        weights: Sequence[float] | None = None) -> Path:
    """Write the weight average of ``paths`` (checkpoints of one model and config) to ``out``."""
    from bts.training.state import config_differences  # noqa: PLC0415 - training imports checkpoints, not back

    paths = [Path(p) for p in paths]
    if not paths:
        raise CheckpointError("no checkpoints to average")
    datas = [load_checkpoint(p) for p in paths]
    ref = datas[0]
    for path, data in zip(paths[1:], datas[1:], strict=True):
        if data["model_kind"] != ref["model_kind"]:
            raise CheckpointError(f"{path} holds a {data['model_kind']!r} model, {paths[0]} a {ref['model_kind']!r} "
                                  "one: only checkpoints of one model can be averaged")
        diffs = config_differences(ref["config"], data["config"])
        if diffs:
            raise CheckpointError(f"{path} has another model config than {paths[0]}: " + "; ".join(diffs[:5]))
    state = average_state_dicts([d["model"] for d in datas], weights, [str(p) for p in paths])
    steps = [_step(d) for d in datas]
    used = [1.0] * len(paths) if weights is None else [float(w) for w in weights]
    provenance = {"averaged_from": [str(p) for p in paths], "steps": steps, "weights": used}
    known = [s for s in steps if s is not None]
    trainer = {"iteration": max(known)} if known else None
    return save_checkpoint(out, model_kind=ref["model_kind"], config=ref["config"], model=state, trainer=trainer,
                           provenance=provenance)
