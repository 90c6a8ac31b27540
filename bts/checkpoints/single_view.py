"""A KDBTS checkpoint as a plain single-view BTS checkpoint (docs/decisions.md §5).

The student head becomes the BTS head, the shared encoder stays; the teacher and the optimizer state are left out.
Evaluation and rendering read the result like any BTS checkpoint. The command line is
``python -m scripts.export_single_view CHECKPOINT [--out PATH]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

from bts.checkpoints.format import load_checkpoint, save_checkpoint

STUDENT = "student_head."
FIELD_KEYS = ("num_freqs", "freq_factor", "code_near", "code_far")


def single_view_config(kdbts_config: dict[str, Any]) -> dict[str, Any]:
    """The ``bts`` model config of a KDBTS model's student: its encoder, the field's encoding, the student's width."""
    field = {k: kdbts_config["field"][k] for k in FIELD_KEYS}
    return {"kind": "bts", "encoder": dict(kdbts_config["encoder"]),
            "field": {"hidden_dim": kdbts_config["student"]["hidden_dim"], **field}}


def single_view_state(kdbts_state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The state dict of that ``bts`` model: the encoder's tensors, and the student head's as ``field.head.*``."""
    state = {k: v for k, v in kdbts_state.items() if k.startswith("encoder.")}
    state.update({"field.head." + k[len(STUDENT):]: v for k, v in kdbts_state.items() if k.startswith(STUDENT)})
    return state


def export_single_view(path: Path, out: Path) -> Path:
    """Write the single-view BTS checkpoint of the KDBTS checkpoint ``path`` to ``out``."""
    data = load_checkpoint(path, kinds=("kdbts",))
    return save_checkpoint(out, model_kind="bts", config=single_view_config(data["config"]),
                           model=single_view_state(data["model"]))
