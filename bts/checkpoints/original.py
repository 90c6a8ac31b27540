"""Key mapping between the original BTS / MVBTS / KDBTS checkpoints (``renderer.net.*``) and this project's modules.

The original layout is described in docs/original_checkpoints.md §6: a torchvision ResNet under
``encoder.encoder.encoder``, the Monodepth2 decoder as one flat list ``encoder.decoder.decoder.{0..13}``
(up-convolutions (stage, first|second) for stages 4..0, then the output convolutions of scales 0..3) and the head
``mlp_coarse`` (BTS), ``heads.multiviewhead3`` (MVBTS, the KDBTS teacher) and ``heads.singleviewhead`` (the KDBTS
student). Unused parts are dropped, each with its reason (:func:`drop_reason`): the classifier ``fc``, the output
convolutions of scales 1-3 (``decoder.decoder.11``-``13``), the renderer counters, and the positional encoding's
constant frequencies and phases (checked against ours instead). Any other key is an error naming it.

Two directions: :func:`original_key` names the original key of each key of our model (the importer in
``bts.checkpoints.convert`` walks our model's state dict with it, so a missing key is named in the original's terms),
and :func:`map_original_keys` renames a whole original state dict the other way.
"""

from __future__ import annotations

import math
import re

import torch
from torch import Tensor

from bts.checkpoints.format import CheckpointError

PREFIX = "renderer.net."
COUNTER_KEYS = ("renderer.renderer.iter_idx", "renderer.renderer.last_sched")
ENCODING_KEYS = (PREFIX + "code_xyz._freqs", PREFIX + "code_xyz._phases")
_BACKBONE = "encoder.encoder.encoder."
_DECODER = "encoder.decoder.decoder."
_OUR_BACKBONE = "encoder.backbone.net."
_NUM_UP_CONVS = 10  # decoder.decoder.0-9: (stage 4..0) x (first, second)
_SCALE0_OUTPUT = 10
_UNUSED_DECODER_OUTPUTS = (11, 12, 13)

# The original heads, by the prefix of their keys after ``renderer.net.``.
BTS_HEAD = "mlp_coarse."
TEACHER_HEAD = "heads.multiviewhead3."
STUDENT_HEAD = "heads.singleviewhead."
HEAD_PREFIXES = (BTS_HEAD, TEACHER_HEAD, STUDENT_HEAD)

# Where the original heads go in our models: our key prefix -> original key prefix (after ``renderer.net.``).
BTS_HEADS = {"field.head.": BTS_HEAD}
MVBTS_HEADS = {"field.head.phi1.": TEACHER_HEAD + "mlp.", "field.head.phi2.": TEACHER_HEAD + "mlp2."}
STUDENT_AS_BTS_HEADS = {"field.head.": STUDENT_HEAD}
KDBTS_HEADS = {**MVBTS_HEADS, "student_head.": STUDENT_HEAD}

# Forward renaming of every original head (used by map_original_keys).
_HEADS = {BTS_HEAD: "field.head.", TEACHER_HEAD + "mlp.": "field.head.phi1.",
          TEACHER_HEAD + "mlp2.": "field.head.phi2.", STUDENT_HEAD: "student_head."}


class OriginalCheckpointError(CheckpointError):
    pass


def _decoder_index(key: str) -> tuple[int, str] | None:
    """``(index, rest)`` of a decoder key ``renderer.net.encoder.decoder.decoder.<index>.<rest>``, else ``None``."""
    match = re.fullmatch(re.escape(PREFIX + _DECODER) + r"(\d+)\.(.+)", key)
    return (int(match.group(1)), match.group(2)) if match else None


def drop_reason(key: str) -> str | None:
    """Why an original key has no counterpart in our models, or ``None`` if it must be mapped."""
    if key in COUNTER_KEYS:
        return "iteration counter of the original renderer"
    if key in ENCODING_KEYS:
        return "positional-encoding constant, checked equal to ours"
    if key in (PREFIX + _BACKBONE + "fc.weight", PREFIX + _BACKBONE + "fc.bias"):
        return "ResNet classifier, unused"
    decoder = _decoder_index(key)
    if decoder is not None and decoder[0] in _UNUSED_DECODER_OUTPUTS and decoder[1] in ("conv.weight", "conv.bias"):
        return f"output convolution of decoder scale {decoder[0] - _SCALE0_OUTPUT}, unused (the field reads scale 0)"
    return None


