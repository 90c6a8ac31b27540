"""Subnormal floats on the CPU: flushed to zero for speed.

Behind a surface the rendering's transmittance ``exp(-sum sigma delta)``, the weights built from it and their
gradients fall below float32's smallest normal number (1.2e-38) long before they reach zero. x86 CPUs process such
subnormal operands many times slower than normal ones (measured: an elementwise product 2.9x, the ReLU backward of
MVBTS's fusion MLP 6.5x); at the reproduction's configuration flushing them makes the MVBTS step 4-19 % and the
KDBTS step 22-24 % faster, and BTS not measurably (BENCHMARKS.md, "Subnormal floats"). The CPU's flush-to-zero /
denormals-are-zero modes (``torch.set_flush_denormal``) read and write them as zero instead; only values below
1.2e-38 change, far below the float noise of any loss.

The mode is a property of each CPU thread. PyTorch's worker threads copy it from the main thread when they are
created, at the first parallel operation of the process, and keep what they had after that. So
:func:`flush_subnormals` must run before the first tensor operation of a process (``train.py`` calls it first, from
``trainer.flush_denormal``); it says whether every worker thread flushes, so a late call is reported, not silent.
"""

from __future__ import annotations

import torch

# Elements per thread of the check: well above ATen's grain size (32,768), so that every thread gets a share.
_PER_THREAD = 1 << 18


def flush_subnormals(enabled: bool = True) -> bool:
    """Set the flush-to-zero mode of this thread to ``enabled``; returns whether every PyTorch CPU thread now has
    that mode (:func:`flushed_share` is 1 or 0). ``False`` means that the CPU cannot flush or that the worker threads
    had started before this call and kept their mode (for ``enabled=True``: slower, with the same results)."""
    supported = torch.set_flush_denormal(enabled)
    if enabled and not supported:
        return False
    return flushed_share() == (1.0 if enabled else 0.0)


def flushed_share() -> float:
    """The share of PyTorch's elementwise CPU work done in flush-to-zero mode: a product of the smallest subnormal
    float32 (built from its bit pattern, so no conversion can flush it first) with 1, spread over all threads, is
    zero exactly where the thread that computed it flushes (1.0: every thread does; 0.0: none)."""
    n = _PER_THREAD * max(1, torch.get_num_threads())
    tiny = torch.ones(n, dtype=torch.int32).view(torch.float32)  # 1.4e-45, the smallest subnormal
    return 1.0 - int(torch.count_nonzero(tiny * 1.0)) / n
