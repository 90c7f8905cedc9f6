"""Memory freed after a large message or a closed document goes back to the system.

A huge document or message is parsed into many small objects; when they are freed, glibc keeps
the pages in its heap, fragmented, and the server's RSS only grows (measured by bench/fuzz.py).
`malloc_trim(0)` returns the free pages, also those in the middle of the heap. Where the C
library has no such call (macOS, Windows, musl), nothing happens.
"""

from __future__ import annotations

import asyncio
import ctypes
import sys
from collections.abc import Callable

LARGE_MESSAGE_BYTES = 1024**2
TRIM_DELAY_S = 2.0  # after the handlers ran and dropped what they built; one trim for a burst


def _find_malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_MALLOC_TRIM = _find_malloc_trim()
_pending: asyncio.TimerHandle | None = None


def release_free_memory() -> bool:
    """Give the C heap's free pages back to the system; True when some were returned."""
    return bool(_MALLOC_TRIM(0)) if _MALLOC_TRIM is not None else False


def release_soon() -> None:
    """Release the free memory TRIM_DELAY_S from now, on the running loop, unless a release is
    already due: a burst of large messages costs one trim."""
    global _pending
    if _pending is not None:
        return

    def release() -> None:
        global _pending
        _pending = None
        release_free_memory()

    _pending = asyncio.get_running_loop().call_later(TRIM_DELAY_S, release)
