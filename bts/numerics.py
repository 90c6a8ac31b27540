"""Two process-wide settings of the CPU that make the training steps faster without changing a number.

**Subnormal floats, flushed to zero** (:func:`flush_subnormals`, ``trainer.flush_denormal``).

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

**Where large CPU tensors get their memory** (:func:`set_cpu_memory`, ``trainer.cpu_memory``). glibc's allocator
serves every request above its mmap threshold (128 KiB to 32 MiB) with fresh pages from the kernel and returns them
when the tensor is freed, so each training step faults in, and the kernel zeroes, every 4 KiB page of its large
intermediate tensors again (the point MLP's activations and gradients at the reproduction's configuration are
64-108 MB each; about 250,000 page faults per step): a ``[103, 262144]`` gradient product that does 3.5 GFLOP took
195 ms, most of it in the faults. ``keep`` (the default) turns glibc's mmap off and its heap trimming up to 2 GiB
(``mallopt(M_MMAP_MAX, 0)``, ``mallopt(M_TRIM_THRESHOLD, 2 GiB)``), so freed blocks stay in the process and the next
step reuses them without a fault; ``system`` keeps glibc's defaults. No computed number changes. The process then
holds its peak memory until it ends (measured: 10-20 % more peak RSS, flat over a training with validation every 20
steps; BENCHMARKS.md, "Freed memory kept by the process"). glibc's heap cannot hand a freed block back to a request
of the same size with 64-byte alignment when a small allocation sits right after it, so a loop that frees and
allocates one lone large tensor with nothing else around it grows the heap by that tensor each time; a training
step frees many blocks together, and they merge. Linux with glibc only; elsewhere the call reports that it could
not. It applies to the allocations after the call, so ``train.py`` calls it first.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

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


# glibc's mallopt parameters (malloc.h) and the largest trim threshold it takes (an int).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_NEVER_TRIM = 2**31 - 1
CPU_MEMORY_MODES = ("keep", "system")


def set_cpu_memory(mode: str) -> bool:
    """``keep``: freed memory stays in the process for reuse (module docstring); ``system``: glibc's defaults (the
    allocator is left as it is: ``keep`` cannot be undone within a process). Returns whether the mode is in effect:
    ``False`` for ``keep`` where the C library is not glibc."""
    if mode not in CPU_MEMORY_MODES:
        raise ValueError(f"cpu_memory must be one of {', '.join(CPU_MEMORY_MODES)}, got {mode!r}")
    if mode == "system":
        return True
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM))


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.mallopt.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc
