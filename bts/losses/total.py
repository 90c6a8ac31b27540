"""Weighting of the loss terms into the training objective (docs/method.md §3.7, docs/decisions.md §3).

The original's objective is ``2 L_ph + 1e-3 L_eas``: its photometric term is counted twice because the "fine"
renderer is a copy of the "coarse" one. The project uses weights 1 and 5e-4, the same ratio; weight 2 and 1e-3
reproduce the original's absolute scale (relevant only for the learning rate), without computing a second pass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from jaxtyping import Float
from torch import Tensor


@dataclass(frozen=True)
class LossWeights:
    """Weight per named loss term; the defaults mirror the ``bts`` YAML."""

    photometric: float = 1.0
    smoothness: float = 5e-4
    distillation: float = 0.0  # KDBTS only: 5e-3, the original's 1e-2 relative to its doubled photometric term
    occupancy: float = 1.0  # the supervised bound only (loss.objective=supervised): BCE against exact occupancy
    trust: float = 1.0  # KDBTS with kd.mask=learned only: the mask head's loss (bts/losses/learned_trust.py)


@dataclass(frozen=True)
class TotalLoss:
    """The objective and every term, detached, for logging (``total`` included)."""

    total: Float[Tensor, ""]
    terms: dict[str, Tensor]


def combine_losses(terms: Mapping[str, Tensor], weights: LossWeights) -> TotalLoss:
    """``total = sum_name weights.<name> * terms[name]``.

    Every term must have a weight field of the same name, so a misspelt term fails loudly rather than being
    dropped; a weight without a term (e.g. no smoothness in an ablation) simply contributes nothing.
    """
    known = {f.name for f in dataclasses.fields(weights)}
    unknown = sorted(set(terms) - known)
    if unknown:
        raise KeyError(f"no weight for loss terms {unknown}; weighted terms are {sorted(known)}")
    if not terms:
        raise ValueError("no loss terms to combine")
    total = sum(getattr(weights, name) * value for name, value in terms.items())
    logged = {name: value.detach() for name, value in terms.items()}
    logged["total"] = total.detach()
    return TotalLoss(total=total, terms=logged)
