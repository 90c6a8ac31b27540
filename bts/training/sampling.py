"""Training data order and per-item randomness that a resume can reproduce exactly, mid-epoch and with workers.

A dataset item draws random numbers (the side views' frame offset, the supervised objective's labelled points) from
the global generators of the process that loads it. With DataLoader workers those are the worker's generators,
seeded once per epoch (``base_seed + worker_id``) and then advanced by every item that worker loaded before: an item's
draws depend on which worker loads it and on what that worker loaded earlier in the epoch. A run resumed at step 4
of 8 starts fresh workers, so items 4-8 get other draws than in the uninterrupted run.

:class:`SeededRandomSampler` therefore hands out ``(index, seed)`` pairs: the epoch's permutation and one seed per
position, both a function of the run's seed and the epoch number only (the engine calls :meth:`set_epoch` when an
epoch starts, before the epoch's first batch is drawn). It takes nothing from the global generators, whose state at
the moment a DataLoader first draws from its sampler differs between a fresh run and a resumed one.
:class:`SeededItems` loads ``(index, seed)`` with the global torch, NumPy and Python generators set from ``seed``
and restores them afterwards, so an item's draws depend only on the run's seed, the epoch and the item's position:
the same with 0 or N workers, and the same after a resume at any step.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


class SeededRandomSampler(Sampler):
    """A random permutation of ``range(size)`` per epoch, each index paired with its own 62-bit seed; epoch ``e``'s
    order and seeds come from ``(seed, e)``. Under DDP every process must use the same ``seed``."""

    def __init__(self, size: int, seed: int):
        if size < 1:
            raise ValueError(f"SeededRandomSampler needs at least one item, got size={size}")
        self.size, self.seed, self.epoch = size, int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        entropy = np.random.SeedSequence([self.seed & (2**63 - 1), self.epoch]).generate_state(2, np.uint32)
        generator = torch.Generator().manual_seed(int(entropy[0]) << 32 | int(entropy[1]))
        order = torch.randperm(self.size, generator=generator).tolist()
        seeds = torch.randint(0, 2**62, (self.size,), dtype=torch.int64, generator=generator).tolist()
        return iter(zip(order, seeds, strict=True))


class SeededItems(Dataset):
    """``dataset[index]`` loaded under the seed that comes with it: ``items[(index, seed)]``; ``items[index]``
    loads without reseeding (validation, direct access)."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: int | tuple[int, int]):
        if not isinstance(key, tuple):
            return self.dataset[key]
        index, seed = key
        py_state, np_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            np.random.seed(seed % 2**32)
            random.seed(seed)
            try:
                return self.dataset[index]
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)
