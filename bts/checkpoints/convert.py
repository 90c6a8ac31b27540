"""Import the released checkpoints of the original BTS and KDBTS code into this project's format (issue 8).

The command line is ``python -m scripts.convert_original --checkpoint released.pt [--kind bts|mvbts|kdbts]
[--teacher] [--out ours.pt] [--allow-pickle]``; this module is the conversion it runs.

The original state dict (docs/original_checkpoints.md §6; bare, or under ``"model"`` as in the released
training checkpoints) is mapped key by key onto our model of the same architecture: ResNet-50 encoder, 64-d
features, the original positional encoding (6 frequencies 1.5 * 2^k, inverse depth over 3-80 m) and the head. A
KDBTS file gives its student as a single-view ``bts`` model, the paper's KDBTS; with ``--teacher`` its fusion head as
an ``mvbts`` model. Unused keys are dropped by name (the classifier, the decoder outputs of scales 1-3, the renderer
counters; the encoding constants are checked); any other leftover or missing key, or a shape mismatch, is an error
naming the original key. ``bts.inference.load_model`` also reads a released file directly through
:func:`convert_for_inference`.

What reproduces the release without any switch: the density field of our models computes what the original computes,
to float32 precision (``tests/checkpoints/test_convert_original.py`` checks it on the parity files): the same image
normalisation, encoder and decoder, projection ``u = (K p)_x / max(z, 1e-3)``, feature sampling (bilinear, border
padding, ``align_corners=False``), encoding layout ``[u, v, d, sin(w u), sin(w v), sin(w d), cos(w u), ...]`` with the
cosine computed as ``sin(x + pi/2)``, feature-first MLP input, softplus, and the MVBTS fusion (masked logits -1e9,
so a point outside every view averages them). Where the imported model must be used differently from our corrected
defaults to reproduce the release (``docs/original_checkpoints.md`` has the details):

1. Intrinsics: the original normalises ``K`` with ``u = 2 x / W - 1`` (``PixelConvention.CORNER``); our data layer
   uses pixel centres. Normalise ``K`` with the corner convention to read features exactly where the original did
   (otherwise they are read about a quarter of a working-resolution pixel away).
2. Rays: the original renders pixel ``j`` at ``u = -1 + 2 j / (W - 1)`` (align-corners); ours through pixel centres.
   This changes rendered depth and the depth-based visibility of the occupancy protocol, not the density.
3. Sample jitter: the original jitters the depth samples even at evaluation; ours uses midpoints, and
   ``protocol=bts`` the original's jitter (seed 0).
4. KDBTS head: the original's evaluators and renderers used the teacher (``multiviewhead3`` on view 0) through a
   config bug; the default import is the student. ``--teacher`` with the ``mono`` view subset gives what the original
   code reported as KDBTS.
5. MVBTS views: the original evaluator always encoded view 0 only; the import's ``eval_views`` is ``mono``.
6. Fisheye views (MVBTS subsets with fisheyes): the original resampled them on an align-corners grid.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from bts.checkpoints.format import FORMAT_VERSION
from bts.checkpoints.original import (
    BTS_HEAD,
    BTS_HEADS,
    ENCODING_KEYS,
    KDBTS_HEADS,
    MVBTS_HEADS,
    PREFIX,
    STUDENT_AS_BTS_HEADS,
    STUDENT_HEAD,
    TEACHER_HEAD,
    OriginalCheckpointError,
    check_encoding_constant,
    drop_reason,
    original_key,
)
from bts.models.factory import build_model

ORIGINAL_KINDS = ("bts", "mvbts", "kdbts")
KDBTS_PARTS = ("student", "teacher", "both")

# The released architecture (BTS exp_kitti_360 / KDBTS train_kitti_360_*); the checkpoint does not store it.
ENCODER = {"depth": 50, "pretrained": False, "on_missing_weights": "error", "weights": None,
           "decoder_widths": [32, 32, 64, 128, 256],
           "feature_dim": 64}
ENCODING = {"num_freqs": 6, "freq_factor": 1.5, "code_near": 3.0, "code_far": 80.0}
FUSION = {"type": "confidence", "hidden_dim": 128, "feature_dim": 16, "out_hidden_dim": 16}
VIEWS = {"num_train_views": 3, "train_candidates": [1, 2, 3], "eval_views": "mono"}


def model_config(model_kind: str, imported: dict[str, Any]) -> dict[str, Any]:
    """Our model config of the released architecture; ``imported`` records where it came from."""
    encoder = dict(ENCODER)
    if model_kind == "bts":
        cfg = {"kind": "bts", "encoder": encoder, "field": {"hidden_dim": 64, **ENCODING}}
    else:
        cfg = {"kind": model_kind, "encoder": encoder, "field": {**ENCODING, "view_dropout": 0.5},
               "fusion": dict(FUSION), "views": dict(VIEWS, train_candidates=list(VIEWS["train_candidates"]))}
        if model_kind == "kdbts":
            cfg["student"] = {"hidden_dim": 64}
    cfg["imported"] = imported
    return cfg


# (original kind, KDBTS part) -> (our model kind, head layout, original heads used, other head left out, summary)
_TARGETS: dict[tuple[str, str | None], tuple[str, dict[str, str], tuple[str, ...], str | None, str]] = {
    ("bts", None): ("bts", BTS_HEADS, ("mlp_coarse",), None, "BTS"),
    ("mvbts", None): ("mvbts", MVBTS_HEADS, ("heads.multiviewhead3",), None, "MVBTS (multiviewhead3)"),
    ("kdbts", "student"): ("bts", STUDENT_AS_BTS_HEADS, ("heads.singleviewhead",), TEACHER_HEAD,
                           "the KDBTS student (singleviewhead)"),
    ("kdbts", "teacher"): ("mvbts", MVBTS_HEADS, ("heads.multiviewhead3",), STUDENT_HEAD,
                           "the KDBTS teacher (multiviewhead3)"),
    ("kdbts", "both"): ("kdbts", KDBTS_HEADS, ("heads.multiviewhead3", "heads.singleviewhead"), None,
                        "KDBTS, teacher and student"),
}
# How the original used the model, where it differs from our defaults (module docstring, items 1-3).
ORIGINAL_CONVENTIONS = {"intrinsics": "corner", "rays": "align_corners", "depth_samples": "jittered"}
_LEFT_OUT = {TEACHER_HEAD: "the KDBTS teacher, not part of the student (convert with --teacher to get it)",
             STUDENT_HEAD: "the KDBTS student, not part of the teacher (convert without --teacher to get it)"}


@dataclass(frozen=True)
class Conversion:
    """An original state dict mapped onto one of our models, with the fate of every original key."""

    source: str
    original_kind: str
    model_kind: str
    description: str
    config: dict[str, Any]
    state: dict[str, Tensor]
    mapped: dict[str, str]  # original key -> our key
    dropped: dict[str, str] = field(default_factory=dict)  # original key -> why
    left_out: dict[str, str] = field(default_factory=dict)  # original key -> why (the other KDBTS head)

    def checkpoint(self) -> dict[str, Any]:
        """The checkpoint dict of this project's format (docs/decisions.md §5)."""
        return {"format_version": FORMAT_VERSION, "model_kind": self.model_kind, "config": self.config,
                "model": self.state}

    def summary(self) -> str:
        total = len(self.mapped) + len(self.dropped) + len(self.left_out)
        lines = [f"{self.source}: original {self.original_kind.upper()} checkpoint, {total} keys",
                 f"  mapped {len(self.mapped)} keys -> model_kind {self.model_kind!r} ({self.description}):"]
        groups = Counter((_group(k), _group(v)) for k, v in self.mapped.items())
        lines += [f"    {theirs}* -> {ours}* ({n})" for (theirs, ours), n in groups.items()]
        lines.append(f"  dropped {len(self.dropped)} keys:")
        lines += [f"    {k}: {why}" for k, why in self.dropped.items()]
        if self.left_out:
            lines.append(f"  left out {len(self.left_out)} keys:")
            lines += [f"    {theirs}* ({n}): {_LEFT_OUT[theirs[len(PREFIX):]]}"
                      for theirs, n in Counter(_group(k) for k in self.left_out).items()]
        return "\n".join(lines)


