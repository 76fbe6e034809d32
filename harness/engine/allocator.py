"""Keep large tensor buffers in the process instead of returning them to the OS on every free.

glibc serves every allocation above its mmap threshold (at most 32 MiB) with a fresh ``mmap``
and gives it back with ``munmap`` when freed, so a tensor of a few hundred MiB (a ConvNet's
first feature map over a real batch of 256 images is 128 MiB) is page-faulted in, 4 KiB at a
time, every time it is created. Condensation and evaluation create such tensors thousands of
times; on a 2-core CPU, DC's per-class real-gradient pass spent most of its time in those page
faults. :func:`tune_allocator` makes glibc serve large blocks from its heap and keep what is
freed there for reuse (no trimming: a threshold of 1 GiB still re-faulted DM's 700 MiB batches).

Results are bit-identical (only where memory comes from changes). The cost is memory: the process
keeps what it freed until it exits, and the heap settles with some fragmentation: peak RSS over 8
iterations of DC IPC 1 / DM IPC 10 on digits grew 18 % / 14 % (1150 / 2233 MiB against 972 / 1966)
for 1.4x / 1.7x faster iterations. Transparent huge pages (torch's ``THP_MEM_ALLOC_ENABLE``) were
measured too: flat RSS but slower and erratic (page zeroing remains). The ``harness``
command line calls it at start-up; ``HARNESS_MALLOC=system`` leaves glibc's defaults alone.
Measured in ``bench/condense_speed.py``.
"""

from __future__ import annotations

import ctypes
import os
import platform

# mallopt(3) parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4

TRIM_THRESHOLD = -1  # mallopt(3): -1 disables trimming
ENV_VAR = "HARNESS_MALLOC"

_state: dict[str, bool] = {}


def tune_allocator() -> bool:
    """Serve large allocations from glibc's reusable heap (see the module docstring); True if applied.

    A no-op (False) off glibc, when ``HARNESS_MALLOC=system``, or if mallopt refuses; idempotent.
    """
    if "applied" in _state:
        return _state["applied"]
    applied = False
    if os.environ.get(ENV_VAR, "").strip().lower() != "system" and platform.libc_ver()[0] == "glibc":
        try:
            # the interpreter's own symbols include libc's (find_library would spawn ldconfig: ~12 ms)
            libc = ctypes.CDLL(None)
            # mallopt returns 1 on success, 0 on error
            applied = bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(
                libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
            )
        except (OSError, AttributeError):
            applied = False
    _state["applied"] = applied
    return applied


def allocator_tuned() -> bool:
    """Whether :func:`tune_allocator` has been applied in this process."""
    return _state.get("applied", False)
