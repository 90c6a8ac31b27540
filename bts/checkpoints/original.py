"""Key mapping from the original BTS checkpoints (``renderer.net.*``) to this project's modules.

The original layout is described in ``shared/spec/original_checkpoints.md``: a torchvision ResNet under
``encoder.encoder.encoder``, the Monodepth2 decoder as one flat list ``encoder.decoder.decoder.{0..13}``
(up-convolutions (stage, first|second) for stages 4..0, then the output convolutions of scales 0..3) and the head
``mlp_coarse`` (BTS), ``heads.multiviewhead3`` (MVBTS, the KDBTS teacher) and ``heads.singleviewhead`` (the KDBTS
student). Unused parts are dropped, each named in the returned list: the classifier ``fc``, the output
convolutions of scales 1-3 (``decoder.decoder.11``-``13``), the renderer counters, and the positional encoding's
constant frequencies and phases (checked against ours instead).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

PREFIX = "renderer.net."
_COUNTERS = "renderer.renderer."
_BACKBONE = "encoder.encoder.encoder."
_DECODER = "encoder.decoder.decoder."
_UNUSED_DECODER_OUTPUTS = (11, 12, 13)
_HEADS = {
    "mlp_coarse.": "field.head.",  # BTS
    "heads.multiviewhead3.mlp.": "field.head.phi1.",  # MVBTS / KDBTS teacher (confidence fusion)
    "heads.multiviewhead3.mlp2.": "field.head.phi2.",
    "heads.singleviewhead.": "student_head.",  # KDBTS student
}


class OriginalCheckpointError(ValueError):
    pass


def _decoder_key(index: int, rest: str) -> str | None:
    if index < 10:
        which = "first" if index % 2 == 0 else "second"
        return f"encoder.decoder.{which}.{index // 2}.{rest.replace('conv.conv.', 'conv.')}"
    if index == 10:
        return f"encoder.decoder.output.{rest}"
    return None


def _check_encoding_constant(key: str, value: Tensor) -> None:
    freqs = 1.5 * 2.0 ** torch.arange(6, dtype=torch.float32)
    if key.endswith("_freqs"):
        want = freqs.repeat_interleave(2).view(1, -1, 1)
    else:
        want = torch.tensor([0.0, math.pi * 0.5]).repeat(6).view(1, -1, 1)
    if value.shape != want.shape or not torch.allclose(value.float(), want):
        raise OriginalCheckpointError(f"{key}: positional encoding constants differ from ours "
                                      f"(6 frequencies 1.5 * 2^k); this checkpoint needs another encoding")


def map_original_keys(state_dict: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """Rename an original ``model`` state dict; returns ``(mapped, dropped_keys)``.

    A key that matches no known part raises :class:`OriginalCheckpointError` naming it; nothing is dropped silently.
    """
    mapped: dict[str, Tensor] = {}
    dropped: list[str] = []
    for key, value in state_dict.items():
        if key.startswith(_COUNTERS):
            dropped.append(key)  # iteration counters of the original renderer
            continue
        if not key.startswith(PREFIX):
            raise OriginalCheckpointError(f"unexpected key {key!r}: original model keys start with {PREFIX!r}")
        k = key[len(PREFIX):]
        if k.startswith(_BACKBONE):
            rest = k[len(_BACKBONE):]
            if rest.startswith("fc."):
                dropped.append(key)
            else:
                mapped["encoder.backbone.net." + rest] = value
        elif k.startswith(_DECODER):
            index_str, _, rest = k[len(_DECODER):].partition(".")
            target = _decoder_key(int(index_str), rest)
            if target is None:
                dropped.append(key)
            else:
                mapped[target] = value
        elif k.startswith("code_xyz."):
            _check_encoding_constant(key, value)
            dropped.append(key)
        else:
            head = next((h for h in _HEADS if k.startswith(h)), None)
            if head is None:
                raise OriginalCheckpointError(f"unexpected key {key!r} in the original checkpoint")
            mapped[_HEADS[head] + k[len(head):]] = value
    return mapped, dropped