def _group(key: str) -> str:
    """A key's component, for the summary: the part before the layer name."""
    for prefix in (PREFIX + "encoder.encoder.encoder.", PREFIX + "encoder.decoder.decoder.", "encoder.backbone.",
                   "encoder.decoder.", "field.head.", "student_head.",
                   *(PREFIX + h for h in (TEACHER_HEAD, STUDENT_HEAD, BTS_HEAD))):
        if key.startswith(prefix):
            return prefix
    return key


def read_file(path: Path, allow_pickle: bool = False) -> Any:
    """``torch.load`` on the CPU (tensors, dicts and numbers only unless ``allow_pickle``)."""
    if not path.is_file():
        raise OriginalCheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=not allow_pickle)
    except Exception as e:  # noqa: BLE001 - unpickling errors have many types
        hint = "" if allow_pickle else (" (if it holds other Python objects and you trust the file, "
                                        "add --allow-pickle)")
        raise OriginalCheckpointError(f"{path} is not a readable checkpoint: {e}{hint}") from e


def _is_original_state(obj: Any) -> bool:
    return isinstance(obj, Mapping) and any(isinstance(k, str) and k.startswith(PREFIX) for k in obj)


def find_state_dict(obj: Any) -> dict[str, Any] | None:
    """The original model state dict in a loaded file: the file itself (a "best model" checkpoint) or its ``model``
    entry (a training checkpoint of ignite's ``Checkpoint``); ``None`` when it is neither."""
    if _is_original_state(obj):
        return dict(obj)
    if isinstance(obj, Mapping) and _is_original_state(obj.get("model")):
        return dict(obj["model"])
    return None


