"""State dicts in the original code's layout with random values, from the key listings the original code wrote
(tests/data/parity): the inputs of the importer's tests."""

import functools
import math
import zlib

import torch

from tests.parity_weights import PARITY

STEMS = {"bts": "bts_exp_kitti_360", "mvbts": "mvbts_train_kitti_360_base", "kdbts": "kdbts_train_kitti_360_KD"}


def listing(kind: str) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
    rows = []
    for line in (PARITY / f"{STEMS[kind]}_keys.txt").read_text().splitlines():
        key, shape, dtype = line.split("\t")
        rows.append((key, tuple(int(x) for x in shape.strip("()").split(",") if x.strip()), getattr(torch, dtype)))
    return rows


@functools.cache
def _random_value(key: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """A random tensor for one original key (the same for every kind, so the encoders are shared)."""
    if dtype == torch.int64:
        return torch.zeros(shape, dtype=dtype)
    if key.endswith("_freqs"):  # the spec's constants: 1.5 * 2^k, each twice; phases 0 and pi/2
        return torch.tensor([1.5 * 2**k for k in range(6) for _ in range(2)]).view(1, 12, 1)
    if key.endswith("_phases"):
        return torch.tensor([0.0, math.pi / 2] * 6).view(1, 12, 1)
    g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    if key.endswith("running_var"):
        return 0.5 + torch.rand(shape, generator=g)
    if len(shape) == 1:  # BatchNorm scales and shifts, running means, biases
        return (1.0 if key.endswith("weight") else 0.0) + 0.1 * torch.randn(shape, generator=g)
    return torch.randn(shape, generator=g) / math.sqrt(math.prod(shape[1:]))


def random_original(kind: str) -> dict[str, torch.Tensor]:
    """A state dict in the original layout of ``kind`` with random values (a fresh dict of shared tensors)."""
    return {key: _random_value(key, shape, dtype) for key, shape, dtype in listing(kind)}
