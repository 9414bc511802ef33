"""Make the C allocator hand large freed blocks back to the system (glibc), so RSS falls after large messages.

glibc serves allocations of ``M_MMAP_THRESHOLD`` bytes and more with their own ``mmap`` and unmaps them on
free, but by default it raises that threshold each time such a block is freed (up to 32 MB on 64-bit), so
after one 20 MB message the next ones' buffers come from the heap arenas of whichever threads touched
them, and stay there. Fixing the threshold (``mallopt(M_MMAP_THRESHOLD, ...)`` turns the dynamic
adjustment off) keeps every large buffer an ``mmap`` of its own: measured with
``bench/bench_smtp_memory.py``, six concurrent 20 MB messages add 254 MiB to ``serve`` instead of 458,
and RSS falls back afterwards (docs/benchmarks.md). glibc's own ``MALLOC_MMAP_THRESHOLD_`` variable, when
set, is the operator's choice and is left alone; other C libraries are left alone too.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping

__all__ = ["MMAP_THRESHOLD", "fix_mmap_threshold"]

#: Blocks from this size up get an ``mmap`` of their own, returned to the system when freed.
MMAP_THRESHOLD = 1024 * 1024
#: ``M_MMAP_THRESHOLD`` of glibc's ``<malloc.h>``.
_M_MMAP_THRESHOLD = -3


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD, *, environ: Mapping[str, str] | None = None) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes; True if it was set, False if left alone (the
    operator set ``MALLOC_MMAP_THRESHOLD_``, or the C library has no ``mallopt``/refused it)."""
    env = os.environ if environ is None else environ
    if "MALLOC_MMAP_THRESHOLD_" in env:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold))