def original_state_dict(obj: Any, source: str) -> dict[str, Any]:
    """:func:`find_state_dict`, or an error saying what was expected and what was found."""
    state = find_state_dict(obj)
    if state is not None:
        return state
    if isinstance(obj, Mapping):
        found = f"a dict with keys {sorted(map(str, obj))[:10]}"
        if "format_version" in obj and "model_kind" in obj:
            found += " (already a checkpoint of this project: use it directly)"
        elif isinstance(obj.get("model"), Mapping):
            found += f"; its 'model' entry has keys {sorted(map(str, obj['model']))[:5]}"
    else:
        found = type(obj).__name__
    raise OriginalCheckpointError(f"{source} is not an original BTS/MVBTS/KDBTS checkpoint: expected a state dict "
                                  f"with keys '{PREFIX}*', or a dict holding one under 'model' as the released "
                                  f"training checkpoints do; found {found}")


def infer_kind(state: Mapping[str, Any], source: str = "checkpoint") -> str:
    """``kdbts`` (has the student ``singleviewhead``), ``mvbts`` (the multi-view head only) or ``bts``."""
    def has(head: str) -> bool:
        return any(k.startswith(PREFIX + head) for k in state)

    if has(STUDENT_HEAD):
        return "kdbts"
    if has(TEACHER_HEAD):
        return "mvbts"
    if has(BTS_HEAD):
        return "bts"
    raise OriginalCheckpointError(f"{source}: no density head found; expected keys '{PREFIX}{BTS_HEAD}*' (BTS), "
                                  f"'{PREFIX}{TEACHER_HEAD}*' (MVBTS) or '{PREFIX}{STUDENT_HEAD}*' (KDBTS)")


def _listing(name: str, items: list[str]) -> str:
    return f"{name} ({len(items)}): {', '.join(items[:10])}{' ...' if len(items) > 10 else ''}"


