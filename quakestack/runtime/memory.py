"""Keep freed heap blocks in the process, so a model's activations reuse pages instead of faulting in new ones.

glibc gives big blocks back to the kernel when they are freed: blocks above its mmap threshold are
unmapped, and the top of a heap is trimmed. Each forward pass then writes its activations to fresh
pages that the kernel must zero first. Measured on 2 cores (bench/RESULTS.md): 7,468 page faults per
batch of 32 ConvNetQuake-INGV windows run in a thread, and half the throughput of the same model with
the blocks kept. A fixed mmap threshold at glibc's largest value (32 MiB; it also stops glibc's own
adjustment) and no trimming keep them, as torch's CUDA caching allocator does on a GPU. The price is
that the process keeps its peak heap; blocks above 32 MiB are still returned at once.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's ceiling for M_MMAP_THRESHOLD on 64-bit
NEVER_TRIM = 2**31 - 1  # mallopt takes an int


def keep_freed_memory() -> bool:
    """Tune glibc's malloc for reuse; False where the C library has no mallopt (musl, macOS)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, NEVER_TRIM))