def original_key(key: str, heads: dict[str, str]) -> str:
    """The original key of one key of our model; ``heads`` maps our head prefixes to the original ones (e.g.
    :data:`BTS_HEADS`)."""
    if key.startswith(_OUR_BACKBONE):
        return PREFIX + _BACKBONE + key[len(_OUR_BACKBONE):]
    match = re.fullmatch(r"encoder\.decoder\.(first|second)\.(\d)\.conv\.(.+)", key)
    if match:
        index = 2 * int(match.group(2)) + (match.group(1) == "second")
        return f"{PREFIX}{_DECODER}{index}.conv.conv.{match.group(3)}"
    if key.startswith("encoder.decoder.output.conv."):
        return f"{PREFIX}{_DECODER}{_SCALE0_OUTPUT}.{key[len('encoder.decoder.output.'):]}"
    for ours, theirs in heads.items():
        if key.startswith(ours):
            return PREFIX + theirs + key[len(ours):]
    raise KeyError(f"{key!r} has no counterpart in the original checkpoints")


def check_encoding_constant(key: str, value: Tensor, source: str = "checkpoint") -> None:
    """The original's ``code_xyz`` frequencies / phases must be ours (6 frequencies 1.5 * 2^k, phases 0, pi/2)."""
    freqs = 1.5 * 2.0 ** torch.arange(6, dtype=torch.float32)
    if key.endswith("_freqs"):
        want = freqs.repeat_interleave(2).view(1, -1, 1)
    else:
        want = torch.tensor([0.0, math.pi * 0.5]).repeat(6).view(1, -1, 1)
    if not isinstance(value, Tensor) or value.shape != want.shape or not torch.allclose(value.float(), want):
        raise OriginalCheckpointError(f"{source}: {key}: positional encoding constants differ from ours "
                                      f"(6 frequencies 1.5 * 2^k, shape (1, 12, 1)); this checkpoint needs another "
                                      "encoding")


def _forward_key(key: str) -> str | None:
    """Our name of an original key (``None``: dropped); raises for a key of no known part."""
    if drop_reason(key) is not None:
        return None
    if not key.startswith(PREFIX):
        raise OriginalCheckpointError(f"unexpected key {key!r}: original model keys start with {PREFIX!r}")
    k = key[len(PREFIX):]
    if k.startswith(_BACKBONE):
        return _OUR_BACKBONE + k[len(_BACKBONE):]
    decoder = _decoder_index(key)
    if decoder is not None:
        index, rest = decoder
        if index < _NUM_UP_CONVS and rest.startswith("conv.conv."):
            which = "first" if index % 2 == 0 else "second"
            return f"encoder.decoder.{which}.{index // 2}.conv.{rest[len('conv.conv.'):]}"
        if index == _SCALE0_OUTPUT and rest.startswith("conv."):
            return f"encoder.decoder.output.{rest}"
        raise OriginalCheckpointError(f"unexpected key {key!r}: the original decoder has up-convolutions 0-9 "
                                      "('.conv.conv.*') and output convolutions 10-13 ('.conv.*')")
    head = next((h for h in _HEADS if k.startswith(h)), None)
    if head is None:
        raise OriginalCheckpointError(f"unexpected key {key!r} in the original checkpoint")
    return _HEADS[head] + k[len(head):]


def map_original_keys(state_dict: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """Rename an original ``model`` state dict; returns ``(mapped, dropped_keys)``.

    A key that matches no known part raises :class:`OriginalCheckpointError` naming it; nothing is dropped silently.
    Every head present is renamed (the KDBTS student to ``student_head.``), as for our ``kdbts`` model.
    """
    mapped: dict[str, Tensor] = {}
    dropped: list[str] = []
    for key, value in state_dict.items():
        if key in ENCODING_KEYS:
            check_encoding_constant(key, value)
        target = _forward_key(key)
        if target is None:
            dropped.append(key)
        else:
            mapped[target] = value
    return mapped, dropped