def convert_state_dict(state: Mapping[str, Any], kind: str | None = None, part: str | None = None,
                       source: str = "checkpoint") -> Conversion:
    """Map an original model state dict onto our model.

    ``kind`` is checked against the keys (inferred when ``None``). ``part`` selects what a KDBTS file becomes:
    ``student`` (the default, a ``bts`` model), ``teacher`` (an ``mvbts`` model) or ``both`` (our ``kdbts`` model).
    """
    inferred = infer_kind(state, source)
    if kind is None:
        kind = inferred
    if kind not in ORIGINAL_KINDS:
        raise OriginalCheckpointError(f"kind must be one of {ORIGINAL_KINDS}, got {kind!r}")
    if kind != inferred:
        hint = " (its teacher: --kind kdbts --teacher)" if inferred == "kdbts" and kind == "mvbts" else ""
        raise OriginalCheckpointError(f"{source} holds an original {inferred.upper()} checkpoint, not "
                                      f"{kind.upper()}{hint}")
    if kind == "kdbts":
        part = part or "student"
        if part not in KDBTS_PARTS:
            raise OriginalCheckpointError(f"a KDBTS checkpoint converts to one of {KDBTS_PARTS}, got {part!r}")
    elif part is not None:
        raise OriginalCheckpointError(f"{source} holds an original {kind.upper()} checkpoint: only KDBTS has a "
                                      f"student and a teacher (got {part!r})")
    model_kind, heads, head_names, other_head, description = _TARGETS[(kind, part)]
    imported = {"original_kind": kind, "heads": list(head_names), "conventions": dict(ORIGINAL_CONVENTIONS)}
    config = model_config(model_kind, imported)
    own = build_model(config, pretrained=False).state_dict()
    wanted = {original_key(k, heads): k for k in own}

    missing = [k for k in wanted if k not in state] + [k for k in ENCODING_KEYS if k not in state]
    not_tensors = [k for k in wanted if k in state and not isinstance(state[k], Tensor)]
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs expected {tuple(own[wanted[k]].shape)}"
              for k in wanted if isinstance(state.get(k), Tensor) and state[k].shape != own[wanted[k]].shape]
    dropped = {k: why for k in state if k not in wanted and (why := drop_reason(k)) is not None}
    left_out = {k: _LEFT_OUT[other_head] for k in state if other_head and k.startswith(PREFIX + other_head)}
    unexpected = [k for k in state if k not in wanted and k not in dropped and k not in left_out]
    if missing or not_tensors or shapes or unexpected:
        parts = [_listing(name, keys) for name, keys in (
            ("missing keys", missing), ("not tensors", not_tensors), ("unexpected keys", unexpected),
            ("different shapes", shapes)) if keys]
        raise OriginalCheckpointError(f"{source} does not match the original {kind.upper()} layout: "
                                      + "; ".join(parts))
    for key in ENCODING_KEYS:
        check_encoding_constant(key, state[key], source)
    converted = {ours: state[theirs].detach().to(own[ours].dtype) for theirs, ours in wanted.items()}
    return Conversion(source, kind, model_kind, description, config, converted,
                      {theirs: ours for theirs, ours in wanted.items()}, dropped, left_out)


def convert_file(path: Path, kind: str | None = None, teacher: bool = False, allow_pickle: bool = False) -> Conversion:
    """Read a released original checkpoint and convert it (a KDBTS file: the student, or the teacher)."""
    state = original_state_dict(read_file(path, allow_pickle), str(path))
    inferred = infer_kind(state, str(path))
    if teacher and inferred != "kdbts":
        raise OriginalCheckpointError(f"--teacher needs a KDBTS checkpoint; {path} holds an original "
                                      f"{inferred.upper()} checkpoint")
    part = ("teacher" if teacher else "student") if inferred == "kdbts" else None
    return convert_state_dict(state, kind, part, source=str(path))


def convert_for_inference(path: Path, kinds: tuple[str, ...]) -> dict[str, Any] | None:
    """The checkpoint dict (our format) of a released original checkpoint, or ``None`` when ``path`` is not one.

    A KDBTS file gives its student (``bts``) when ``kinds`` accepts ``bts``, else the whole ``kdbts`` model (which
    evaluates through its student) when it accepts ``kdbts``.
    """
    path = Path(path)
    try:
        obj = read_file(path)
    except OriginalCheckpointError:
        return None  # missing or unreadable: the caller's error already says so
    state = find_state_dict(obj)
    if state is None:
        return None
    kind = infer_kind(state, str(path))
    part = None
    if kind == "kdbts":
        part = "student" if "bts" in kinds else "both" if "kdbts" in kinds else None
        if part is None:
            raise OriginalCheckpointError(f"{path} is an original KDBTS checkpoint: its student is a 'bts' model and "
                                          f"the whole model a 'kdbts' one, expected one of {list(kinds)} (for the "
                                          "teacher as an 'mvbts' model: python -m scripts.convert_original --teacher)")
    elif kind not in kinds:
        raise OriginalCheckpointError(f"{path} is an original {kind.upper()} checkpoint, a {kind!r} model; expected "
                                      f"one of {list(kinds)}")
    return convert_state_dict(state, kind, part, source=str(path)).checkpoint()
